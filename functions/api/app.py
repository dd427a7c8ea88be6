"""The API function: OpenAI-compatible routes on the Powertools REST resolver."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from llm_gateway.api.http import accept_curl_form_as_json, api_request, install_error_handlers, parse_json_body
from llm_gateway.api.schemas import ChatCompletionRequest, PromptRequest
from llm_gateway.gateway import get_gateway
from llm_gateway.observability import instrument, metered

app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=parse_json_body)
install_error_handlers(app)


@app.post("/chat/completions")
def chat_completions(request: ChatCompletionRequest) -> Response[str]:
    return get_gateway().chat_completions(request, api_request(app)).to_response()


@app.post("/model")
def prompt(request: PromptRequest) -> Response[str]:
    return get_gateway().prompt(request, api_request(app)).to_response()


@app.get("/models")
def list_models() -> Response[str]:
    return get_gateway().models(api_request(app)).to_response()


def _resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(accept_curl_form_as_json(event), context)


lambda_handler = instrument(metered(_resolve))
