"""API Gateway proxy events for the API function, from the files in events/api, and one call of its handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulator.lambda_context import LocalLambdaContext
from tests.fakes.web_function import Handler

EVENTS = Path(__file__).resolve().parents[2] / "events" / "api"


def api_event(name: str = "chat-completions.json", **authorizer: Any) -> dict[str, Any]:
    """The event in events/api/`name`, its authorizer context updated with `authorizer` (values as strings, as API
    Gateway passes them)."""
    event = json.loads((EVENTS / name).read_text())
    event["requestContext"]["authorizer"].update({k: str(v) for k, v in authorizer.items()})
    return dict(event)


def chat_event(body: dict[str, Any], **authorizer: Any) -> dict[str, Any]:
    """The chat completions event carrying `body` instead of its own."""
    event = api_event(**authorizer)
    event["body"], event["isBase64Encoded"] = json.dumps(body), False
    return event


def call(handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, LocalLambdaContext(function_name="ApiFunction"))
