"""The gateway's conversation model as a Converse request (answers: converse_answer.py, streams: converse_stream.py).

Converse's own rules are applied here (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html):
user turns first and alternating, no blank text, a toolConfig whenever the history holds tool blocks, images
and documents within their limits, tool ids of the allowed characters. What Converse cannot express is refused
with a 400 naming it; a value that changes nothing passes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    OpaqueBlock,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
    ToolSpec,
)
from llm_gateway.domain.registry import ModelTraits
from llm_gateway.errors import ProviderRequestError
from llm_gateway.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockTypeDef,
        ConverseRequestTypeDef,
        SystemContentBlockTypeDef,
        ToolConfigurationTypeDef,
        ToolResultContentBlockTypeDef,
        ToolSpecificationTypeDef,
        ToolTypeDef,
    )
from llm_gateway.providers.bedrock.converse_settings import additional_fields, inference_config
from llm_gateway.providers.bedrock.errors import refused
from llm_gateway.providers.bedrock.media import MAX_IMAGES, document_block, image_block

# Converse insists on a user turn first and rejects blank text, so a history that opens with an assistant turn
# (or has no user/assistant turn at all, only system prompts) gets this short neutral user turn in front. It is
# preferred over refusing the request (OpenAI accepts such histories) and over dropping or moving the assistant
# text (which would change what the model is told it said).
CONVERSATION_START_TEXT = "(conversation start)"
# A tool that returned nothing still needs a non-blank result block, or Bedrock refuses the whole history.
EMPTY_TOOL_RESULT_TEXT = "(no output)"
EMPTY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


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
    # The Responses API's: no truncation (its default), and a cap on hosted tools' calls (Bedrock makes none).
    # https://platform.openai.com/docs/api-reference/responses/create
    "truncation": ("disabled",),
    "max_tool_calls": None,
}

# Fields of a message, content block or tool that Converse has no place for but that change nothing it could do:
# a participant's name (multi-agent frameworks send one on every message), an image's detail level (Bedrock picks
# the resolution itself), a tool's strict flag (Converse validates arguments against the schema either way), and
# the gateway's own mark of a refusal. Any other field with a value is refused.
_NEUTRAL_FIELDS = frozenset({"name", "detail", "strict", "refusal"})


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
        raise refused(
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
    inference = inference_config(request)
    if inference:
        params["inferenceConfig"] = inference
    tool_config = _tool_config(request, history)
    if tool_config is not None:
        params["toolConfig"] = tool_config
    additional = additional_fields(request, traits)
    if additional:
        params["additionalModelRequestFields"] = additional
    return params


def _refuse_untranslatable(request: ChatRequest, traits: ModelTraits) -> None:
    """A 400 for a request parameter Converse cannot express, unless its value changes nothing."""
    choice = request.tool_choice
    if choice is not None and choice.parallel is False and request.tools:
        raise refused(
            "Bedrock models decide themselves whether to call tools in parallel; leave parallel_tool_calls out.",
            "parallel_tool_calls",
            "unsupported_parameter",
        )
    if request.top_k is not None and not traits.bedrock.anthropic_messages:
        raise refused("This model takes no top_k on Bedrock; leave it out.", "top_k", "unsupported_parameter")
    if request.output_format is not None:
        raise refused(
            "Bedrock models take no structured output format through the gateway; leave it out for this model.",
            request.output_format.path or "response_format",
            "unsupported_parameter",
        )
    _refuse_fields_of_parts(request)
    for name, value in request.extra.items():
        neutral = _NEUTRAL_VALUES.get(name, ())
        if value is None or neutral is None or value in neutral:
            continue
        raise refused(
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
                raise refused(
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
        converse = [image_block(block)]
    elif isinstance(block, DocumentBlock):
        converse = [document_block(block)]
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
    return refused(
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
            content.append(image_block(inner))  # type: ignore[arg-type]
        elif isinstance(inner, DocumentBlock):
            content.append(document_block(inner))  # type: ignore[arg-type]
        else:
            raise _cannot_express(inner)
    result: dict[str, Any] = {
        "toolUseId": tool_use_id(block.tool_call_id),
        "content": content or [{"text": EMPTY_TOOL_RESULT_TEXT}],
    }
    if block.is_error:
        result["status"] = "error"
    return {"toolResult": result}  # type: ignore[typeddict-item]


def _tool_arguments(block: ToolCallBlock) -> dict[str, Any]:
    # Some clients send "" for a call without arguments; that is the empty object, not an error.
    parsed = block.parsed_arguments()
    if not isinstance(parsed, dict):
        raise refused(
            "Tool call arguments must be a JSON object encoded as a string, as the model produced them.",
            f"{block.path}.function.arguments" if block.path else "",
            "invalid_tool_arguments",
        )
    return parsed


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
        raise refused(
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
