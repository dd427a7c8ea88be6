"""The gateway's conversation model in Bedrock's Converse API and back: requests, answers, stream events.

Converse's own rules are applied here (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html):
user turns first and alternating, no blank text, a toolConfig whenever the history holds tool blocks, images
and documents within their limits, tool ids of the allowed characters. What Converse cannot express is refused
with a 400 naming it; a value that changes nothing passes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llm_gateway.domain.conversation import (
    ChatRequest,
    Completion,
    ContentBlock,
    DocumentBlock,
    Finish,
    ImageBlock,
    OpaqueBlock,
    ReasoningBlock,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StopReason,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallBlock,
    ToolCallStart,
    ToolResultBlock,
    ToolSpec,
    Usage,
)
from llm_gateway.domain.images import image_dimensions
from llm_gateway.domain.registry import ModelTraits
from llm_gateway.errors import GatewayError, ProviderError, ProviderRequestError
from llm_gateway.observability import logger
from llm_gateway.providers.error_table import BEDROCK_ERROR_STOP_REASONS, bedrock_rule

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import DocumentFormatType, ImageFormatType
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockTypeDef,
        ConverseRequestTypeDef,
        ConverseResponseTypeDef,
        ConverseStreamOutputTypeDef,
        InferenceConfigurationTypeDef,
        SystemContentBlockTypeDef,
        TokenUsageTypeDef,
        ToolConfigurationTypeDef,
        ToolResultContentBlockTypeDef,
        ToolSpecificationTypeDef,
        ToolTypeDef,
    )

# Converse insists on a user turn first and rejects blank text, so a history that opens with an assistant turn
# (or has no user/assistant turn at all, only system prompts) gets this short neutral user turn in front. It is
# preferred over refusing the request (OpenAI accepts such histories) and over dropping or moving the assistant
# text (which would change what the model is told it said).
CONVERSATION_START_TEXT = "(conversation start)"
# A tool that returned nothing still needs a non-blank result block, or Bedrock refuses the whole history.
EMPTY_TOOL_RESULT_TEXT = "(no output)"
EMPTY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}

# Converse's limits on images in one request.
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB
MAX_IMAGE_SIDE_PIXELS = 8000

# Thinking budgets for OpenAI's reasoning_effort on Anthropic's models (Anthropic's minimum budget is 1,024):
# the levels LiteLLM uses for the same translation, so clients moving between gateways see the same behaviour.
# https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
MIN_THINKING_BUDGET = 1024
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
# OpenAI's reasoning efforts as output_config.effort for models with adaptive thinking (Claude 4.6 and later),
# https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html
ADAPTIVE_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}

# Request parameters that Converse has no place for. A value with an effect is refused (400 naming the
# parameter) rather than answered without it; the values listed here change nothing, so they pass. None: any
# value passes, because the parameter only labels the request (end user, caching, stored completions).
# https://platform.openai.com/docs/api-reference/chat/create, https://docs.anthropic.com/en/api/messages
_NEUTRAL_VALUES: dict[str, tuple[object, ...] | None] = {
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
    "service_tier": ("auto", "default", "standard_only"),
    "store": (False,),
    "user": None,
    "metadata": None,
    "prompt_cache_key": None,
    "safety_identifier": None,
    "n": (1,),
}

# Fields of a message, content block or tool that Converse has no place for but that change nothing it could do:
# a participant's name (multi-agent frameworks send one on every message), an image's detail level (Bedrock picks
# the resolution itself), a tool's strict flag (Converse validates arguments against the schema either way), and
# the gateway's own mark of a refusal. Any other field with a value is refused.
_NEUTRAL_FIELDS = frozenset({"name", "detail", "strict", "refusal"})

_IMAGE_FORMATS: dict[str, ImageFormatType] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html
_DOCUMENT_FORMATS: dict[str, DocumentFormatType] = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
# A document name may hold letters, digits, single spaces, hyphens, parentheses and square brackets.
_NOT_IN_DOCUMENT_NAME = re.compile(r"[^A-Za-z0-9 \-()\[\]]+")

# Every documented stop reason. A reason added later is read as a plain end of turn. The malformed_* reasons are
# no answer at all: they are errors (the error table's stop-reason row), so a non-streamed call is retried and a
# stream ends in an error event.
STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    # The answer was cut because the context window filled up: a length stop for every client.
    "model_context_window_exceeded": "max_tokens",
    "tool_use": "tool_use",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

# Converse's toolUseId is 1-64 characters; Anthropic's models take only [a-zA-Z0-9_-] in it (Bedrock's own schema
# also allows "." and ":"), so ids are kept to the narrower set every model takes.
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolUseBlock.html
# https://platform.claude.com/docs/en/api/messages (tool_use.id: ^[a-zA-Z0-9_-]+$)
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NOT_IN_TOOL_USE_ID = re.compile(r"[^a-zA-Z0-9_-]")


def tool_use_id(call_id: str) -> str:
    """The toolUseId for a tool call id: the id itself when Bedrock takes it, else a deterministic stand-in (its
    allowed characters, cut to 39, then 24 hex digits of its SHA-256: at most 64 characters).

    Conversations begun with another provider carry ids Bedrock refuses (`call_` + 80 characters with `|`); the
    same id always maps to the same stand-in, so a toolUse and its toolResult still pair up, and distinct ids
    stay distinct.
    """
    if _TOOL_USE_ID.fullmatch(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode("utf-8")).hexdigest()[:24]
    return f"{_NOT_IN_TOOL_USE_ID.sub('_', call_id)[:39]}_{digest}"


def _refused(message: str, path: str, code: str) -> ProviderRequestError:
    return ProviderRequestError(message, param=path or None, code=code)


@dataclass
class _Turn:
    role: Literal["user", "assistant"]
    content: list[ContentBlockTypeDef]


@dataclass
class _History:
    system: list[SystemContentBlockTypeDef] = field(default_factory=list)
    turns: list[_Turn] = field(default_factory=list)
    tools_used: list[str] = field(default_factory=list)
    has_tool_blocks: bool = False
    images: int = 0

    def add(self, role: Literal["user", "assistant"], blocks: list[ContentBlockTypeDef]) -> None:
        # A message that translates to nothing (blank text) is dropped: Bedrock rejects empty turns.
        if not blocks:
            return
        if self.turns and self.turns[-1].role == role:
            self.turns[-1].content.extend(blocks)
        else:
            self.turns.append(_Turn(role, blocks))


def converse_request(request: ChatRequest, model_id: str, traits: ModelTraits) -> ConverseRequestTypeDef:
    """The Converse request for a chat request; raises ProviderRequestError for what Converse cannot take."""
    _refuse_untranslatable(request, traits)
    history = _History()
    for block in request.system:
        if not isinstance(block, TextBlock):
            raise _cannot_express(block)
        if block.text.strip():
            history.system.append({"text": block.text})
        if block.cache:
            history.system.append(CACHE_POINT)  # type: ignore[arg-type]
    for message in request.messages:
        blocks = [converse for block in message.content for converse in _blocks(block, history, message.role)]
        history.add(message.role, blocks)
    if history.images > MAX_IMAGES:
        raise _refused(
            f"Bedrock takes at most {MAX_IMAGES} images in one request; this one has {history.images}.",
            "messages",
            "too_many_images",
        )
    if not history.turns or history.turns[0].role == "assistant":
        history.turns.insert(0, _Turn("user", [{"text": CONVERSATION_START_TEXT}]))
    _trim_final_assistant_text(history)

    params: ConverseRequestTypeDef = {
        "modelId": model_id,
        "messages": [{"role": turn.role, "content": turn.content} for turn in history.turns],
    }
    if history.system:
        params["system"] = history.system
    inference = _inference_config(request)
    if inference:
        params["inferenceConfig"] = inference
    tool_config = _tool_config(request, history)
    if tool_config is not None:
        params["toolConfig"] = tool_config
    additional = _additional_fields(request, traits)
    if additional:
        params["additionalModelRequestFields"] = additional
    return params


def _refuse_untranslatable(request: ChatRequest, traits: ModelTraits) -> None:
    """A 400 for a request parameter Converse cannot express, unless its value changes nothing."""
    choice = request.tool_choice
    if choice is not None and choice.parallel is False and request.tools:
        raise _refused(
            "Bedrock models decide themselves whether to call tools in parallel; leave parallel_tool_calls out.",
            "parallel_tool_calls",
            "unsupported_parameter",
        )
    if request.top_k is not None and not traits.bedrock.anthropic_messages:
        raise _refused("This model takes no top_k on Bedrock; leave it out.", "top_k", "unsupported_parameter")
    _refuse_fields_of_parts(request)
    for name, value in request.extra.items():
        neutral = _NEUTRAL_VALUES.get(name, ())
        if value is None or neutral is None or value in neutral:
            continue
        raise _refused(
            f"Bedrock models do not take '{name}'"
            + (f" (except {', '.join(json.dumps(v) for v in neutral)}, which changes nothing)" if neutral else "")
            + "; leave it out.",
            name,
            "unsupported_parameter",
        )


def _refuse_fields_of_parts(request: ChatRequest) -> None:
    """A 400 naming the first field of a message, content block or tool that Converse cannot express."""
    located: list[tuple[str, Mapping[str, Any]]] = [(tool.path, tool.extra) for tool in request.tools]
    located += [(message.path, message.extra) for message in request.messages]
    located += [(block.path, block.extra) for block in request.blocks() if not isinstance(block, OpaqueBlock)]
    for path, extra in located:
        for name, value in extra.items():
            if value is not None and name not in _NEUTRAL_FIELDS:
                raise _refused(
                    f"Bedrock models take no '{name}' here; leave it out for this model.",
                    f"{path}.{name}" if path else name,
                    "unsupported_parameter",
                )


def _trim_final_assistant_text(history: _History) -> None:
    """A conversation that ends with an assistant turn asks the model to continue it; Anthropic's models refuse
    such a turn when its text ends in whitespace ("final assistant content cannot end with trailing
    whitespace"), and the whitespace is no content the model would continue from."""
    last = history.turns[-1]
    if last.role != "assistant" or "text" not in last.content[-1]:
        return
    trimmed = last.content[-1]["text"].rstrip()
    if trimmed:
        last.content[-1] = {"text": trimmed}
        return
    del last.content[-1]
    if not last.content:
        history.turns.pop()


def _blocks(block: ContentBlock, history: _History, role: str) -> list[ContentBlockTypeDef]:
    """A content block as Converse content blocks (none for blank text), a cache point after it if asked."""
    converse: list[ContentBlockTypeDef]
    if isinstance(block, TextBlock):
        converse = [{"text": block.text}] if block.text.strip() else []
    elif isinstance(block, ImageBlock):
        history.images += 1
        converse = [_image(block)]
    elif isinstance(block, DocumentBlock):
        converse = [_document(block)]
    elif isinstance(block, ToolCallBlock):
        history.has_tool_blocks = True
        if block.name not in history.tools_used:
            history.tools_used.append(block.name)
        arguments = _tool_arguments(block)
        converse = [{"toolUse": {"toolUseId": tool_use_id(block.id), "name": block.name, "input": arguments}}]
    elif isinstance(block, ToolResultBlock):
        history.has_tool_blocks = True
        converse = [_tool_result(block, history)]
    elif isinstance(block, ReasoningBlock):
        converse = _reasoning(block)
    else:
        raise _cannot_express(block)
    if converse and getattr(block, "cache", False):
        converse.append(CACHE_POINT)  # type: ignore[arg-type]
    return converse


def _reasoning(block: ReasoningBlock) -> list[ContentBlockTypeDef]:
    """Reasoning goes back to the model only as the provider signed it; unsigned reasoning (from another provider)
    is not the model's to verify, and models ignore earlier turns' reasoning anyway."""
    if block.redacted is not None:
        return [{"reasoningContent": {"redactedContent": base64.b64decode(block.redacted)}}]
    if block.signature:
        return [{"reasoningContent": {"reasoningText": {"text": block.text, "signature": block.signature}}}]
    logger.info("unsigned reasoning of an earlier turn not sent to Bedrock", extra={"path": block.path})
    return []


def _cannot_express(block: ContentBlock) -> ProviderRequestError:
    kind = block.type if isinstance(block, OpaqueBlock) else type(block).__name__.removesuffix("Block").lower()
    return _refused(
        f"Bedrock models take no '{kind}' content through the gateway; leave it out for this model.",
        block.path,
        "unsupported_content",
    )


def _tool_result(block: ToolResultBlock, history: _History) -> ContentBlockTypeDef:
    content: list[ToolResultContentBlockTypeDef] = []
    for inner in block.content:
        if isinstance(inner, TextBlock):
            if inner.text.strip():
                content.append({"text": inner.text})
        elif isinstance(inner, ImageBlock):
            history.images += 1
            content.append(_image(inner))  # type: ignore[arg-type]
        elif isinstance(inner, DocumentBlock):
            content.append(_document(inner))  # type: ignore[arg-type]
        else:
            raise _cannot_express(inner)
    result: dict[str, Any] = {
        "toolUseId": tool_use_id(block.tool_call_id),
        "content": content or [{"text": EMPTY_TOOL_RESULT_TEXT}],
    }
    if block.is_error:
        result["status"] = "error"
    return {"toolResult": result}  # type: ignore[typeddict-item]


def _base64_bytes(data: str, path: str, what: str) -> bytes:
    try:
        # Base64 wrapped over several lines is common; any other stray character is an error.
        decoded = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise _refused(f"The {what} does not hold valid base64 data.", path, f"invalid_{what.split(maxsplit=1)[0]}")
    return decoded


def _image(block: ImageBlock) -> ContentBlockTypeDef:
    path = block.path
    media_type, data = block.media_type, block.base64
    if block.url is not None:
        scheme = block.url.split(":", 1)[0].lower()
        if scheme in {"http", "https"}:
            raise _refused(
                "Bedrock models only take inline images and the gateway does not fetch image URLs; "
                "send the image as a data URL (data:image/png;base64,...).",
                path,
                "image_url_not_supported",
            )
        if scheme != "data":
            raise _refused(
                "An image_url must be a data URL such as data:image/png;base64,...", path, "invalid_image_url"
            )
        header, comma, data = block.url[len("data:") :].partition(",")
        media_type, *attributes = header.split(";")
        if not comma or "base64" not in {attribute.strip().lower() for attribute in attributes}:
            raise _refused(
                "The image data URL must be base64-encoded: data:image/png;base64,...", path, "invalid_image_url"
            )
    image_format = _IMAGE_FORMATS.get((media_type or "").strip().lower())
    if image_format is None:
        raise _refused(
            f"Unsupported image type '{media_type or 'none'}'; Bedrock takes png, jpeg, gif and webp images.",
            path,
            "invalid_image_url",
        )
    image = _base64_bytes(data or "", path, "image data URL")
    if len(image) > MAX_IMAGE_BYTES:
        raise _refused(
            f"The image is {len(image)} bytes; Bedrock takes images of at most 3.75 MB ({MAX_IMAGE_BYTES} bytes).",
            path,
            "image_too_large",
        )
    # An image whose header the gateway cannot read is left for Bedrock to judge.
    dimensions = image_dimensions(image)
    if dimensions is not None and max(dimensions) > MAX_IMAGE_SIDE_PIXELS:
        raise _refused(
            f"The image is {dimensions[0]}x{dimensions[1]} pixels; Bedrock takes images of at most "
            f"{MAX_IMAGE_SIDE_PIXELS} pixels on each side.",
            path,
            "image_too_large",
        )
    return {"image": {"format": image_format, "source": {"bytes": image}}}


def _document(block: DocumentBlock) -> ContentBlockTypeDef:
    """A document block; Converse needs a name of its allowed characters, so a missing or odd one is made so."""
    name = " ".join(_NOT_IN_DOCUMENT_NAME.sub(" ", block.name or "").split()) or "document"
    if block.text is not None:
        return {"document": {"format": "txt", "name": name, "source": {"bytes": block.text.encode("utf-8")}}}
    document_format = _DOCUMENT_FORMATS.get((block.media_type or "").lower())
    if document_format is None or block.base64 is None:
        raise _refused(
            f"Bedrock takes inline documents of these types: {', '.join(sorted(_DOCUMENT_FORMATS))}; "
            f"this one is '{block.media_type or 'unknown'}'" + (" by URL" if block.url else "") + ".",
            block.path,
            "unsupported_document",
        )
    data = _base64_bytes(block.base64, block.path, "document data")
    return {"document": {"format": document_format, "name": name[:200], "source": {"bytes": data}}}


def _tool_arguments(block: ToolCallBlock) -> dict[str, Any]:
    # Some clients send "" for a call without arguments; that is the empty object, not an error.
    parsed = block.parsed_arguments()
    if not isinstance(parsed, dict):
        raise _refused(
            "Tool call arguments must be a JSON object encoded as a string, as the model produced them.",
            f"{block.path}.function.arguments" if block.path else "",
            "invalid_tool_arguments",
        )
    return parsed


def _inference_config(request: ChatRequest) -> InferenceConfigurationTypeDef:
    config: InferenceConfigurationTypeDef = {}
    if request.max_output_tokens is not None:
        config["maxTokens"] = request.max_output_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    return config


def thinking_budget(request: ChatRequest) -> int | None:
    """The thinking budget for an Anthropic model, or None when the request asks for no reasoning: the caller's
    budget, or its effort level's, within the output cap (the budget counts inside max_tokens, and Anthropic's
    models need max_tokens above it)."""
    reasoning = request.reasoning
    if reasoning is None or not reasoning.enabled:
        return None
    budget = reasoning.budget_tokens or THINKING_BUDGETS.get(reasoning.effort or "medium", THINKING_BUDGETS["medium"])
    cap = request.max_output_tokens
    if cap is not None:
        budget = min(budget, cap - 1)
    if budget < MIN_THINKING_BUDGET:
        raise _refused(
            f"Reasoning needs a thinking budget of at least {MIN_THINKING_BUDGET} tokens below the output cap; "
            f"raise max_tokens above {MIN_THINKING_BUDGET}.",
            "max_tokens",
            "output_cap_too_small_for_reasoning",
        )
    return budget


def _additional_fields(request: ChatRequest, traits: ModelTraits) -> dict[str, Any]:
    """Anthropic's own settings, which Converse passes through to the model."""
    fields: dict[str, Any] = {}
    if not traits.bedrock.anthropic_messages:
        if request.reasoning is not None and request.reasoning.enabled:
            raise _refused(
                "This model has no reasoning setting on Bedrock; leave reasoning_effort out.",
                "reasoning_effort",
                "unsupported_parameter",
            )
        return fields
    reasoning = request.reasoning
    if traits.bedrock.adaptive_thinking and reasoning is not None and reasoning.enabled:
        # Claude 4.6 and later decide how much to think; the effort level guides them.
        fields["thinking"] = {"type": "adaptive"}
        fields["output_config"] = {"effort": ADAPTIVE_EFFORTS.get(reasoning.effort or "high", "high")}
    else:
        budget = thinking_budget(request)
        if budget is not None:
            fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if request.top_k is not None:
        fields["top_k"] = request.top_k
    return fields


def _tool_spec(tool: ToolSpec) -> ToolSpecificationTypeDef:
    spec: ToolSpecificationTypeDef = {"name": tool.name, "inputSchema": {"json": _input_schema(tool)}}
    # Bedrock rejects an empty description; a missing one is fine.
    if tool.description and tool.description.strip():
        spec["description"] = tool.description
    return spec


def _input_schema(tool: ToolSpec) -> dict[str, Any]:
    """The tool's parameters as Converse takes them: a JSON schema of type object, which Anthropic's models
    require; OpenAI's own examples sometimes leave the type out, which is read as an object."""
    schema = tool.parameters
    if schema is None:
        return EMPTY_OBJECT_SCHEMA
    if "type" not in schema:
        return {"type": "object", **schema}
    if schema["type"] != "object":
        raise _refused(
            "A tool's parameters must be a JSON schema of type object: a call's arguments are always an object.",
            f"{tool.path}.function.parameters" if tool.path else "",
            "invalid_tool_schema",
        )
    return dict(schema)


def _tool_config(request: ChatRequest, history: _History) -> ToolConfigurationTypeDef | None:
    declared = {tool.name: _tool_spec(tool) for tool in request.tools}
    choice = request.tool_choice
    mode = choice.mode if choice is not None else None
    if declared and mode != "none":
        tools: list[ToolTypeDef] = []
        for tool in request.tools:
            tools.append({"toolSpec": declared[tool.name]})
            if tool.cache:
                tools.append(CACHE_POINT)  # type: ignore[arg-type]
        config: ToolConfigurationTypeDef = {"tools": tools}
        if mode == "auto":
            config["toolChoice"] = {"auto": {}}
        elif mode == "required":
            config["toolChoice"] = {"any": {}}
        elif mode == "tool" and choice is not None and choice.name is not None:
            config["toolChoice"] = {"tool": {"name": choice.name}}
        return config
    if not history.has_tool_blocks:
        return None
    # Bedrock refuses toolUse/toolResult blocks without a toolConfig, and Converse has no "none" choice: offer
    # only the tools the history already used (their declared spec, else a name with an open schema). The model
    # may in principle call one again; that is the closest Converse gets to "none".
    used: list[ToolTypeDef] = [
        {"toolSpec": declared.get(name) or {"name": name, "inputSchema": {"json": EMPTY_OBJECT_SCHEMA}}}
        for name in history.tools_used
    ]
    # Tool results without any tool call: nothing to name, so let Bedrock explain what is wrong with the history.
    return {"tools": used} if used else None


# --- Converse answers -> Completion -----------------------------------------------------------------------


def completion(response: ConverseResponseTypeDef, model_id: str) -> Completion:
    message = response.get("output", {}).get("message")
    blocks: list[ContentBlock] = []
    for block in message["content"] if message else []:
        if "text" in block:
            blocks.append(TextBlock(block["text"]))
        elif "toolUse" in block:
            tool_use = block["toolUse"]
            blocks.append(ToolCallBlock(tool_use["toolUseId"], tool_use["name"], json.dumps(tool_use["input"])))
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if "redactedContent" in reasoning:
                blocks.append(ReasoningBlock(redacted=base64.b64encode(reasoning["redactedContent"]).decode()))
            else:
                text = reasoning.get("reasoningText", {})
                blocks.append(ReasoningBlock(text.get("text", ""), signature=text.get("signature")))
    if "usage" not in response:
        raise ProviderError("Bedrock answered without token usage, so the call cannot be metered.")
    stop_reason = response.get("stopReason", "")
    if stop_reason in BEDROCK_ERROR_STOP_REASONS:
        raise malformed_output(stop_reason, model_id)
    return Completion(tuple(blocks), stop_reason_of(stop_reason), usage_of(response["usage"]))


def stop_reason_of(stop_reason: str) -> StopReason:
    return STOP_REASONS.get(stop_reason, "end_turn")


def malformed_output(stop_reason: str, model_id: str) -> GatewayError:
    rule = bedrock_rule(stop_reason, "", kind="stop reason")
    return rule.build(rule.message.format(model=model_id, said=stop_reason))


def usage_of(usage: TokenUsageTypeDef) -> Usage:
    # Bedrock's inputTokens leaves out cached tokens; the gateway's prompt_tokens counts them, as OpenAI's does.
    cache_read = usage.get("cacheReadInputTokens", 0)
    cache_write = usage.get("cacheWriteInputTokens", 0)
    return Usage(
        prompt_tokens=usage.get("inputTokens", 0) + cache_read + cache_write,
        completion_tokens=usage.get("outputTokens", 0),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


class StreamTranslator:
    """Turns Converse stream events into gateway stream events, numbering tool calls from 0."""

    def __init__(self) -> None:
        # Bedrock numbers every content block (text too); tool calls are numbered apart.
        self._tool_index_by_block: dict[int, int] = {}
        self._tools_with_arguments: set[int] = set()
        self.stop_reason: StopReason | None = None
        self.malformed: str | None = None
        self.usage: Usage | None = None

    def translate(self, event: ConverseStreamOutputTypeDef) -> Iterator[StreamEvent]:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool_use = start["start"].get("toolUse")
            if tool_use is not None:
                index = self._tool_index_by_block[start["contentBlockIndex"]] = len(self._tool_index_by_block)
                yield ToolCallStart(index, tool_use["toolUseId"], tool_use["name"])
        elif "contentBlockDelta" in event:
            block = event["contentBlockDelta"]
            delta = block["delta"]
            if delta.get("text"):
                yield TextDelta(delta["text"])
            elif "toolUse" in delta:
                index = self._tool_index(block["contentBlockIndex"])
                fragment = delta["toolUse"]["input"]
                if fragment:
                    self._tools_with_arguments.add(index)
                    yield ToolCallArgumentsDelta(index, fragment)
            elif "reasoningContent" in delta:
                yield from self._reasoning(delta["reasoningContent"])
        elif "contentBlockStop" in event:
            tool_index = self._tool_index_by_block.get(event["contentBlockStop"]["contentBlockIndex"])
            # A call without arguments must still carry valid JSON, as the non-streamed answer does.
            if tool_index is not None and tool_index not in self._tools_with_arguments:
                self._tools_with_arguments.add(tool_index)
                yield ToolCallArgumentsDelta(tool_index, "{}")
        elif "messageStop" in event:
            stop_reason = event["messageStop"]["stopReason"]
            if stop_reason in BEDROCK_ERROR_STOP_REASONS:
                self.malformed = stop_reason
            elif self.stop_reason is None and self.malformed is None:
                self.stop_reason = stop_reason_of(stop_reason)
                yield Finish(self.stop_reason)
        elif "metadata" in event and self.usage is None and "usage" in event["metadata"]:
            self.usage = usage_of(event["metadata"]["usage"])

    @staticmethod
    def _reasoning(delta: Any) -> Iterator[StreamEvent]:
        if delta.get("text"):
            yield ReasoningDelta(delta["text"])
        if delta.get("signature"):
            yield ReasoningSignature(delta["signature"])
        if delta.get("redactedContent"):
            yield RedactedReasoning(base64.b64encode(delta["redactedContent"]).decode())

    def _tool_index(self, block_index: int) -> int:
        try:
            return self._tool_index_by_block[block_index]
        except KeyError:
            raise ProviderError(
                f"Bedrock streamed tool call arguments for content block {block_index} before starting the call."
            ) from None
