"""Reasoning on the OpenAI surface, read by the official openai SDK through the API handler: `reasoning_effort`
becomes Claude's thinking on Bedrock (shipped registry, Converse offline) and the model's reasoning comes back as
`reasoning_content` on the message and in stream deltas (vLLM's and DeepSeek's convention), counted in usage."""

from __future__ import annotations

from typing import Any

from tests.conftest import Handler
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event
from tests.fakes.handler_client import handler_client

QUESTION = [{"role": "user", "content": "Is 91 prime?"}]


def extra(model: Any, name: str) -> Any:
    return (model.model_extra or {}).get(name)


def test_echo_answers_reasoning_effort_with_reasoning_content(api_handler: Handler) -> None:
    sdk, _ = handler_client(api_handler)
    completion = sdk.chat.completions.create(model="echo", messages=QUESTION, reasoning_effort="low")  # type: ignore[arg-type]
    message = completion.choices[0].message
    assert (message.content, extra(message, "reasoning_content")) == (
        "Is 91 prime?",
        "The answer repeats the last user message.",
    )
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 7


def test_claude_thinks_on_bedrock_and_the_reasoning_comes_back(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    thought = {"reasoningContent": {"reasoningText": {"text": "91 = 7 x 13.", "signature": "sig"}}}
    bedrock.reply_json(
        200,
        {
            "output": {"message": {"role": "assistant", "content": [thought, {"text": "No."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": 30, "totalTokens": 42},
        },
    )
    sdk, _ = handler_client(api_handler)

    completion = sdk.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=QUESTION,
        reasoning_effort="medium",
        max_completion_tokens=8000,  # type: ignore[arg-type]
    )

    message = completion.choices[0].message
    assert (message.content, extra(message, "reasoning_content")) == ("No.", "91 = 7 x 13.")
    sent = bedrock.sent[-1].json()
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert sent["inferenceConfig"]["maxTokens"] == 8000


def test_a_streamed_thought_arrives_as_reasoning_content_deltas(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    def delta(index: int, **fields: Any) -> bytes:
        return stream_event("contentBlockDelta", {"contentBlockIndex": index, "delta": fields})

    bedrock.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        delta(0, reasoningContent={"text": "91 = 7"}),
        delta(0, reasoningContent={"text": " x 13."}),
        delta(0, reasoningContent={"signature": "sig"}),
        stream_event("contentBlockStop", {"contentBlockIndex": 0}),
        delta(1, text="No."),
        stream_event("messageStop", {"stopReason": "end_turn"}),
        stream_event("metadata", {"usage": {"inputTokens": 12, "outputTokens": 30, "totalTokens": 42}, "metrics": {}}),
    )
    sdk, _ = handler_client(api_handler)

    chunks = list(
        sdk.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=QUESTION,
            reasoning_effort="high",
            stream=True,
            max_tokens=9000,  # type: ignore[arg-type]
        )
    )

    reasoning = "".join(extra(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (reasoning, text) == ("91 = 7 x 13.", "No.")
    assert bedrock.sent[-1].json()["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 4096
