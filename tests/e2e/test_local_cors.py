"""A browser app against the local gateway: CORS preflights answered by the emulated API Gateway from template.yaml,
and cross-origin calls that a browser lets the page read only from the allowed origin.

The browser's side is the Fetch standard's CORS check (https://fetch.spec.whatwg.org/#cors-preflight-fetch and
#cors-check), written out below, so that the test fails where a browser would.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import LocalGateway, start_gateway, stop_gateway

pytestmark = pytest.mark.e2e

APP = "https://app.example.com"
ELSEWHERE = "https://evil.example.net"
# What a page's fetch() with the openai SDK sends besides the CORS-safelisted headers.
SDK_HEADERS = ("authorization", "content-type", "x-stainless-lang", "x-stainless-retry-count")
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "Hello from a web page"}]}


def request(
    gateway: LocalGateway, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    sent = urllib.request.Request(gateway.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            raw, status, received = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, received = error.read(), error.code, dict(error.headers)
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw.decode()
    return status, {name.lower(): value for name, value in received.items()}, parsed


def _names(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def preflight_passes(gateway: LocalGateway, path: str, origin: str, method: str, names: tuple[str, ...]) -> bool:
    """What a browser does before a non-simple cross-origin request: OPTIONS, then the CORS checks."""
    status, headers, _ = request(
        gateway,
        "OPTIONS",
        path,
        {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": ",".join(names)},
    )
    if not 200 <= status < 300 or headers.get("access-control-allow-origin") not in ("*", origin):
        return False
    methods = {m.upper() for m in _names(headers.get("access-control-allow-methods"))}
    if method not in methods and method not in ("GET", "HEAD", "POST"):
        return False
    allowed = _names(headers.get("access-control-allow-headers"))
    # The wildcard covers every header but Authorization, which must be named.
    return all(name in allowed or ("*" in allowed and name != "authorization") for name in names)


def readable(headers: dict[str, str], origin: str) -> bool:
    """Whether the page may read a cross-origin answer (the CORS check on the response itself)."""
    return headers.get("access-control-allow-origin") in ("*", origin)


@pytest.fixture(scope="module")
def cors_gateway() -> Iterator[LocalGateway]:
    """A gateway deployed with CorsAllowOrigin set, as `sam deploy --parameter-overrides` would set it."""
    gateway = start_gateway("--parameter-overrides", f"CorsAllowOrigin={APP}")
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


def test_a_page_of_the_allowed_origin_calls_the_gateway(cors_gateway: LocalGateway) -> None:
    for path, method in (("/chat/completions", "POST"), ("/embeddings", "POST"), ("/models/echo", "GET")):
        assert preflight_passes(cors_gateway, path, APP, method, SDK_HEADERS), f"{method} {path}"
    headers = {"Origin": APP, "Authorization": f"Bearer {cors_gateway.key}", "Content-Type": "application/json"}
    status, received, body = request(cors_gateway, "POST", "/chat/completions", headers, CHAT)
    assert (status, body["choices"][0]["message"]["content"]) == (200, "Hello from a web page")
    assert readable(received, APP)
    exposed = _names(received["access-control-expose-headers"])
    assert {"x-ratelimit-remaining-tokens", "x-ratelimit-remaining-requests", "retry-after"} <= exposed
    assert int(received["x-ratelimit-remaining-requests"]) > 0
    status, received, _ = request(
        cors_gateway, "POST", "/embeddings", headers, {"model": "echo-embedding", "input": "a page's text"}
    )
    assert status == 200 and readable(received, APP)


def test_the_preflight_needs_no_key_and_errors_are_readable_too(cors_gateway: LocalGateway) -> None:
    status, headers, _ = request(cors_gateway, "OPTIONS", "/chat/completions", {"Origin": APP})
    assert status == 200, "answered by API Gateway: no authorizer, no API key"
    assert headers["access-control-allow-origin"] == APP
    # API Gateway's own errors (a bad key, an unknown route) and the function's (a 400) carry the headers, so the
    # page can show what went wrong.
    for path, key, expected in (("/chat/completions", "sk-llmgw-bad", 401), ("/nowhere", cors_gateway.key, 404)):
        status, received, body = request(cors_gateway, "POST", path, {"Origin": APP, "x-api-key": key}, CHAT)
        assert (status, readable(received, APP)) == (expected, True), path
        assert body["error"]["code"]
    status, received, body = request(
        cors_gateway, "POST", "/embeddings", {"Origin": APP, "x-api-key": cors_gateway.key}, {"model": "echo"}
    )
    assert (status, readable(received, APP), body["error"]["param"]) == (400, True, "input")


def test_a_page_of_another_origin_is_refused(cors_gateway: LocalGateway) -> None:
    assert not preflight_passes(cors_gateway, "/chat/completions", ELSEWHERE, "POST", SDK_HEADERS)
    # Were the request sent anyway (a simple request needs no preflight), the page could not read the answer.
    headers = {"Origin": ELSEWHERE, "x-api-key": cors_gateway.key, "Content-Type": "application/json"}
    status, received, _ = request(cors_gateway, "POST", "/chat/completions", headers, CHAT)
    assert status == 200 and not readable(received, ELSEWHERE)


def test_without_an_allowed_origin_no_page_may_call(local_gateway: LocalGateway) -> None:
    """The default deployment (CorsAllowOrigin empty): preflights name no origin, answers carry no CORS headers."""
    assert not preflight_passes(local_gateway, "/chat/completions", APP, "POST", SDK_HEADERS)
    headers = {"Origin": APP, "x-api-key": local_gateway.key, "Content-Type": "application/json"}
    status, received, _ = request(local_gateway, "POST", "/chat/completions", headers, CHAT)
    assert status == 200 and not readable(received, APP)
    assert not any(name.startswith("access-control-") for name in received)
