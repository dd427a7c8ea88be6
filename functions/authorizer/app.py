"""The REQUEST authorizer: checks the API key and tells API Gateway who the caller is."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent

from llm_gateway.authorizer import authorize, get_authenticator
from llm_gateway.observability import instrument


def _authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(APIGatewayAuthorizerRequestEvent(event), get_authenticator())


lambda_handler = instrument(_authorize)
