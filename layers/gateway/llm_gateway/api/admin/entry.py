"""The admin function's entry: its services built once per container from the settings, then each event routed."""

from __future__ import annotations

from typing import Any

from llm_gateway.api.admin.routes import handle
from llm_gateway.api.admin.services import AdminServices, admin_services, apigateway_client
from llm_gateway.config import get_settings
from llm_gateway.domain.key_admin import ApiGatewayKeys
from llm_gateway.observability import instrument

_services: AdminServices | None = None
_apigateway: ApiGatewayKeys | None = None


def use_api_gateway(client: ApiGatewayKeys) -> None:
    """Serve with `client` in place of boto3's API Gateway client: the local gateway's control plane, which
    `gatewayctl serve` provides as CloudFormation provides the real one."""
    global _apigateway, _services
    _apigateway, _services = client, None


def services() -> AdminServices:
    global _services
    if _services is None:
        _services = admin_services(get_settings(), _apigateway or apigateway_client())
    return _services


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, services())


lambda_handler = instrument(_handle)
