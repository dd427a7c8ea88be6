"""Responses API requests read into the conversation model.

Input items become turns: messages, function and custom tool calls with their outputs, and reasoning (signed
reasoning comes back whole through the gateway's own `encrypted_content`). Fields the gateway does not interpret
are kept (`extra` at each level, unknown parts and items whole, the body as `native`). Stored state
(`previous_response_id`, `item_reference`) is resolved before (state.py); where no response store is configured, and
for what the gateway never keeps (`conversation`, `background`), it is refused in OpenAI's own terms rather than
answered without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llm_gateway.dialects.openai_chat.request import data_url
from llm_gateway.dialects.openai_responses.schemas import (
    CompactionItem,
    CustomToolCallItem,
    CustomToolCallOutputItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputItem,
    InputText,
    ItemReference,
    MessageItem,
    OtherItem,
    OtherPart,
    OutputText,
    ReasoningItem,
    Refusal,
    ResponsesRequest,
)
from llm_gateway.dialects.openai_responses.sealed import compaction_summary, reasoning_block
from llm_gateway.dialects.openai_responses.tools import CUSTOM_INPUT, tool_choice, tools
from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    Dialect,
    DocumentBlock,
    ImageBlock,
    Message,
    Native,
    OpaqueBlock,
    OutputFormat,
    Reasoning,
    ReasoningBlock,
    Role,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from llm_gateway.errors import InvalidRequestError, NotFoundError

DIALECT: Dialect = "openai_responses"
# The request fields read into the model itself, or that only shape the answer (metadata and the tools are
# echoed in the response object; `store`, `include` and `stream_options` change how it is written); every other
# field sent is the request's `extra`.
_INTERPRETED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "text",
        "include",
        "metadata",
        "stream",
        "stream_options",
        "store",
        "previous_response_id",
        "background",
        "conversation",
        # Labels of the calling client (Codex's turn, session and installation ids), which no model reads.
        "client_metadata",
    }
)
# What `include` may ask for: the gateway renders no log probabilities or hosted tools' sources.
_INCLUDABLE = frozenset({"reasoning.encrypted_content"})
_TURN_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant"}
# What a compacted conversation reads as to the model that continues it.
COMPACTION_INTRO = "Summary of the conversation so far:\n"


def refuse_state(request: ResponsesRequest) -> None:
    """OpenAI's answers for state the gateway does not keep yet: no earlier response or conversation exists here,
    and work in the background needs a stored response to poll."""
    if request.previous_response_id is not None:
        raise InvalidRequestError(
            f"Previous response with id '{request.previous_response_id}' not found. This gateway stores no "
            "responses (no response store is configured): send the whole conversation in `input`.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    if request.conversation is not None:
        raise InvalidRequestError(
            "This gateway keeps no conversations yet: send the whole conversation in `input`.",
            param="conversation",
            code="unsupported_parameter",
        )
    if request.background:
        raise InvalidRequestError(
            "This gateway runs no responses in the background (it stores none to poll); leave background out.",
            param="background",
            code="unsupported_parameter",
        )


def conversation(request: ResponsesRequest, body: Mapping[str, Any] | str, *, hosted: bool = False) -> ChatRequest:
    """The internal request for a validated Responses API request; `body` is the request as sent. `hosted`: every
    target of the model serves the Responses API itself and gets `body` (providers/openai/responses.py), so hosted
    tools, a tool_choice naming one and any `include` reach it there, and are not the conversation's to refuse."""
    refuse_state(request)
    for include in request.include or []:
        if include not in _INCLUDABLE and not hosted:
            raise InvalidRequestError(
                f"The gateway cannot include '{include}'; it includes only reasoning.encrypted_content.",
                param="include",
                code="unsupported_parameter",
            )
    system, messages = read_input(request.input, request.instructions)
    custom = request.custom_tools
    extra = {name: value for name, value in _sent(request).items() if name not in _INTERPRETED}
    text = request.text
    if text is not None and text.verbosity is not None:
        # Chat completions' top-level `verbosity` has the same meaning.
        extra["verbosity"] = text.verbosity
    return ChatRequest(
        model=request.model,
        messages=tuple(messages),
        system=tuple(system),
        max_output_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        tools=tuple(tools(request, hosted=hosted)),
        tool_choice=tool_choice(request, custom, hosted=hosted),
        reasoning=_reasoning(request),
        output_format=_output_format(request),
        stream=bool(request.stream),
        include_usage=True,
        extra=extra,
        native=Native(DIALECT, body),
    )


def read_input(
    items: str | list[InputItem] | None, instructions: str | None
) -> tuple[list[ContentBlock], list[Message]]:
    """The system prompt and the turns of `instructions` and `input`. Consecutive items of the model's (its
    reasoning, text and tool calls) make one assistant turn and consecutive tool outputs one user turn, as a chat
    completions assistant message with its tool calls and the tool messages after it do; user messages stay
    turns of their own."""
    system: list[ContentBlock] = []
    if instructions:
        system.append(TextBlock(instructions, path="instructions"))
    if items is None:
        raise InvalidRequestError("input is required: the whole conversation, or a text.", param="input")
    if isinstance(items, str):
        return system, [Message("user", (TextBlock(items, path="input"),), path="input")]
    turns: list[tuple[Role, list[ContentBlock], dict[str, Any], str]] = []
    merging: str | None = None

    def add(role: Role, blocks: list[ContentBlock], path: str, extra: Mapping[str, Any] | None = None) -> None:
        nonlocal merging
        kind = "results" if all(isinstance(block, ToolResultBlock) for block in blocks) else role
        if turns and kind != "user" and kind == merging and not extra and not turns[-1][2]:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, list(blocks), dict(extra or {}), path))
        merging = kind

    for position, item in enumerate(items):
        path = f"input[{position}]"
        if isinstance(item, MessageItem):
            blocks = _parts(item.content, f"{path}.content")
            role = _TURN_ROLES.get(item.role)
            if role is None:
                # System and developer messages are the system prompt, as on chat completions.
                system.extend(blocks)
            else:
                add(role, blocks, path, item.model_extra)
        elif isinstance(item, FunctionCallItem):
            add(
                "assistant",
                [ToolCallBlock(item.call_id, item.name, item.arguments, extra=_rest(item), path=path)],
                path,
            )
        elif isinstance(item, CustomToolCallItem):
            arguments = json.dumps({CUSTOM_INPUT: item.input}, ensure_ascii=False)
            add("assistant", [ToolCallBlock(item.call_id, item.name, arguments, extra=_rest(item), path=path)], path)
        elif isinstance(item, FunctionCallOutputItem | CustomToolCallOutputItem):
            content = _parts(item.output, f"{path}.output")
            add("user", [ToolResultBlock(item.call_id, tuple(content), extra=_rest(item), path=path)], path)
        elif isinstance(item, ReasoningItem):
            add("assistant", [_reasoning_block(item, path)], path)
        elif isinstance(item, ItemReference):
            raise NotFoundError(
                f"Item with id '{item.id}' not found. This gateway stores no items (no response store is "
                "configured): send the item itself instead of an item_reference.",
                param=path,
                code="item_not_found",
            )
        elif isinstance(item, CompactionItem):
            summary = compaction_summary(item.encrypted_content)
            if summary is None:
                raise InvalidRequestError(
                    "This compaction item was not made by this gateway, which cannot read it.",
                    param=f"{path}.encrypted_content",
                    code="invalid_encrypted_content",
                )
            add("user", [TextBlock(COMPACTION_INTRO + summary, path=path)], path)
        elif isinstance(item, OtherItem):
            add("assistant", [OpaqueBlock(DIALECT, item.type, item.model_dump(exclude_unset=True), path)], path)
    return system, [Message(role, tuple(blocks), extra, path) for role, blocks, extra, path in turns]


def _rest(item: Any) -> dict[str, Any]:
    return dict(item.model_extra or {})


def _parts(content: str | list[Any], path: str) -> list[ContentBlock]:
    if isinstance(content, str):
        return [TextBlock(content, path=path)]
    return [_part(part, f"{path}[{index}]") for index, part in enumerate(content)]


def _part(part: Any, path: str) -> ContentBlock:
    extra = dict(part.model_extra or {})
    if isinstance(part, InputText):
        return TextBlock(part.text, extra=extra, path=path)
    if isinstance(part, OutputText):
        # An earlier answer's annotations and log probabilities describe that answer; no model reads them back.
        extra.pop("annotations", None)
        extra.pop("logprobs", None)
        return TextBlock(part.text, extra=extra, path=path)
    if isinstance(part, Refusal):
        return TextBlock(part.refusal, extra={**extra, "refusal": True}, path=path)
    if isinstance(part, InputImage) and part.image_url:
        if part.detail is not None:
            extra["detail"] = part.detail
        return ImageBlock(url=part.image_url, extra=extra, path=path)
    if isinstance(part, InputFile) and part.file_data:
        media_type, data = data_url(part.file_data)
        if media_type is not None and data is not None:
            return DocumentBlock(media_type=media_type, base64=data, name=part.filename, extra=extra, path=path)
    if isinstance(part, InputFile) and part.file_url:
        return DocumentBlock(url=part.file_url, name=part.filename, extra=extra, path=path)
    if isinstance(part, OtherPart | InputImage | InputFile):
        # Files by id (OpenAI's Files API), audio, and other kinds: kept whole, for a provider that takes them.
        return OpaqueBlock(DIALECT, part.type, part.model_dump(exclude_unset=True), path)
    raise AssertionError(f"unhandled part {part!r}")


def _reasoning_block(item: ReasoningItem, path: str) -> ReasoningBlock:
    """Reasoning the gateway sealed comes back signed as the provider gave it; any other (OpenAI's own encrypted
    reasoning, or reasoning without it) is its visible text only, which providers send back only when signed."""
    if item.encrypted_content:
        sealed = reasoning_block(item.encrypted_content, path)
        if sealed is not None:
            return sealed
    parts = item.content if item.content else item.summary
    return ReasoningBlock("".join(part.text for part in parts), path=path)


def _sent(request: ResponsesRequest) -> dict[str, Any]:
    sent = {name: getattr(request, name) for name in request.model_fields_set}
    return {**sent, **(request.model_extra or {})}


def _reasoning(request: ResponsesRequest) -> Reasoning | None:
    reasoning = request.reasoning
    if reasoning is None or reasoning.effort is None:
        return None
    if reasoning.effort == "none":
        return Reasoning(enabled=False)
    return Reasoning(effort=reasoning.effort)


def _output_format(request: ResponsesRequest) -> OutputFormat | None:
    fmt = request.text.format if request.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return OutputFormat("json_object", path="text.format")
    if fmt.schema_ is None or not fmt.name:
        raise InvalidRequestError("A json_schema format needs a `name` and a `schema`.", param="text.format")
    return OutputFormat("json_schema", fmt.name, fmt.schema_, fmt.strict, fmt.description, path="text.format")
