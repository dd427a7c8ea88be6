"""The admin API's resolver (Powertools' REST resolver) and what every route shares: the services of the request,
its IAM principal, its body and query, the audit line, and the one error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from llm_gateway.api.admin.services import AdminServices
from llm_gateway.domain.key_admin import KeyAdminFailure
from llm_gateway.domain.stores import KeyNotFoundError, KeyStateError
from llm_gateway.errors import ConflictError, GatewayError, InvalidRequestError, NotFoundError, PermissionDeniedError
from llm_gateway.observability import logger

app = APIGatewayRestResolver()
JSON = "application/json"


_serving: ContextVar[AdminServices] = ContextVar("admin_services")


def resolve(event: dict[str, Any], context: Any, services: AdminServices) -> dict[str, Any]:
    """Route `event`, unless its identity names no IAM principal: then 403 before any route reads it."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    if not (identity.get("userArn") or identity.get("caller")):
        refusal = gateway_error(
            PermissionDeniedError(
                "The admin API takes requests signed with IAM credentials (SigV4) only",
                code="iam_authorization_required",
            )
        )
        return {
            "statusCode": refusal.status_code,
            "multiValueHeaders": {"Content-Type": [JSON]},
            "body": refusal.body,
            "isBase64Encoded": False,
        }
    token = _serving.set(services)
    try:
        return app.resolve(event, context)
    finally:
        _serving.reset(token)


def current_services() -> AdminServices:
    return _serving.get()


def principal() -> str:
    """The IAM principal of the request (resolve let no other in)."""
    identity = app.current_event.request_context.identity
    return str(identity.user_arn or identity.caller)


def json_answer(value: Any, status: int = 200) -> Response[str]:
    return Response(status, JSON, json.dumps(value))


def request_body() -> Any:
    raw = app.current_event.body
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidRequestError("The body is not valid JSON") from None


def query_value(name: str) -> str | None:
    value = (app.current_event.query_string_parameters or {}).get(name)
    return value or None


def audit(action: str, **target: Any) -> None:
    if current_services().audit_log:
        logger.info("admin operation", extra={"admin_action": action, "principal": principal(), **target})


def gateway_error(error: GatewayError) -> Response[str]:
    body = {"error": {"type": error.error_type, "code": error.code, "message": error.message, "param": error.param}}
    return Response(error.status, JSON, json.dumps(body), headers=error.headers or None)


def _error(error: Exception) -> Response[str]:
    """Every failure in the one error shape: the stores' key errors as 404 and 409, an AWS call that failed as 502
    (KeyAdmin rolled back what it had done), anything else as 500 without its details."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, GatewayError):
        return gateway_error(error)
    if isinstance(error, KeyNotFoundError):
        return gateway_error(NotFoundError(str(error), code="key_not_found"))
    if isinstance(error, KeyStateError):
        return gateway_error(ConflictError(str(error), code="key_state_conflict"))
    if isinstance(error, BotoCoreError | ClientError):
        logger.exception("admin operation: an AWS call failed")
        return gateway_error(KeyAdminFailure(f"An AWS call failed: {error}"))
    logger.exception("admin operation failed")
    return gateway_error(GatewayError("The admin API failed to process this request"))


cast(Callable[[Callable[[Exception], Response[str]]], object], app.exception_handler(Exception))(_error)


@app.not_found
def _no_route(_: Exception) -> Response[str]:
    event = app.current_event
    return gateway_error(NotFoundError(f"No admin route for {event.http_method} {event.path}"))
