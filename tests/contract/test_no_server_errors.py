"""No request body is a server error: generated bodies through the real API function, as API Gateway invokes it.

Every POST route of template.yaml is covered, seeded with the sample events of events/api/ for that route (a
route added later is covered by adding its events). Bodies are the seeds with values replaced, added or
removed (numbers with thousands of digits, out-of-range floats, nesting thousands deep, lone surrogates and
every other JSON value included), arbitrary bytes, under several content types. The property: the answer is
never a 5xx, a 4xx is OpenAI's error shape, and a stream carries no server error event. Only the echo model is
registered, so no body can reach a real provider.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.lambda_context import LocalLambdaContext
from emulator.template import translate_template
from llm_gateway import config
from tests.conftest import Handler, reset_caches

EVENTS = Path(__file__).resolve().parents[2] / "events" / "api"
SEED_SIZE_LIMIT = 100_000
ECHO_ONLY = json.loads(config.shipped_registry_text())["models"]["echo"]

# Raw JSON text spliced in where a generated value is one of these markers: literals json.dumps never writes.
LITERALS = {
    "@int4300@": "9" * 4300,  # the longest integer Python converts by default
    "@int4301@": "9" * 4301,  # one digit beyond it
    "@int-5000@": "-" + "1" * 5000,
    "@exp@": "1e999",
    "@tiny@": "-1e-999",
    "@frac@": "0." + "3" * 5000,
    "@deep@": "[" * 5000 + "]" * 5000,
    "@deepobj@": '{"a":' * 3000 + "1" + "}" * 3000,
}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    None,
    "application/x-www-form-urlencoded",
    "text/plain",
]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    # The fixtures set one environment that no example changes.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def post_routes() -> list[str]:
    (api,) = [r for r in translate_template()["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    return sorted(path for path, methods in api["Properties"]["Body"]["paths"].items() if "post" in methods)


@functools.cache
def seed_events(route: str) -> list[dict[str, Any]]:
    """The route's sample events, but for those whose size is their point (the oversized and deep bodies)."""
    small = [p for p in sorted(EVENTS.glob("*.json")) if p.stat().st_size < SEED_SIZE_LIMIT]
    events = [json.loads(p.read_text()) for p in small]
    return [e for e in events if e["resource"] == route and e["httpMethod"] == "POST"]


def seed_body(event: dict[str, Any]) -> Any:
    raw = event.get("body") or ""
    try:
        text = base64.b64decode(raw).decode("utf-8") if event.get("isBase64Encoded") else raw
        return json.loads(text)
    except ValueError:
        return {}


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(sorted(LITERALS))
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location inside a JSON document, the document itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return document


def removed(document: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return document
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return document


@st.composite
def mutated_bodies(draw: st.DrawFn, seeds: list[Any]) -> bytes:
    """A seed with a few values replaced, added or removed, encoded as a client might."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(document)))
        operation = draw(st.sampled_from(["replace", "add", "remove"]))
        if operation == "replace":
            document = replaced(document, where, draw(json_values))
        elif operation == "remove":
            document = removed(document, where)
        else:
            target = document
            for part in where:
                target = target[part]
            if isinstance(target, dict):
                target[draw(st.text(max_size=12))] = draw(json_values)
            elif isinstance(target, list):
                target.append(draw(json_values))
    ascii_only = draw(st.booleans())
    text = json.dumps(document, ensure_ascii=ascii_only)
    for marker, literal in LITERALS.items():
        text = text.replace(json.dumps(marker), literal)
    # Unpaired surrogates survive only as escapes; written raw they are not UTF-8 at all.
    return text.encode("utf-8", errors="surrogatepass")


def event_for(seed: dict[str, Any], body: bytes, content_type: str | None) -> dict[str, Any]:
    event = copy.deepcopy(seed)
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    event["body"] = base64.b64encode(body).decode("ascii")
    event["isBase64Encoded"] = True
    return event


def assert_no_server_error(response: dict[str, Any], body: bytes) -> None:
    status = response["statusCode"]
    shown = body[:200]
    assert status < 500, f"{status} for body {shown!r}: {response['body'][:300]}"
    content_type = {k.lower(): v for k, v in response["headers"].items()}.get("content-type", "")
    if status >= 400:
        payload = json.loads(response["body"])
        error = payload["error"]
        if set(error) != {"message", "type", "param", "code"}:
            # Anthropic's shape, on the Messages routes: {"type": "error", "error": {"type", "message", ...}}.
            assert payload["type"] == "error" and {"type", "message"} <= set(error) <= {
                "type",
                "message",
                "code",
                "param",
            }
        assert error["message"] and error["type"] != "api_error", error
    elif content_type.startswith("text/event-stream"):
        # An event stream's lines end at CR, LF or CRLF only; str.splitlines would also cut at U+0085 or U+2028,
        # which a JSON string may hold as they are.
        for line in re.split(r"\r\n|\r|\n", response["body"]):
            data = line.removeprefix("data:").strip()
            if line.startswith("data:") and data != "[DONE]":
                error = json.loads(data).get("error")
                assert error is None or error["type"] != "api_error", f"stream error {error} for body {shown!r}"


@pytest.fixture
def echo_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": {"echo": ECHO_ONLY}}))
    reset_caches()


ROUTES = post_routes()


def test_every_post_route_has_seed_events() -> None:
    assert ROUTES
    for route in ROUTES:
        assert seed_events(route), f"no sample event in events/api/ for POST {route}"


@pytest.mark.parametrize("route", ROUTES)
@SETTINGS
@given(data=st.data())
def test_no_generated_json_body_is_a_server_error(api_handler: Handler, echo_only: None, route: str, data: Any) -> None:
    events = seed_events(route)
    seeds = [seed_body(e) for e in events]
    body = data.draw(mutated_bodies(seeds))
    event = event_for(data.draw(st.sampled_from(events)), body, data.draw(st.sampled_from(CONTENT_TYPES[:2])))
    assert_no_server_error(api_handler(event, LocalLambdaContext(function_name="ApiFunction")), body)


@pytest.mark.parametrize("route", ROUTES)
@SETTINGS
@given(body=st.binary(max_size=300) | st.text(max_size=100).map(str.encode), content=st.sampled_from(CONTENT_TYPES))
def test_no_byte_string_is_a_server_error(
    api_handler: Handler, echo_only: None, route: str, body: bytes, content: str | None
) -> None:
    event = event_for(seed_events(route)[0], body, content)
    assert_no_server_error(api_handler(event, LocalLambdaContext(function_name="ApiFunction")), body)
