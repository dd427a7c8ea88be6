"""The deterministic local `echo` model: replies with the last user message; one token per word."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from llm_gateway.api.schemas import ChatCompletionRequest, FinishReason, NamedToolChoice
from llm_gateway.domain.registry import Target
from llm_gateway.domain.text import last_user_text, request_texts
from llm_gateway.providers.base import (
    Completion,
    Deadline,
    Provider,
    StreamEvent,
    ToolCallResult,
    Usage,
    completion_events,
)

_WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _truncate_words(text: str, limit: int | None) -> tuple[str, bool]:
    """Keep the first `limit` words (with the whitespace between them; all of them when `limit` is None); report
    whether anything was cut."""
    if limit is None:
        return text, False
    for number, match in enumerate(_WORD.finditer(text), start=1):
        if number == limit:
            kept = text[: match.end()]
            return kept, bool(_WORD.search(text, match.end()))
    return text, False


class EchoProvider(Provider):
    """Replies with the text of the last user message, honouring stop sequences, tools and the output limit (in text,
    tool calls and streams alike: a stream replays the completion)."""

    name = "echo"

    def complete(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Completion:
        prompt_tokens = sum(count_words(text) for text in request_texts(request))
        reply = last_user_text(request)
        limit = request.output_limit
        tool = self._forced_tool(request)
        if tool is not None:
            # A model cut off by its output limit mid-call returns the arguments it had written (invalid JSON)
            # and finish_reason "length", as OpenAI's and Bedrock's do; echo cuts its arguments the same way.
            arguments, cut = _truncate_words(json.dumps({"input": reply}), limit)
            call = ToolCallResult(id="call_echo_0", name=tool, arguments=arguments)
            usage = Usage(prompt_tokens, count_words(arguments))
            finish: FinishReason = "length" if cut else "tool_calls"
            return Completion(content=None, finish_reason=finish, usage=usage, tool_calls=(call,))
        finish = "stop"
        for stop in request.stop_sequences:
            if stop and stop in reply:
                reply = reply[: reply.index(stop)]
        reply, cut = _truncate_words(reply, limit)
        if cut:
            finish = "length"
        return Completion(content=reply, finish_reason=finish, usage=Usage(prompt_tokens, count_words(reply)))

    def stream(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Iterator[StreamEvent]:
        completion = self.complete(request, target, deadline)
        # One delta per word (with its leading whitespace) so clients see a real multi-chunk stream.
        yield from completion_events(completion, re.findall(r"\s*\S+", completion.content or ""))

    @staticmethod
    def _forced_tool(request: ChatCompletionRequest) -> str | None:
        """The tool echo calls: the named tool_choice, or the first tool when tool_choice is 'required'."""
        if isinstance(request.tool_choice, NamedToolChoice):
            return request.tool_choice.function.name
        if request.tool_choice == "required" and request.tools:
            return request.tools[0].function.name
        return None
