"""ConverseStream events read into the gateway's stream events."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.answers import (
    Finish,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
)
from llm_gateway.domain.conversation import StopReason
from llm_gateway.errors import ProviderError
from llm_gateway.providers.error_table import BEDROCK_ERROR_STOP_REASONS

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseStreamOutputTypeDef,
    )
from llm_gateway.providers.bedrock.converse_answer import stop_reason_of, usage_of


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
