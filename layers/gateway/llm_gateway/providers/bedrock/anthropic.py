"""Anthropic's Messages API on Bedrock (InvokeModel, InvokeModelWithResponseStream, CountTokens): the body Bedrock
gets for a caller's own Anthropic body (answers: anthropic_answer.py, streams: anthropic_stream.py).

A request that came in Anthropic's dialect for one of Anthropic's models is not translated: the caller's body goes
to Bedrock as sent, every field and block included (thinking with its signature, redacted_thinking, cache_control,
documents, citations, server tools), with only the gateway's decisions and Bedrock's own rules applied. Bedrock's
answer is Anthropic's message (or its stream events), kept whole for the caller.

Bedrock's body for Anthropic's models:
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.registry import INFERENCE_PROFILE_PREFIXES, ModelTraits
from llm_gateway.errors import ProviderRequestError
from llm_gateway.observability import logger

BEDROCK_ANTHROPIC_DOC = "https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html"
# Bedrock's name for the Messages API version, in place of Anthropic's anthropic-version header.
ANTHROPIC_VERSION = "bedrock-2023-05-31"

# The anthropic-beta values Bedrock accepts in the body's `anthropic_beta`; any other makes it answer 400 "invalid
# beta flag". Sources: the AWS page above (BEDROCK_ANTHROPIC_DOC), coder/coder's aibridge (bedrockSupportedBetaFlags,
# https://github.com/coder/coder/tree/main/aibridge) and LiteLLM's per-provider table
# (https://github.com/BerriAI/litellm/blob/main/litellm/anthropic_beta_headers_config.json, "bedrock").
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2025-01-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
    }
)
# Betas Anthropic's API names differently from Bedrock: LiteLLM's table maps these (same source as above).
BEDROCK_BETA_NAMES: Mapping[str, str] = {"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19"}

# Top-level fields of Anthropic's API that Bedrock's body refuses ("Extra inputs are not permitted") and that have
# no effect Bedrock could give: request labels (metadata, service_tier, inference_geo, speed, diagnostics) and
# features of Anthropic's own platform (container, mcp_servers). Clients such as Claude Code send them routinely.
REFUSED_FIELDS = ("metadata", "service_tier", "container", "inference_geo", "mcp_servers", "speed", "diagnostics")
# Fields Bedrock takes only with their beta (coder/coder aibridge, bedrockBetaGatedFields): kept when the beta is
# sent along, else removed. `output_config` is also kept for a model whose traits say it takes it without a beta.
BETA_GATED_FIELDS: Mapping[str, str] = {
    "context_management": "context-management-2025-06-27",
    "output_config": "effort-2025-11-24",
}
# Tool definition fields of Anthropic's API that Bedrock refuses (tool search's deferred loading, Claude Code's
# own marker); a cache_control's `scope` (Bedrock takes only `type` and `ttl`).
REFUSED_TOOL_FIELDS = ("defer_loading", "custom")
REFUSED_CACHE_CONTROL_FIELDS = ("scope",)

# Anthropic's minimum thinking budget; budget_tokens must also stay below max_tokens.
# https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
MIN_THINKING_BUDGET = 1024
# `thinking: {"type": "adaptive"}` on a model without adaptive thinking becomes a budget of this share of
# max_tokens, by output_config.effort (high when absent, Anthropic's default), as coder/coder's aibridge does.
ADAPTIVE_THINKING_SHARES: Mapping[str, float] = {"low": 0.2, "medium": 0.5, "high": 0.8, "max": 0.95}
DEFAULT_ADAPTIVE_THINKING_SHARE = ADAPTIVE_THINKING_SHARES["high"]

# Bedrock takes only user and assistant turns; Claude Code sends its mid-conversation system prompts as system
# turns, and folds them into user turns in this very form when its API refuses them.
SYSTEM_REMINDER = "<system-reminder>\n{text}\n</system-reminder>"


def anthropic_traits(request: ChatRequest, traits: ModelTraits | None) -> ModelTraits | None:
    """The model's traits when the request goes to Bedrock as Anthropic's own body (it came in Anthropic's dialect
    and the model is one of Anthropic's), else None."""
    native = request.native
    speaks = native is not None and native.dialect == "anthropic"
    return traits if speaks and traits is not None and traits.bedrock.anthropic_messages else None


def foundation_model_id(model_id: str) -> str | None:
    """The foundation model id CountTokens takes for a target's model id: an inference profile's id without its
    geography prefix (us.anthropic.claude-... -> anthropic.claude-...), a foundation-model or inference-profile
    ARN's id the same way; None for other ARNs (an application inference profile names no model)."""
    if model_id.startswith("arn:"):
        kind, _, name = model_id.split(":", 5)[-1].partition("/")
        if kind not in {"foundation-model", "inference-profile"} or not name:
            return None
        model_id = name
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The JSON bytes of a body: compact, and non-ASCII text as UTF-8, so the caller's blocks keep their bytes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the body Bedrock gets ---------------------------------------------------------------------------------


def invoke_model_body(request: ChatRequest, traits: ModelTraits, *, counting: bool = False) -> dict[str, Any]:
    """Bedrock's InvokeModel body for a request in Anthropic's dialect (BEDROCK_ANTHROPIC_DOC).

    The caller's body, deep-copied, without `model` and `stream` (the URL and the API chosen say them), with
    `anthropic_version` set and the gateway's decisions applied: `max_tokens` is the output cap, a thinking
    budget fits below it, sampling parameters the model's traits removed are not sent. Bedrock's rules: betas it
    accepts go in `anthropic_beta`, fields it refuses and that change nothing it could do are removed (logged by
    name at INFO), adaptive thinking becomes a budget for a model without it, system turns inside `messages`
    become system reminders in user turns. Everything else passes unchanged, for Bedrock to take or refuse with
    its own message.

    `counting`: the body for CountTokens, whose requests carry no max_tokens; an InvokeModel body needs one, so it
    is the output cap or 1, raised above a thinking budget instead of cutting the budget.

    Raises ProviderRequestError (400 `output_cap_too_small_for_reasoning`, param max_tokens) when the output cap
    leaves no room for the minimum thinking budget of 1,024 tokens.
    """
    native = request.native
    body: dict[str, Any] = copy.deepcopy(dict(native.body)) if native is not None else {}
    body.pop("model", None)
    body.pop("stream", None)
    removed: list[str] = []

    betas = _bedrock_betas(request.betas, body.pop("anthropic_beta", None))
    if betas:
        body["anthropic_beta"] = betas
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    for name in REFUSED_FIELDS:
        if name in body:
            del body[name]
            removed.append(name)
    for name, beta in BETA_GATED_FIELDS.items():
        keep = beta in betas or (name == "output_config" and traits.bedrock.output_config)
        if name in body and not keep:
            del body[name]
            removed.append(name)
    removed += _remove_refused_parts(body)

    max_tokens = request.max_output_tokens
    if max_tokens is None:
        given = body.get("max_tokens")
        max_tokens = given if isinstance(given, int) and not isinstance(given, bool) else None
    if max_tokens is None and counting:
        max_tokens = 1
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
        _fit_thinking(body, max_tokens, effort, traits, counting=counting)
    for name in ("temperature", "top_p", "top_k"):
        # The model's traits removed it from the fitted request (logged there); the body must not send it either.
        if getattr(request, name) is None and body.get(name) is not None:
            del body[name]
    if isinstance(body.get("messages"), list):
        body["messages"] = _fold_system_turns(body["messages"])
    body["anthropic_version"] = ANTHROPIC_VERSION
    if removed:
        logger.info("fields Bedrock refuses not sent", extra={"fields": removed})
    return body


def _bedrock_betas(header: tuple[str, ...], in_body: object) -> list[str]:
    """The betas of the anthropic-beta header and of the body's own anthropic_beta (a list, or one comma-separated
    string) that Bedrock accepts, under Bedrock's names, each once in order; the others are logged and dropped."""
    asked: list[str] = []
    for value in [*header, *(in_body if isinstance(in_body, list) else [in_body])]:
        if isinstance(value, str):
            asked += [beta.strip() for beta in value.split(",") if beta.strip()]
    accepted: list[str] = []
    dropped: list[str] = []
    for beta in asked:
        name = BEDROCK_BETA_NAMES.get(beta, beta)
        target = accepted if name in BEDROCK_BETAS else dropped
        if name not in target:
            target.append(name)
    if dropped:
        logger.info("anthropic betas Bedrock refuses not sent", extra={"betas": dropped})
    return accepted


def _remove_refused_parts(body: dict[str, Any]) -> list[str]:
    """Remove the tool fields and cache_control fields Bedrock refuses; the paths of what was removed."""
    removed: list[str] = []
    tools = body.get("tools")
    for number, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, dict):
            continue
        for name in REFUSED_TOOL_FIELDS:
            if name in tool:
                del tool[name]
                removed.append(f"tools[{number}].{name}")
        removed += _clean_cache_control(tool, f"tools[{number}]")
    removed += _clean_cache_control(body, "")
    system = body.get("system")
    if isinstance(system, list):
        removed += _clean_blocks(system, "system")
    messages = body.get("messages")
    for number, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            removed += _clean_blocks(content, f"messages[{number}].content")
    return removed


def _clean_blocks(blocks: list[Any], path: str) -> list[str]:
    removed: list[str] = []
    for number, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        removed += _clean_cache_control(block, f"{path}[{number}]")
        # A tool result's own content blocks may carry cache points too.
        inner = block.get("content") if block.get("type") == "tool_result" else None
        if isinstance(inner, list):
            removed += _clean_blocks(inner, f"{path}[{number}].content")
    return removed


def _clean_cache_control(holder: dict[str, Any], path: str) -> list[str]:
    cache_control = holder.get("cache_control")
    if not isinstance(cache_control, dict):
        return []
    removed = []
    for name in REFUSED_CACHE_CONTROL_FIELDS:
        if name in cache_control:
            del cache_control[name]
            removed.append(f"{path}.cache_control.{name}" if path else f"cache_control.{name}")
    return removed


def _fit_thinking(
    body: dict[str, Any], max_tokens: int, effort: object, traits: ModelTraits, *, counting: bool
) -> None:
    """Adaptive thinking as a budget for a model without it; an enabled budget below max_tokens."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return
    if thinking.get("type") == "adaptive" and not traits.bedrock.adaptive_thinking:
        body["thinking"] = _adaptive_as_budget(max_tokens, effort)
        logger.info("adaptive thinking sent as a thinking budget", extra={"thinking": body["thinking"]})
        return
    budget = thinking.get("budget_tokens")
    if thinking.get("type") != "enabled" or not isinstance(budget, int) or isinstance(budget, bool):
        return
    if budget < MIN_THINKING_BUDGET:
        # The caller's own budget is invalid whatever the cap: Bedrock says so in its own words.
        return
    if counting:
        body["max_tokens"] = max(max_tokens, budget + 1)
        return
    if budget >= max_tokens:
        if max_tokens - 1 < MIN_THINKING_BUDGET:
            raise ProviderRequestError(
                f"Reasoning needs a thinking budget of at least {MIN_THINKING_BUDGET} tokens below max_tokens, and "
                f"the output cap for this request is {max_tokens} tokens; raise max_tokens above "
                f"{MIN_THINKING_BUDGET} (within your plan's output cap) or turn thinking off.",
                param="max_tokens",
                code="output_cap_too_small_for_reasoning",
            )
        body["thinking"] = {**thinking, "budget_tokens": max_tokens - 1}


def _adaptive_as_budget(max_tokens: int, effort: object) -> dict[str, Any]:
    """Adaptive thinking as the budget its effort level would spend of max_tokens; off when that is below the
    minimum budget, rather than a budget that would starve the answer."""
    share = ADAPTIVE_THINKING_SHARES.get(effort if isinstance(effort, str) else "", DEFAULT_ADAPTIVE_THINKING_SHARE)
    budget = int(max_tokens * share)
    if budget < MIN_THINKING_BUDGET:
        return {"type": "disabled"}
    return {"type": "enabled", "budget_tokens": budget}


def _fold_system_turns(messages: list[Any]) -> list[Any]:
    """The messages with each `system` turn folded into a user turn as system reminders: into the next user turn
    (after its leading tool results, which must come first), else at the end of the previous user turn, else as a
    user turn of its own."""
    if not any(isinstance(message, dict) and message.get("role") == "system" for message in messages):
        return messages
    folded: list[Any] = []
    pending: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            pending += _system_reminders(message.get("content"))
        elif pending and role == "user":
            folded.append({**message, "content": _with_reminders_first(message.get("content"), pending)})
            pending = []
        else:
            if pending:
                _append_to_previous_user_turn(folded, pending)
                pending = []
            folded.append(message)
    if pending:
        _append_to_previous_user_turn(folded, pending)
    logger.info("system turns inside messages sent as system reminders in user turns")
    return folded


def _with_reminders_first(content: object, reminders: list[dict[str, Any]]) -> list[Any]:
    """A user turn's content with the reminders in front, after its leading tool results (Anthropic's API
    requires a user turn's tool_result blocks to come first)."""
    blocks = _content_blocks(content)
    start = 0
    while start < len(blocks) and isinstance(blocks[start], dict) and blocks[start].get("type") == "tool_result":
        start += 1
    return [*blocks[:start], *reminders, *blocks[start:]]


def _append_to_previous_user_turn(folded: list[Any], reminders: list[dict[str, Any]]) -> None:
    last = folded[-1] if folded else None
    if isinstance(last, dict) and last.get("role") == "user":
        folded[-1] = {**last, "content": [*_content_blocks(last.get("content")), *reminders]}
    else:
        folded.append({"role": "user", "content": reminders})


def _content_blocks(content: object) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []


def _system_reminders(content: object) -> list[dict[str, Any]]:
    """A system turn's text blocks as system reminders, each block's other fields (cache_control) kept."""
    reminders: list[dict[str, Any]] = []
    for block in _content_blocks(content):
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            reminders.append({**block, "text": SYSTEM_REMINDER.format(text=block["text"])})
        else:
            # Not text: no reminder can say it, so it goes as it is for Bedrock to judge.
            reminders.append(block)
    return reminders


# --- Bedrock's answers -------------------------------------------------------------------------------------
