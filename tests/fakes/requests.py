"""Internal chat requests built the way the API builds them: from an OpenAI chat completions body."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.dialects.openai_chat.request import conversation
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest
from llm_gateway.domain.conversation import ChatRequest


def openai_chat(body: dict[str, Any]) -> ChatRequest:
    """The internal request for an OpenAI chat completions `body`, validated as the route validates it."""
    text = json.dumps(body)
    return conversation(ChatCompletionRequest.model_validate_json(text), text)
