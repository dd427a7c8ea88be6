"""Stream events written as the Responses API's typed server-sent events, each with its `sequence_number`:
response.created and .in_progress, each output item's added/delta/done events, and one terminal
response.completed or response.incomplete carrying the whole response; a failure once the stream has begun is an
`error` event and response.failed. No `[DONE]`: the terminal event ends the stream."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.dialects.openai_responses.answer import (
    INCOMPLETE_REASONS,
    ResponseWriter,
    compact,
    output_text,
)
from llm_gateway.dialects.openai_responses.errors import error_event, response_error
from llm_gateway.dialects.sse import guarded_frames
from llm_gateway.domain.answers import (
    Finish,
    NativeChunk,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.conversation import ReasoningBlock, StopReason, ToolCallBlock
from llm_gateway.domain.ports import closed_after
from llm_gateway.errors import GatewayError


@dataclass
class _Item:
    """An output item being streamed: its kind, place in the output, and what it has gathered so far."""

    kind: str  # message, reasoning, call
    index: int
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None
    call_id: str = ""
    name: str = ""
    done: bool = False
    final: dict[str, Any] | None = None


class EventProducer:
    """Turns stream events into the Responses API's events (dicts with `type` and `sequence_number`); the usage
    and stop reason seen are kept, so streamed calls are metered like the others."""

    def __init__(self, writer: ResponseWriter, clock: Any) -> None:
        self._writer = writer
        self._clock = clock
        self._sequence = 0
        self._items: list[_Item] = []
        self._current: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self.usage: Usage | None = None
        self.stop_reason: StopReason | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def events(self, events: Iterable[StreamEvent]) -> Iterator[dict[str, Any]]:
        with closed_after(events):
            stream = iter(events)
            first = next(stream, None)
            if isinstance(first, NativeChunk) and first.dialect == "openai_responses":
                yield from self._forwarded(itertools.chain([first], stream))
                return
            in_progress = self._writer.response("in_progress", [], None)
            yield self._event("response.created", response=in_progress)
            yield self._event("response.in_progress", response=in_progress)
            for event in itertools.chain([first] if first is not None else [], stream):
                yield from self._built(event)
        for item in self._items:
            yield from self._close(item)
        reason = self.stop_reason or "end_turn"
        status = "incomplete" if reason in INCOMPLETE_REASONS else "completed"
        output = [item.final for item in self._items if item.final is not None]
        response = self._writer.response(
            status, output, self.usage or Usage(0, 0), stop_reason=reason, completed_at=int(self._clock())
        )
        yield self._event(f"response.{status}", response=response)

    def _forwarded(self, events: Iterator[StreamEvent]) -> Iterator[dict[str, Any]]:
        """An upstream's own Responses API events, as it sent them but for the response objects they carry (the
        gateway's id, model name and storing); the usage they report is kept for metering."""
        for event in events:
            if isinstance(event, NativeChunk):
                data = dict(event.data)
                if isinstance(data.get("response"), dict):
                    data["response"] = self._writer.forwarded(data["response"])
                if isinstance(data.get("sequence_number"), int):
                    self._sequence = data["sequence_number"] + 1
                yield data
            elif isinstance(event, UsageReport):
                self.usage = event.usage
            elif isinstance(event, Finish):
                self.stop_reason = event.reason

    def failed(self, error: GatewayError) -> str:
        """The frames that end a stream failing after it began: an `error` event, then response.failed with the
        items finished so far."""
        output = [item.final for item in self._items if item.final is not None]
        failed = self._writer.response("failed", output, self.usage, error=response_error(error))
        return sse_frame(self._event("error", **_without_type(error_event(error)))) + sse_frame(
            self._event("response.failed", response=failed)
        )

    # --- items -------------------------------------------------------------------------------------------

    def _open(self, kind: str) -> tuple[_Item, list[dict[str, Any]]]:
        """A new message or reasoning item, and its events: the item before it closed, then it added."""
        events = list(self._close(self._current)) if self._current is not None else []
        item = _Item(kind, len(self._items))
        self._items.append(item)
        self._current = item
        if kind == "message":
            added = self._writer.message_item(item.index, "", "in_progress")
            events.append(self._event("response.output_item.added", output_index=item.index, item=added))
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=added["id"],
                    output_index=item.index,
                    content_index=0,
                    part=output_text(""),
                )
            )
        else:
            added = self._writer.reasoning_item(item.index, ReasoningBlock(), done=False)
            events.append(self._event("response.output_item.added", output_index=item.index, item=added))
        return item, events

    def _built(self, event: StreamEvent) -> Iterator[dict[str, Any]]:
        current = self._current
        if isinstance(event, TextDelta):
            item = current
            if item is None or item.kind != "message":
                item, opened = self._open("message")
                yield from opened
            item.text.append(event.text)
            yield self._event(
                "response.output_text.delta",
                item_id=self._writer.item_id("msg", item.index),
                output_index=item.index,
                content_index=0,
                delta=event.text,
                logprobs=[],
            )
        elif isinstance(event, ReasoningDelta | ReasoningSignature | RedactedReasoning):
            item = current
            if item is None or item.kind != "reasoning" or item.signature or item.redacted:
                item, opened = self._open("reasoning")
                yield from opened
            if isinstance(event, ReasoningDelta):
                item.text.append(event.text)
                yield self._event(
                    "response.reasoning_text.delta",
                    item_id=self._writer.item_id("rs", item.index),
                    output_index=item.index,
                    content_index=0,
                    delta=event.text,
                )
            elif isinstance(event, ReasoningSignature):
                item.signature = event.signature
            else:
                item.redacted = event.data
        elif isinstance(event, ToolCallStart):
            if current is not None:
                yield from self._close(current)
            item = _Item("call", len(self._items), call_id=event.id, name=event.name)
            self._items.append(item)
            self._calls[event.index] = item
            added = self._writer.tool_call_item(item.index, self._call(item), "in_progress")
            yield self._event("response.output_item.added", output_index=item.index, item=added)
        elif isinstance(event, ToolCallArgumentsDelta):
            item_or_none = self._calls.get(event.index)
            if item_or_none is None or item_or_none.done:
                return
            item_or_none.text.append(event.arguments)
            if item_or_none.name not in self._writer.request.custom_tools:
                # A custom tool's input is the text inside the arguments' JSON: it is sent whole when done.
                yield self._event(
                    "response.function_call_arguments.delta",
                    item_id=self._writer.item_id("fc", item_or_none.index),
                    output_index=item_or_none.index,
                    delta=event.arguments,
                )
        elif isinstance(event, Finish):
            self.stop_reason = event.reason
        elif isinstance(event, UsageReport):
            self.usage = event.usage

    def _call(self, item: _Item) -> ToolCallBlock:
        return ToolCallBlock(item.call_id, item.name, "".join(item.text))

    def _close(self, item: _Item) -> Iterator[dict[str, Any]]:
        if item.done:
            return
        item.done = True
        if self._current is item:
            self._current = None
        status = "incomplete" if self.stop_reason in INCOMPLETE_REASONS else "completed"
        text = "".join(item.text)
        if item.kind == "message":
            final = self._writer.message_item(item.index, text, status)
            common = {"item_id": final["id"], "output_index": item.index, "content_index": 0}
            yield self._event("response.output_text.done", **common, text=text, logprobs=[])
            yield self._event("response.content_part.done", **common, part=output_text(text))
        elif item.kind == "reasoning":
            block = ReasoningBlock(text, signature=item.signature, redacted=item.redacted)
            final = self._writer.reasoning_item(item.index, block, done=True)
            if text:
                yield self._event(
                    "response.reasoning_text.done",
                    item_id=final["id"],
                    output_index=item.index,
                    content_index=0,
                    text=text,
                )
        else:
            final = self._writer.tool_call_item(item.index, self._call(item), status)
            if final["type"] == "custom_tool_call":
                common = {"item_id": final["id"], "output_index": item.index}
                yield self._event("response.custom_tool_call_input.delta", **common, delta=final["input"])
                yield self._event("response.custom_tool_call_input.done", **common, input=final["input"])
            else:
                yield self._event(
                    "response.function_call_arguments.done",
                    item_id=final["id"],
                    output_index=item.index,
                    name=item.name,
                    arguments=text,
                )
        item.final = final
        yield self._event("response.output_item.done", output_index=item.index, item=final)


def _without_type(event: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in event.items() if name != "type"}


def sse_frame(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {compact(event)}\n\n"


def sse_events(
    producer: EventProducer,
    events: Iterable[StreamEvent],
    finished: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[str]:
    """The SSE frames of a response's stream; a failure after the stream began ends it with the error frames.
    `finished` gets the whole response of a stream that completes (or is incomplete) before its last event is
    sent, so a client that has that event finds the response stored."""
    yield from guarded_frames(_finishing(producer.events(events), finished), sse_frame, producer.failed)


def _finishing(
    events: Iterator[dict[str, Any]], finished: Callable[[dict[str, Any]], None] | None
) -> Iterator[dict[str, Any]]:
    with closed_after(events):
        for event in events:
            if finished is not None and event["type"] in ("response.completed", "response.incomplete"):
                finished(event["response"])
            yield event
