"""Amazon Bedrock provider: OpenAI chat requests served through the Converse and ConverseStream APIs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from llm_gateway.api.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    FinishReason,
    FunctionDefinition,
    ImagePart,
    Message,
    NamedToolChoice,
    RefusalPart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from llm_gateway.domain.registry import Target
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRequestError,
    ProviderTimeoutError,
    TargetMisconfiguredError,
)
from llm_gateway.providers.base import (
    Completion,
    Deadline,
    Finish,
    Provider,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallResult,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.providers.error_table import BEDROCK_ERROR_STOP_REASONS, bedrock_rule
from llm_gateway.providers.images import image_dimensions

if TYPE_CHECKING:
    from botocore.eventstream import EventStream
    from botocore.exceptions import ClientError
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_bedrock_runtime.literals import ImageFormatType
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockTypeDef,
        ConverseRequestTypeDef,
        ConverseResponseTypeDef,
        ConverseStreamOutputTypeDef,
        ConverseStreamRequestTypeDef,
        InferenceConfigurationTypeDef,
        SystemContentBlockTypeDef,
        TokenUsageTypeDef,
        ToolConfigurationTypeDef,
        ToolResultContentBlockTypeDef,
        ToolSpecificationTypeDef,
        ToolTypeDef,
    )

ClientFactory = Callable[[str | None, float], "BedrockRuntimeClient"]
"""Builds a bedrock-runtime client for (region, read timeout in seconds); region None is the function's own."""

CONNECT_TIMEOUT_SECONDS = 3.0

# Converse insists on a user turn first and rejects blank text, so a history that opens with an assistant turn
# (or has no user/assistant turn at all, only system prompts) gets this short neutral user turn in front. It is
# preferred over refusing the request (OpenAI accepts such histories) and over dropping or moving the assistant
# text (which would change what the model is told it said).
CONVERSATION_START_TEXT = "(conversation start)"
# A tool that returned nothing still needs a non-blank result block, or Bedrock refuses the whole history.
EMPTY_TOOL_RESULT_TEXT = "(no output)"
EMPTY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

# Converse's limits on images in one request.
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB
MAX_IMAGE_SIDE_PIXELS = 8000

# OpenAI chat parameters that Converse has no place for. A value with an effect is refused (400 naming the
# parameter) rather than answered without it; the values listed here change nothing, so they pass. None: any
# value passes, because the parameter only labels the request for OpenAI (end user, caching, stored completions).
# https://platform.openai.com/docs/api-reference/chat/create
_NEUTRAL_VALUES: dict[str, tuple[object, ...] | None] = {
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
    "service_tier": ("auto", "default"),
    "store": (False,),
    "metadata": None,
    "prompt_cache_key": None,
    "safety_identifier": None,
}

_IMAGE_FORMATS: dict[str, ImageFormatType] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}

# Every documented stop reason: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
# A reason added later is read as a plain stop. The malformed_* reasons are no answer at all: they are errors
# (the error table's stop-reason row), so a non-streamed call is retried and a stream ends in an error event.
_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    # The answer was cut because the context window filled up: to an OpenAI client that is a length stop.
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

# Converse's toolUseId is 1-64 characters; Anthropic's models take only [a-zA-Z0-9_-] in it (Bedrock's own schema
# also allows "." and ":"), so ids are kept to the narrower set every model takes.
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolUseBlock.html
# https://platform.claude.com/docs/en/api/messages (tool_use.id: ^[a-zA-Z0-9_-]+$)
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NOT_IN_TOOL_USE_ID = re.compile(r"[^a-zA-Z0-9_-]")
_ARN_IN_MODEL_ID = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]*):")
_ANY_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',;]+")
_ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


def default_client(region: str | None, read_timeout: float) -> BedrockRuntimeClient:
    """The production client: no botocore retries (the router retries and falls back) and short timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        # `max_attempts` would mean *retries* (botocore adds one); total_max_attempts=1 is a single attempt.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
    )
    return boto3.client("bedrock-runtime", region_name=region, config=config)


def read_timeout(target: Target, deadline: Deadline) -> float:
    """Seconds one socket read may wait: the target's `timeout_seconds`, else all the time the request has left.

    A non-streamed Converse call sends nothing until the answer is complete, so this bounds the whole call; in
    a stream it bounds the silence between two events. Whole seconds below a minute, whole half-minutes above
    (rounded down, never past the deadline), so that only a few clients are ever cached.
    """
    limit = deadline.remaining()
    if target.timeout_seconds:
        limit = min(limit, target.timeout_seconds)
    if limit >= 60:
        return float(int(limit // 30) * 30)
    return float(max(1, math.ceil(limit)))


def bedrock_region(target: Target) -> str | None:
    """The target's region, else the region inside an ARN model id, else None (the function's own region)."""
    if target.region:
        return target.region
    match = _ARN_IN_MODEL_ID.match(target.model_id)
    return (match.group("region") or None) if match else None


class BedrockProvider(Provider):
    """Serves chat completions from Bedrock models; one cached client per (region, read timeout)."""

    name = "bedrock"

    def __init__(self, client_factory: ClientFactory | None = None) -> None:
        self._client_factory = client_factory or default_client
        self._clients: dict[tuple[str | None, float], BedrockRuntimeClient] = {}

    def complete(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Completion:
        params = converse_request(request, target.model_id)
        _ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with _bedrock_errors(target):
            response = client.converse(**params)
        return _completion(response, target.model_id)

    def stream(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Iterator[StreamEvent]:
        # Not a generator: invalid requests and failures before Bedrock's 200 raise here, at call time,
        # so the caller gets a plain HTTP error; only failures inside the stream come from the iterator.
        # The two request shapes differ only in guardrail settings, which the gateway never sends.
        params = cast("ConverseStreamRequestTypeDef", converse_request(request, target.model_id))
        _ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with _bedrock_errors(target):
            response = client.converse_stream(**params)
        return _stream_events(response["stream"], target, deadline)

    def _client(self, target: Target, deadline: Deadline) -> BedrockRuntimeClient:
        # botocore fixes the read timeout per client, so the deadline caps it by choosing the client.
        key = (bedrock_region(target), read_timeout(target, deadline))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._client_factory(*key)
        return client


# --- OpenAI request -> Converse request -------------------------------------------------------------------


def tool_use_id(call_id: str) -> str:
    """The toolUseId for an OpenAI tool call id: the id itself when Bedrock takes it, else a deterministic
    stand-in (its allowed characters, cut to 39, then 24 hex digits of its SHA-256: at most 64 characters).

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


def converse_request(request: ChatCompletionRequest, model_id: str) -> ConverseRequestTypeDef:
    """The Converse request for an OpenAI chat request; raises ProviderRequestError for what Bedrock cannot take."""
    _refuse_untranslatable(request)
    history = _History()
    for position, message in enumerate(request.messages):
        _add_message(history, message, position)
    if history.images > MAX_IMAGES:
        raise ProviderRequestError(
            f"Bedrock takes at most {MAX_IMAGES} images in one request; this one has {history.images}.",
            param="messages",
            code="too_many_images",
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
    return params


def _refuse_untranslatable(request: ChatCompletionRequest) -> None:
    """A 400 for an OpenAI parameter Converse cannot express, unless its value changes nothing."""
    if request.parallel_tool_calls is False:
        raise ProviderRequestError(
            "Bedrock models decide themselves whether to call tools in parallel; leave parallel_tool_calls out.",
            param="parallel_tool_calls",
            code="unsupported_parameter",
        )
    for name, value in (request.model_extra or {}).items():
        neutral = _NEUTRAL_VALUES.get(name, ())
        if value is None or neutral is None or value in neutral:
            continue
        raise ProviderRequestError(
            f"Bedrock models do not take '{name}'"
            + (f" (except {', '.join(json.dumps(v) for v in neutral)}, which changes nothing)" if neutral else "")
            + "; leave it out.",
            param=name,
            code="unsupported_parameter",
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


def _add_message(history: _History, message: Message, position: int) -> None:
    if isinstance(message, SystemMessage | DeveloperMessage):
        history.system.extend({"text": text} for text in _texts(message.content))
    elif isinstance(message, UserMessage):
        blocks = _user_blocks(message, position)
        history.images += sum("image" in block for block in blocks)
        history.add("user", blocks)
    elif isinstance(message, AssistantMessage):
        history.add("assistant", _assistant_blocks(message, position, history))
    elif isinstance(message, ToolMessage):
        result: list[ToolResultContentBlockTypeDef] = [{"text": text} for text in _texts(message.content)]
        tool_result: ContentBlockTypeDef = {
            "toolResult": {
                "toolUseId": tool_use_id(message.tool_call_id),
                "content": result or [{"text": EMPTY_TOOL_RESULT_TEXT}],
            }
        }
        history.has_tool_blocks = True
        history.add("user", [tool_result])


def _texts(content: str | Sequence[TextPart | RefusalPart | ImagePart] | None) -> list[str]:
    """The non-blank texts of a message content; Bedrock rejects blank text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        pieces = [content]
    else:
        pieces = [
            part.text if isinstance(part, TextPart) else part.refusal
            for part in content
            if isinstance(part, TextPart | RefusalPart)
        ]
    return [piece for piece in pieces if piece.strip()]


def _user_blocks(message: UserMessage, position: int) -> list[ContentBlockTypeDef]:
    if isinstance(message.content, str):
        return [{"text": text} for text in _texts(message.content)]
    blocks: list[ContentBlockTypeDef] = []
    for part_position, part in enumerate(message.content):
        if isinstance(part, TextPart):
            blocks.extend({"text": text} for text in _texts(part.text))
        else:
            blocks.append(_image_block(part.image_url.url, f"messages[{position}].content[{part_position}]"))
    return blocks


def _image_block(url: str, param: str) -> ContentBlockTypeDef:
    scheme = url.split(":", 1)[0].lower()
    if scheme in {"http", "https"}:
        raise ProviderRequestError(
            "Bedrock models only take inline images and the gateway does not fetch image URLs; "
            "send the image as a data URL (data:image/png;base64,...).",
            param=param,
            code="image_url_not_supported",
        )
    if scheme != "data":
        raise ProviderRequestError(
            "An image_url must be a data URL such as data:image/png;base64,...", param=param, code="invalid_image_url"
        )
    header, comma, data = url[len("data:") :].partition(",")
    media_type, *attributes = header.split(";")
    image_format = _IMAGE_FORMATS.get(media_type.strip().lower())
    if image_format is None:
        raise ProviderRequestError(
            f"Unsupported image type '{media_type or 'none'}'; Bedrock takes png, jpeg, gif and webp images.",
            param=param,
            code="invalid_image_url",
        )
    if not comma or "base64" not in {attribute.strip().lower() for attribute in attributes}:
        raise ProviderRequestError(
            "The image data URL must be base64-encoded: data:image/png;base64,...",
            param=param,
            code="invalid_image_url",
        )
    try:
        # Base64 wrapped over several lines is common; any other stray character is an error.
        image = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        image = b""
    if not image:
        raise ProviderRequestError(
            "The image data URL does not hold valid base64 data.", param=param, code="invalid_image_url"
        )
    if len(image) > MAX_IMAGE_BYTES:
        raise ProviderRequestError(
            f"The image is {len(image)} bytes; Bedrock takes images of at most 3.75 MB ({MAX_IMAGE_BYTES} bytes).",
            param=param,
            code="image_too_large",
        )
    # An image whose header the gateway cannot read is left for Bedrock to judge.
    dimensions = image_dimensions(image)
    if dimensions is not None and max(dimensions) > MAX_IMAGE_SIDE_PIXELS:
        raise ProviderRequestError(
            f"The image is {dimensions[0]}x{dimensions[1]} pixels; Bedrock takes images of at most "
            f"{MAX_IMAGE_SIDE_PIXELS} pixels on each side.",
            param=param,
            code="image_too_large",
        )
    return {"image": {"format": image_format, "source": {"bytes": image}}}


def _assistant_blocks(message: AssistantMessage, position: int, history: _History) -> list[ContentBlockTypeDef]:
    texts = _texts(message.content)
    if not texts and message.refusal and message.refusal.strip():
        texts = [message.refusal]
    blocks: list[ContentBlockTypeDef] = [{"text": text} for text in texts]
    for call_position, call in enumerate(message.tool_calls or []):
        param = f"messages[{position}].tool_calls[{call_position}].function.arguments"
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": tool_use_id(call.id),
                    "name": call.function.name,
                    "input": _tool_arguments(call.function.arguments, param),
                }
            }
        )
        history.has_tool_blocks = True
        if call.function.name not in history.tools_used:
            history.tools_used.append(call.function.name)
    return blocks


def _tool_arguments(arguments: str, param: str) -> dict[str, Any]:
    # Some clients send "" for a call without arguments; that is the empty object, not an error.
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ProviderRequestError(
            "Tool call arguments must be a JSON object encoded as a string, as the model produced them.",
            param=param,
            code="invalid_tool_arguments",
        )
    return parsed


def _inference_config(request: ChatCompletionRequest) -> InferenceConfigurationTypeDef:
    config: InferenceConfigurationTypeDef = {}
    if request.output_limit is not None:
        config["maxTokens"] = request.output_limit
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    stops = [stop for stop in request.stop_sequences if stop]
    if stops:
        config["stopSequences"] = stops
    return config


def _tool_spec(function: FunctionDefinition, param: str) -> ToolSpecificationTypeDef:
    spec: ToolSpecificationTypeDef = {"name": function.name, "inputSchema": {"json": _input_schema(function, param)}}
    # Bedrock rejects an empty description; a missing one is fine.
    if function.description and function.description.strip():
        spec["description"] = function.description
    return spec


def _input_schema(function: FunctionDefinition, param: str) -> dict[str, Any]:
    """The tool's parameters as Converse takes them: a JSON schema of type object, which Anthropic's models
    require; OpenAI's own examples sometimes leave the type out, which is read as an object."""
    schema = function.parameters
    if schema is None:
        return EMPTY_OBJECT_SCHEMA
    if "type" not in schema:
        return {"type": "object", **schema}
    if schema["type"] != "object":
        raise ProviderRequestError(
            "A tool's parameters must be a JSON schema of type object: a call's arguments are always an object.",
            param=param,
            code="invalid_tool_schema",
        )
    return schema


def _tool_config(request: ChatCompletionRequest, history: _History) -> ToolConfigurationTypeDef | None:
    declared = {
        tool.function.name: _tool_spec(tool.function, f"tools[{position}].function.parameters")
        for position, tool in enumerate(request.tools or [])
    }
    choice = request.tool_choice
    if declared and choice != "none":
        config: ToolConfigurationTypeDef = {"tools": [{"toolSpec": spec} for spec in declared.values()]}
        if choice == "auto":
            config["toolChoice"] = {"auto": {}}
        elif choice == "required":
            config["toolChoice"] = {"any": {}}
        elif isinstance(choice, NamedToolChoice):
            config["toolChoice"] = {"tool": {"name": choice.function.name}}
        return config
    if not history.has_tool_blocks:
        return None
    # Bedrock refuses toolUse/toolResult blocks without a toolConfig, and Converse has no "none" choice: offer
    # only the tools the history already used (their declared spec, else a name with an open schema). The model
    # may in principle call one again; that is the closest Converse gets to "none".
    tools: list[ToolTypeDef] = [
        {"toolSpec": declared.get(name) or {"name": name, "inputSchema": {"json": EMPTY_OBJECT_SCHEMA}}}
        for name in history.tools_used
    ]
    # Tool results without any tool call: nothing to name, so let Bedrock explain what is wrong with the history.
    return {"tools": tools} if tools else None


# --- Converse response -> Completion ----------------------------------------------------------------------


def _completion(response: ConverseResponseTypeDef, model_id: str) -> Completion:
    message = response.get("output", {}).get("message")
    blocks = message["content"] if message else []
    # Reasoning blocks and anything else that is not answer text or a tool call stay out of the reply.
    text = "".join(block["text"] for block in blocks if "text" in block)
    calls = tuple(
        ToolCallResult(
            id=block["toolUse"]["toolUseId"],
            name=block["toolUse"]["name"],
            arguments=json.dumps(block["toolUse"]["input"]),
        )
        for block in blocks
        if "toolUse" in block
    )
    if "usage" not in response:
        raise ProviderError("Bedrock answered without token usage, so the call cannot be metered.")
    stop_reason = response.get("stopReason", "")
    if stop_reason in BEDROCK_ERROR_STOP_REASONS:
        raise malformed_output(stop_reason, model_id)
    return Completion(
        content=None if not text and calls else text,
        finish_reason=_finish_reason(stop_reason),
        usage=_usage(response["usage"]),
        tool_calls=calls,
    )


def _finish_reason(stop_reason: str) -> FinishReason:
    return _STOP_REASONS.get(stop_reason, "stop")


def malformed_output(stop_reason: str, model_id: str) -> GatewayError:
    rule = bedrock_rule(stop_reason, "", kind="stop reason")
    return rule.build(rule.message.format(model=model_id, said=stop_reason))


def _usage(usage: TokenUsageTypeDef) -> Usage:
    # Bedrock's inputTokens leaves out cached tokens; OpenAI's prompt_tokens counts them, cache hits included.
    cache_read = usage.get("cacheReadInputTokens", 0)
    cache_write = usage.get("cacheWriteInputTokens", 0)
    return Usage(
        prompt_tokens=usage.get("inputTokens", 0) + cache_read + cache_write,
        completion_tokens=usage.get("outputTokens", 0),
        cached_tokens=cache_read,
    )


# --- ConverseStream events -> StreamEvents ----------------------------------------------------------------


class _StreamTranslator:
    """Turns Converse stream events into gateway stream events, numbering tool calls from 0."""

    def __init__(self) -> None:
        # Bedrock numbers every content block (text too); OpenAI numbers tool calls only.
        self._tool_index_by_block: dict[int, int] = {}
        self._tools_with_arguments: set[int] = set()
        self.finish_reason: FinishReason | None = None
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
            elif self.finish_reason is None and self.malformed is None:
                self.finish_reason = _finish_reason(stop_reason)
                yield Finish(self.finish_reason)
        elif "metadata" in event and self.usage is None and "usage" in event["metadata"]:
            self.usage = _usage(event["metadata"]["usage"])

    def _tool_index(self, block_index: int) -> int:
        try:
            return self._tool_index_by_block[block_index]
        except KeyError:
            raise ProviderError(
                f"Bedrock streamed tool call arguments for content block {block_index} before starting the call."
            ) from None


def _stream_events(
    stream: EventStream[ConverseStreamOutputTypeDef], target: Target, deadline: Deadline
) -> Iterator[StreamEvent]:
    translator = _StreamTranslator()
    events = iter(stream)
    try:
        while True:
            with _bedrock_errors(target):
                event = next(events, None)
            if event is None:
                break
            yield from translator.translate(event)
            # Usage comes last: once it is in, nothing is left to wait for and the stream counts as finished.
            if translator.usage is None and deadline.expired:
                raise ProviderTimeoutError(
                    f"Bedrock model '{target.model_id}' was still streaming when the gateway's time budget ran out."
                )
        if translator.malformed is not None:
            # The output was billed: usage first, so the call is metered from it, then the error.
            if translator.usage is not None:
                yield UsageReport(translator.usage)
            raise malformed_output(translator.malformed, target.model_id)
        if translator.finish_reason is None:
            raise ProviderError(f"Bedrock's stream from model '{target.model_id}' ended before the model finished.")
        if translator.usage is None:
            raise ProviderError(
                f"Bedrock's stream from model '{target.model_id}' ended without token usage, "
                "so the call cannot be metered."
            )
        # Usage is the last thing Bedrock sends, so it is reported once the stream is complete.
        yield UsageReport(translator.usage)
    finally:
        stream.close()


# --- Bedrock failures -> GatewayErrors --------------------------------------------------------------------


def _ensure_time_left(deadline: Deadline, target: Target) -> None:
    if deadline.remaining() <= 0:
        raise ProviderTimeoutError(
            f"The gateway's time budget ran out before Bedrock model '{target.model_id}' could be called."
        )


@contextmanager
def _bedrock_errors(target: Target) -> Iterator[None]:
    """Re-raise botocore (and, mid-stream, urllib3) failures as the GatewayError the router understands."""
    # Lazy: botocore is already loaded once a client exists, and importing it here keeps cold starts lean.
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
    )
    from urllib3.exceptions import HTTPError as TransportError
    from urllib3.exceptions import ReadTimeoutError as StreamReadTimeoutError

    try:
        yield
    except ClientError as error:
        raise _client_error(error, target) from error
    # A stalled stream raises urllib3's own ReadTimeoutError mid-iteration, not botocore's wrapper of it.
    except (ReadTimeoutError, StreamReadTimeoutError, ConnectTimeoutError) as error:
        raise ProviderTimeoutError(
            f"Bedrock model '{target.model_id}' did not answer within the time left for it "
            f"({error.__class__.__name__})."
        ) from error
    except NoCredentialsError as error:
        raise TargetMisconfiguredError(
            "The gateway has no AWS credentials to call Bedrock; this is a gateway configuration problem, "
            "not an error in the request.",
            code="upstream_access_denied",
        ) from error
    except ParamValidationError as error:
        # The translated request broke Bedrock's schema: the same request fails the same way every time.
        raise ProviderError(f"The gateway could not build a valid Bedrock request: {error}", retryable=False) from error
    except (BotoCoreError, TransportError) as error:
        raise ProviderError(
            f"Could not reach Bedrock for model '{target.model_id}' ({type(error).__name__})."
        ) from error


def _client_error(error: ClientError, target: Target) -> GatewayError:
    """The caller's error for a Bedrock error response or stream error event, from the error table."""
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    message = details.get("Message", "")
    rule = bedrock_rule(code, message)
    said = _redact(message, target.model_id) or "no details"
    region = bedrock_region(target) or "the function's region"
    text = rule.message.format(model=target.model_id, region=region, said=said, code=code or "unknown error")
    return rule.build(text, retry_after=_retry_after(error))


def _retry_after(error: ClientError) -> float | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        # Absent, or an HTTP date: let the router choose its own backoff.
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _redact(text: str, model_id: str) -> str:
    """Bedrock's message without ARNs or account ids (the role's ARN appears in access errors), model id kept."""
    return model_id.join(
        _ACCOUNT_ID.sub("<account>", _ANY_ARN.sub("<arn>", piece)) for piece in text.split(model_id)
    ).strip()
