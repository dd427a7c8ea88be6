from __future__ import annotations

import json
from typing import Any

from llm_gateway.domain.answers import Finish, TextDelta, ToolCallArgumentsDelta, ToolCallStart, UsageReport
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.providers.echo import EchoProvider
from tests.fakes.requests import openai_chat

TARGET = Target(provider="echo", model_id="echo")


def request(**fields: Any) -> ChatRequest:
    return openai_chat({"model": "echo", **fields})


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
    assert result.text == "second  question here"
    assert result.stop_reason == "end_turn"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2 + 2 + 2 + 3, 3)


def test_is_deterministic() -> None:
    messages = [{"role": "user", "content": "same input"}]
    assert complete(messages=messages) == complete(messages=messages)


def test_max_tokens_truncates_and_reports_length() -> None:
    result = complete(messages=[{"role": "user", "content": "one two  three four"}], max_tokens=2)
    assert (result.text, result.stop_reason, result.usage.completion_tokens) == ("one two", "max_tokens", 2)


def test_max_tokens_equal_to_length_is_a_normal_stop() -> None:
    result = complete(messages=[{"role": "user", "content": "one two"}], max_completion_tokens=2)
    assert (result.text, result.stop_reason) == ("one two", "end_turn")


def test_stop_sequence_cuts_the_reply() -> None:
    result = complete(messages=[{"role": "user", "content": "alpha beta. gamma"}], stop=["."])
    assert (result.text, result.stop_reason, result.stop_sequence) == ("alpha beta", "stop_sequence", ".")
    assert result.usage.completion_tokens == 2


def test_required_tool_choice_calls_the_first_tool_with_the_text() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    result = complete(messages=[{"role": "user", "content": "Paris"}], tools=[tool], tool_choice="required")
    assert result.stop_reason == "tool_use"
    assert result.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [("lookup", {"input": "Paris"})]


def test_stream_yields_one_delta_per_word_then_finish_and_usage() -> None:
    events = list(
        EchoProvider().stream(request(messages=[{"role": "user", "content": "a b  c"}]), TARGET, Deadline.after(5))
    )
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["a", " b", "  c"]
    assert isinstance(events[-2], Finish) and events[-2].reason == "end_turn"
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


def test_reasoning_asked_for_comes_first_signed_and_counted_in_the_output() -> None:
    result = complete(messages=[{"role": "user", "content": "one two"}], reasoning_effort="low")
    (reasoning,) = result.reasoning
    assert reasoning.text and reasoning.signature and len(reasoning.signature) == 64
    assert result.content[0] == reasoning and result.text == "one two"
    assert result.usage.reasoning_tokens == len(reasoning.text.split())
    assert result.usage.completion_tokens == result.usage.reasoning_tokens + 2
    assert complete(messages=[{"role": "user", "content": "one two"}]).reasoning == ()


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
    assert (result.stop_reason, call.arguments) == ("max_tokens", '{"input":')
    whole = complete(max_tokens=61, **FORCED_TOOL)
    assert (whole.stop_reason, whole.usage.completion_tokens) == ("tool_use", 61)
    assert json.loads(whole.tool_calls[0].arguments) == {"input": SIXTY_WORDS}


def test_a_streamed_tool_call_keeps_the_output_limit() -> None:
    events = list(EchoProvider().stream(request(max_completion_tokens=3, **FORCED_TOOL), TARGET, Deadline.after(5)))
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallArgumentsDelta))
    assert arguments == '{"input": "word0 word1'
    assert [e.reason for e in events if isinstance(e, Finish)] == ["max_tokens"]
    assert isinstance(events[-1], UsageReport) and events[-1].usage.completion_tokens == 3


def test_a_streamed_answer_keeps_the_output_limit() -> None:
    messages = [{"role": "user", "content": SIXTY_WORDS}]
    events = list(EchoProvider().stream(request(messages=messages, max_tokens=2), TARGET, Deadline.after(5)))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["word0", " word1"]
    assert isinstance(events[-1], UsageReport) and events[-1].usage.completion_tokens == 2


def test_the_output_limit_counts_the_reasoning_too() -> None:
    result = complete(messages=[{"role": "user", "content": SIXTY_WORDS}], reasoning_effort="low", max_tokens=10)
    assert result.usage.completion_tokens == 10 and result.stop_reason == "max_tokens"
    assert result.text == "word0 word1 word2"
