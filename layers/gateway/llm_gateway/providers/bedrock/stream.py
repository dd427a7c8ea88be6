"""Bedrock's event streams, Converse's and Anthropic's alike, read into stream events by one loop."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from llm_gateway.domain.answers import Finish, StreamEvent, Usage, UsageReport
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.errors import ProviderError, ProviderTimeoutError
from llm_gateway.providers.bedrock.anthropic_stream import StreamReader
from llm_gateway.providers.bedrock.converse_answer import malformed_output
from llm_gateway.providers.bedrock.converse_stream import StreamTranslator
from llm_gateway.providers.bedrock.errors import bedrock_errors

if TYPE_CHECKING:
    from botocore.eventstream import EventStream


class EventReader(Protocol):
    """What the loop needs of one API's stream: its events read, whether the model is done, and its ending."""

    @property
    def finished(self) -> bool:
        """Nothing is left to wait for: a deadline passing now cuts nothing short."""
        ...

    def read(self, event: Any) -> Iterable[StreamEvent]: ...

    def ending(self, model_id: str) -> Iterator[StreamEvent]:
        """The events once Bedrock's stream has ended, or the error of a stream that ended too soon."""
        ...


class ConverseEvents:
    """ConverseStream's events; usage comes last, so once it is in the stream counts as finished."""

    def __init__(self) -> None:
        self._translator = StreamTranslator()

    @property
    def finished(self) -> bool:
        return self._translator.usage is not None

    def read(self, event: Any) -> Iterable[StreamEvent]:
        return self._translator.translate(event)

    def ending(self, model_id: str) -> Iterator[StreamEvent]:
        translator = self._translator
        if translator.malformed is not None:
            # The output was billed: usage first, so the call is metered from it, then the error.
            if translator.usage is not None:
                yield UsageReport(translator.usage)
            raise malformed_output(translator.malformed, model_id)
        if translator.stop_reason is None:
            raise _ended_early(model_id)
        yield UsageReport(_metered(translator.usage, model_id))


class AnthropicEvents:
    """InvokeModelWithResponseStream's chunks of Anthropic's events; message_stop comes last."""

    def __init__(self, model_id: str) -> None:
        self._reader = StreamReader(model_id)

    @property
    def finished(self) -> bool:
        return self._reader.finished

    def read(self, event: Any) -> Iterable[StreamEvent]:
        # Exception events raise from the iterator (EventStreamError); a chunk is the only other event.
        chunk = event.get("chunk")
        return () if chunk is None else self._reader.read(chunk.get("bytes", b""))

    def ending(self, model_id: str) -> Iterator[StreamEvent]:
        if not self._reader.finished:
            raise _ended_early(model_id)
        usage = _metered(self._reader.usage, model_id)
        if self._reader.stop_reason is None:
            # message_stop without a stop reason in any message_delta: the answer is whole, its reason unsaid.
            yield Finish("end_turn")
        yield UsageReport(usage)


def stream_events(
    stream: EventStream[Any], reader: EventReader, target: Target, deadline: Deadline
) -> Iterator[StreamEvent]:
    """Bedrock's events as they arrive, read by `reader`; the stream is closed however it ends."""
    events = iter(stream)
    try:
        while True:
            with bedrock_errors(target):
                event = next(events, None)
            if event is None:
                break
            yield from reader.read(event)
            if not reader.finished and deadline.expired:
                raise ProviderTimeoutError(
                    f"Bedrock model '{target.model_id}' was still streaming when the gateway's time budget ran out."
                )
        yield from reader.ending(target.model_id)
    finally:
        stream.close()


def _ended_early(model_id: str) -> ProviderError:
    return ProviderError(f"Bedrock's stream from model '{model_id}' ended before the model finished.")


def _metered(usage: Usage | None, model_id: str) -> Usage:
    if usage is None:
        raise ProviderError(
            f"Bedrock's stream from model '{model_id}' ended without token usage, so the call cannot be metered."
        )
    return usage
