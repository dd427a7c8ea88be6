from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.api.http import validation_error
from llm_gateway.dialects.openai_chat.schemas import ChatCompletion, ChatCompletionRequest, PromptRequest

USER = {"role": "user", "content": "hi"}


def errors_of(body: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        ChatCompletionRequest.model_validate(body)
    # Powertools prefixes locations with "body"; mimic it to test the same formatter.
    errors = [{**e, "loc": ("body", *e["loc"])} for e in caught.value.errors()]
    error = validation_error(errors)
    assert error.status == 400
    return f"{error.param} | {error.message}"


def test_accepts_every_message_role_and_content_shape() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "echo",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "developer", "content": [{"type": "text", "text": "d"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "u"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "result"},
            ],
            "max_completion_tokens": 10,
            "stop": "END",
            "some_vendor_option": {"kept": True},
        }
    )
    assert request.output_limit == 10
    assert request.stop_sequences == ["END"]
    assert request.model_extra == {"some_vendor_option": {"kept": True}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "echo"}, "messages | Invalid request: messages: Field required"),
        ({"messages": [USER]}, "model | Invalid request: model: Field required"),
        (
            {"model": "echo", "messages": []},
            "messages | Invalid request: messages: List should have at least 1 item after validation, not 0",
        ),
        (
            {"model": "echo", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content | Invalid request: messages[0].content: "
            "Input should be a valid string or Input should be a valid list",
        ),
        (
            {"model": "echo", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0] | Invalid request: messages[0]: Input tag 'robot' found using 'role' does not match"
            " any of the expected tags: 'system', 'developer', 'user', 'assistant', 'tool'",
        ),
        (
            {"model": "echo", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id | Invalid request: messages[0].tool_call_id: Field required",
        ),
        (
            {"model": "echo", "messages": [USER], "temperature": 3},
            "temperature | Invalid request: temperature: Input should be less than or equal to 2",
        ),
        (
            {"model": "echo", "messages": [USER], "max_tokens": 0},
            "max_tokens | Invalid request: max_tokens: Input should be greater than or equal to 1",
        ),
        (
            {"model": "echo", "messages": [USER], "n": 3},
            "n | Invalid request: n: n must be 1: the gateway returns one choice per request",
        ),
        (
            {"model": "echo", "messages": [USER], "stop": ["a", "b", "c", "d", "e"]},
            "stop | Invalid request: stop: at most 4 stop sequences are allowed",
        ),
        (
            {"model": "echo", "messages": [USER], "tool_choice": "required"},
            "None | Invalid request: tool_choice 'required' needs at least one tool",
        ),
        (
            {
                "model": "echo",
                "messages": [USER],
                "tools": [{"type": "function", "function": {"name": "bad name!"}}],
            },
            "tools[0].function.name | Invalid request: tools[0].function.name: String should match pattern"
            " '^[a-zA-Z0-9_-]{1,64}$'",
        ),
    ],
)
def test_rejections_name_the_problem(body: Any, expected: str) -> None:
    assert errors_of(body) == expected


def test_tool_choice_must_name_a_declared_tool() -> None:
    body = {
        "model": "echo",
        "messages": [USER],
        "tools": [{"type": "function", "function": {"name": "a"}}],
        "tool_choice": {"type": "function", "function": {"name": "b"}},
    }
    assert "tool_choice names 'b', which is not in tools" in errors_of(body)


def test_prompt_request_rejects_unknown_fields_and_empty_prompts() -> None:
    with pytest.raises(ValidationError):
        PromptRequest.model_validate({"prompt": ""})
    with pytest.raises(ValidationError):
        PromptRequest.model_validate({"prompt": "x", "messages": []})


def test_response_keeps_the_nulls_openais_spec_requires_and_drops_other_nulls() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "created": 1,
            "model": "echo",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "content": None,
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        }
    )
    choice = completion.model_dump(exclude_none=True)["choices"][0]
    message = choice["message"]
    assert (message["content"], message["refusal"], choice["logprobs"]) == (None, None, None)
    assert "reasoning_content" not in message
    assert "system_fingerprint" not in completion.model_dump(exclude_none=True)
    assert '"content":null' in completion.to_json()
