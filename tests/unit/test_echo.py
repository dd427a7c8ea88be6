from __future__ import annotations

import json
from typing import Any

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.domain.registry import Target
from llm_gateway.providers.base import (
    Deadline,
    Finish,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    UsageReport,
)
from llm_gateway.providers.echo import EchoProvider

TARGET = Target(provider="echo", model_id="echo")


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "echo", **fields})


def complete(**fields: Any):  # type: ignore[no-untyped-def]
    return EchoProvider().complete(request(**fields), TARGET, Deadline.after(5))


def test_replies_with_last_user_message_and_counts_words() -> None:
    result = complete(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": "second  question here"}]},
        ]
    )
    assert result.content == "second  question here"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2 + 2 + 2 + 3, 3)


def test_is_deterministic() -> None:
    messages = [{"role": "user", "content": "same input"}]
    assert complete(messages=messages) == complete(messages=messages)


def test_max_tokens_truncates_and_reports_length() -> None:
    result = complete(messages=[{"role": "user", "content": "one two  three four"}], max_tokens=2)
    assert (result.content, result.finish_reason, result.usage.completion_tokens) == ("one two", "length", 2)


def test_max_tokens_equal_to_length_is_a_normal_stop() -> None:
    result = complete(messages=[{"role": "user", "content": "one two"}], max_completion_tokens=2)
    assert (result.content, result.finish_reason) == ("one two", "stop")


def test_stop_sequence_cuts_the_reply() -> None:
    result = complete(messages=[{"role": "user", "content": "alpha beta. gamma"}], stop=["."])
    assert (result.content, result.finish_reason, result.usage.completion_tokens) == ("alpha beta", "stop", 2)


def test_required_tool_choice_calls_the_first_tool_with_the_text() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    result = complete(messages=[{"role": "user", "content": "Paris"}], tools=[tool], tool_choice="required")
    assert result.finish_reason == "tool_calls"
    assert result.content is None
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [("lookup", {"input": "Paris"})]


def test_stream_yields_one_delta_per_word_then_finish_and_usage() -> None:
    events = list(
        EchoProvider().stream(request(messages=[{"role": "user", "content": "a b  c"}]), TARGET, Deadline.after(5))
    )
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["a", " b", "  c"]
    assert isinstance(events[-2], Finish) and events[-2].reason == "stop"
    assert isinstance(events[-1], UsageReport) and events[-1].usage.completion_tokens == 3


def test_stream_of_a_tool_call_starts_the_call_then_sends_arguments() -> None:
    tool = {"type": "function", "function": {"name": "lookup"}}
    events = list(
        EchoProvider().stream(
            request(messages=[{"role": "user", "content": "x"}], tools=[tool], tool_choice="required"),
            TARGET,
            Deadline.after(5),
        )
    )
    assert isinstance(events[0], ToolCallStart) and events[0].name == "lookup"
    assert isinstance(events[1], ToolCallArgumentsDelta) and json.loads(events[1].arguments) == {"input": "x"}


SIXTY_WORDS = " ".join(f"word{i}" for i in range(60))
FORCED_TOOL = {
    "tool_choice": "required",
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "messages": [{"role": "user", "content": SIXTY_WORDS}],
}


def test_a_tool_call_is_cut_at_the_output_limit_like_a_real_models() -> None:
    """Issue #16's input: max_tokens 1 on a forced tool call once answered 61 completion tokens."""
    result = complete(max_tokens=1, **FORCED_TOOL)
    (call,) = result.tool_calls
    assert result.usage.completion_tokens == 1
    assert (result.finish_reason, call.arguments) == ("length", '{"input":')
    whole = complete(max_tokens=61, **FORCED_TOOL)
    assert (whole.finish_reason, whole.usage.completion_tokens) == ("tool_calls", 61)
    assert json.loads(whole.tool_calls[0].arguments) == {"input": SIXTY_WORDS}


def test_a_streamed_tool_call_keeps_the_output_limit() -> None:
    events = list(EchoProvider().stream(request(max_completion_tokens=3, **FORCED_TOOL), TARGET, Deadline.after(5)))
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallArgumentsDelta))
    assert arguments == '{"input": "word0 word1'
    assert [e.reason for e in events if isinstance(e, Finish)] == ["length"]
    assert isinstance(events[-1], UsageReport) and events[-1].usage.completion_tokens == 3


def test_a_streamed_answer_keeps_the_output_limit() -> None:
    messages = [{"role": "user", "content": SIXTY_WORDS}]
    events = list(EchoProvider().stream(request(messages=messages, max_tokens=2), TARGET, Deadline.after(5)))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["word0", " word1"]
    assert isinstance(events[-1], UsageReport) and events[-1].usage.completion_tokens == 2
