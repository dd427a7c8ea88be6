"""The local gateway over real HTTP: what a newcomer and an OpenAI client see after `make run`."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import ROOT, LocalGateway, child_environment, start_gateway, stop_gateway
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.e2e

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "Hello from e2e"}]}


def call(
    gateway: LocalGateway, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(gateway.base_url + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, received = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, received = error.read(), error.code, dict(error.headers)
    text = raw.decode()
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError:
        parsed = text
    return status, {k.lower(): v for k, v in received.items()}, parsed


def assert_openai_error(body: Any, code: str) -> None:
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def client(gateway: LocalGateway, key: str | None = None) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key or gateway.key, max_retries=0)


@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
def test_every_route_with_either_header(local_gateway: LocalGateway, auth: str) -> None:
    key = local_gateway.key
    headers = {"x-api-key": key} if auth == "x-api-key" else {"Authorization": f"Bearer {key}"}
    status, received, body = call(local_gateway, "GET", "/models", headers=headers)
    assert (status, [m["id"] for m in body["data"]]) == (
        200,
        ["echo", "echo-embedding", "fake-embedding", "fake-upstream"],
    )
    assert received["x-amzn-requestid"]
    status, received, body = call(local_gateway, "POST", "/chat/completions", CHAT, headers)
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "Hello from e2e"
    assert body["id"] == f"chatcmpl-{received['x-amzn-requestid']}", "the API Gateway request id reaches the handler"
    assert received["x-gateway-target"] == "echo/echo"
    status, _, body = call(local_gateway, "POST", "/model", {"prompt": "short prompt"}, headers)
    assert (status, body["completion"], body["usage"]["total_tokens"]) == (200, "short prompt", 4)


def test_openai_sdk_chat_stream_tools_and_models(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    assert [m.id for m in sdk.models.list()] == ["echo", "echo-embedding", "fake-embedding", "fake-upstream"]
    completion = sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "plain answer"}])
    assert completion.choices[0].message.content == "plain answer"
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    stream = sdk.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "streamed in words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed in words"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 6
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    called = sdk.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "Paris"}], tools=[tool], tool_choice="required"
    )
    (call_made,) = called.choices[0].message.tool_calls or []
    assert (call_made.function.name, json.loads(call_made.function.arguments)) == ("get_weather", {"input": "Paris"})
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="gpt-none", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="echo", messages=[])


def test_a_configured_openai_compatible_upstream_is_served(
    local_gateway: LocalGateway, upstream: FakeOpenAIServer
) -> None:
    sdk = client(local_gateway)
    completion = sdk.chat.completions.create(model="fake-upstream", messages=[{"role": "user", "content": "relay me"}])
    assert completion.choices[0].message.content
    assert completion.model == "fake-upstream"
    request = upstream.last_request
    assert request.body["model"] == "gpt-fake"
    assert request.headers["authorization"] == "Bearer sk-upstream-secret-for-e2e"
    streamed = sdk.chat.completions.create(
        model="fake-upstream", messages=[{"role": "user", "content": "relay me"}], stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        == completion.choices[0].message.content
    )


def test_missing_unknown_and_revoked_keys_are_refused(local_gateway: LocalGateway) -> None:
    status, _, body = call(local_gateway, "GET", "/models")
    assert status == 401
    assert_openai_error(body, "missing_api_key")
    unknown = "sk-llmgw-" + "N0SuchKeyExistsInThisLocalGatewayAtAll".ljust(43, "0")
    with pytest.raises(openai.AuthenticationError) as refused:
        client(local_gateway, unknown).models.list()
    assert refused.value.code == "invalid_api_key"

    created = local_gateway.gatewayctl("keys", "create", "--tenant", "e2e", "--plan", "premium", "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert [m.id for m in client(local_gateway, issued["key"]).models.list()] == [
        "echo",
        "echo-embedding",
        "fake-embedding",
        "fake-upstream",
    ]
    revoked = local_gateway.gatewayctl("keys", "revoke", issued["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    status, _, body = call(local_gateway, "GET", "/models", headers={"x-api-key": issued["key"]})
    assert status == 401
    assert_openai_error(body, "invalid_api_key")


def test_standard_burst_is_throttled_with_429s_the_sdk_surfaces(local_gateway: LocalGateway) -> None:
    created = local_gateway.gatewayctl("keys", "create", "--tenant", "burst", "--plan", "standard", "--json")
    key = json.loads(created.stdout)["key"]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda _: call(local_gateway, "GET", "/models", headers={"x-api-key": key}), range(40)))
    elapsed = time.monotonic() - started
    statuses = [status for status, _, _ in results]
    assert set(statuses) == {200, 429}
    # A token bucket of 20 refilled at 10/s: no more than that passes, and at least the burst does.
    assert 20 <= statuses.count(200) <= 20 + 10 * elapsed + 1
    throttled = [(headers, body) for status, headers, body in results if status == 429]
    headers, body = throttled[0]
    assert_openai_error(body, "rate_limit_exceeded")
    assert headers["retry-after"] == "1"
    sdk = client(local_gateway, key)

    def drain() -> None:
        for _ in range(40):
            sdk.models.list()

    with pytest.raises(openai.RateLimitError) as limited:
        drain()
    assert limited.value.status_code == 429


def test_exhausted_quota_is_the_quota_error(local_gateway: LocalGateway) -> None:
    created = local_gateway.gatewayctl("keys", "create", "--tenant", "quota", "--plan", "free", "--json")
    key = json.loads(created.stdout)["key"]
    for _ in range(3):
        assert call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})[0] == 200
    status, headers, body = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})
    assert status == 429
    assert_openai_error(body, "quota_exceeded")
    assert headers["x-should-retry"] == "false"
    with pytest.raises(openai.RateLimitError) as limited:
        client(local_gateway, key).models.list()
    assert limited.value.code == "quota_exceeded"


def test_a_key_hits_its_token_budget_before_its_request_quota(local_gateway: LocalGateway) -> None:
    created = local_gateway.gatewayctl(
        "keys", "create", "--tenant", "budget", "--plan", "premium", "--tokens-per-day", "100", "--json"
    )
    issued = json.loads(created.stdout)
    body = {**CHAT, "max_tokens": 10}  # reserves 6 (text) + 4 (message) + 3 (reply) + 10 = 23; uses 3 + 3
    statuses = []
    for _ in range(20):
        status, headers, answer = call(local_gateway, "POST", "/chat/completions", body, {"x-api-key": issued["key"]})
        statuses.append(status)
        if status != 200:
            break
    # 13 answers use 78 tokens; a 14th would need 78 + 23 > 100. The premium quota (100000) is far away.
    assert statuses == [200] * 13 + [429]
    assert_openai_error(answer, "token_budget_exceeded")
    assert 0 < int(headers["retry-after"]) <= 86400
    with pytest.raises(openai.RateLimitError) as limited:
        client(local_gateway, issued["key"]).chat.completions.create(**body)
    assert limited.value.code == "token_budget_exceeded"
    report = local_gateway.gatewayctl("usage", "--key", issued["key_id"], "--json")
    assert report.returncode == 0, report.stderr
    (day,) = json.loads(report.stdout)
    assert (day["requests"], day["prompt_tokens"], day["completion_tokens"], day["tenant"]) == (13, 39, 39, "budget")


def test_bodies_over_10_mb_are_refused_with_413(local_gateway: LocalGateway) -> None:
    huge = b'{"model": "echo", "messages": [{"role": "user", "content": "' + b"x" * (10 * 1024 * 1024) + b'"}]}'
    status, _, body = call(local_gateway, "POST", "/chat/completions", huge, {"x-api-key": local_gateway.key})
    assert status == 413
    assert_openai_error(body, "request_too_large")


def test_unknown_routes_and_methods_are_openai_shaped_404s(local_gateway: LocalGateway) -> None:
    status, _, body = call(local_gateway, "GET", "/chat/completions", headers={"x-api-key": local_gateway.key})
    assert status == 404
    assert_openai_error(body, "not_found")
    status, _, body = call(local_gateway, "GET", "/embeddings", headers={"x-api-key": local_gateway.key})
    assert_openai_error(body, "not_found")


def test_keys_list_against_the_local_gateway(local_gateway: LocalGateway) -> None:
    listed = local_gateway.gatewayctl("keys", "list", "--tenant", "demo")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:3] == ["KEY", "ID", "TENANT"]
    assert row.split()[1:5] == ["demo", "standard", "*", "active"]
    assert local_gateway.key not in listed.stdout


def test_what_the_banner_prints_works_when_pasted(local_gateway: LocalGateway) -> None:
    lines = local_gateway.text().splitlines()
    assert f"    {local_gateway.key}" in lines
    curl = next(line for line in lines if line.startswith("curl "))
    pasted = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(pasted.stdout)["choices"][0]["message"]["content"] == "Hello, gateway"
    snippet = next(line for line in lines if line.startswith(".venv/bin/python -c "))
    assert os.path.exists(ROOT / ".venv/bin/python"), "the banner names the project's virtualenv"
    python = shlex.split(snippet)
    python[0] = str(Path(os.sys.executable))
    ran = subprocess.run(python, capture_output=True, text=True, timeout=60, check=True, env=child_environment())
    assert ran.stdout.strip() == "Hello, gateway"
    claude_code = next(line for line in lines if line.startswith("ANTHROPIC_BASE_URL="))
    installed = ROOT / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    if installed.exists():
        command = claude_code.replace(" claude -p ", f" {installed} -p ", 1)
        environment = {
            **child_environment(),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "HOME": str(ROOT / ".cache"),
        }
        ran = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=120, check=True, env=environment
        )
        assert ran.stdout.strip() == "Hello, gateway"


def test_ctrl_c_stops_everything_and_frees_the_port() -> None:
    gateway = start_gateway(demo_key="sk-llmgw-" + "StopTestKeyForTheLocalGatewayShutdown".ljust(43, "0"))
    with urllib.request.urlopen(gateway.root_url + "/_local/stack", timeout=10) as response:
        endpoints = json.load(response)["endpoints"]
    # The gateway's port, and the local AWS endpoint's if there is one (not with the embedded store).
    ports = {int(gateway.base_url.split(":")[2].split("/")[0])}
    ports |= {int(url.rsplit(":", 1)[1]) for url in endpoints.values()}
    children = subprocess.run(["pgrep", "-P", str(gateway.process.pid)], capture_output=True, text=True, check=False)
    child_pids = [int(pid) for pid in children.stdout.split()]
    assert child_pids, "the worker processes"
    assert stop_gateway(gateway) == 0
    assert "stopping the local gateway" in gateway.text()
    for port in ports:  # nothing listens any more on the gateway's or the local AWS endpoint's port
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
    for pid in child_pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived the gateway"


def access_log(gateway: LocalGateway, request_id: str) -> dict[str, str]:
    """The access log record `gatewayctl serve` printed for one request (it prints once the response ends)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in list(gateway.output):
            if line.startswith('{"requestId":"' + request_id):
                record: dict[str, str] = json.loads(line)
                return record
        time.sleep(0.05)
    raise AssertionError(f"no access log record for {request_id}")


def test_each_request_prints_the_deployed_stages_access_log_record(local_gateway: LocalGateway) -> None:
    key = local_gateway.key
    status, received, _ = call(local_gateway, "POST", "/chat/completions", {**CHAT, "stream": True}, {"x-api-key": key})
    assert status == 200
    record = access_log(local_gateway, received["x-amzn-requestid"])
    assert (record["status"], record["httpMethod"], record["resourcePath"]) == ("200", "POST", "/chat/completions")
    assert (record["tenant"], record["plan"], record["transferMode"]) == ("demo", "standard", "STREAMED")
    assert record["keyId"].startswith("key_")
    assert int(record["responseLength"]) > 0 and int(record["timeToFirstContent"]) >= 0
    status, received, _ = call(local_gateway, "GET", "/models", headers={"x-api-key": "sk-llmgw-not-a-key"})
    assert status == 401
    refused = access_log(local_gateway, received["x-amzn-requestid"])
    assert (refused["status"], refused["errorType"], refused["keyId"]) == ("401", "ACCESS_DENIED", "-")
    records = [line for line in local_gateway.output if line.startswith('{"requestId"')]
    assert records and not any(key in line for line in records)


def test_the_issues_inputs_hold_the_budget_and_the_output_limit(local_gateway: LocalGateway) -> None:
    """Issue #16: 190 one-letter words once went through a 100-token day (estimated at 100, used 191); a forced
    tool call with max_tokens 1 once answered 61 completion tokens."""
    created = local_gateway.gatewayctl(
        "keys", "create", "--tenant", "issue16", "--plan", "premium", "--tokens-per-day", "100", "--json"
    )
    key = json.loads(created.stdout)["key"]
    words = {"model": "echo", "max_tokens": 1, "messages": [{"role": "user", "content": " ".join(["a"] * 190)}]}
    status, _, answer = call(local_gateway, "POST", "/chat/completions", words, {"x-api-key": key})
    assert status == 400
    assert_openai_error(answer, "request_exceeds_budget")
    tool = {
        "model": "echo",
        "max_tokens": 1,
        "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(60))}],
    }
    status, _, answer = call(local_gateway, "POST", "/chat/completions", tool, {"x-api-key": local_gateway.key})
    assert status == 200, answer
    assert answer["usage"]["completion_tokens"] <= 1


def test_every_answer_carries_the_request_id_the_openai_sdk_reads(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    raw = sdk.chat.completions.with_raw_response.create(model="echo", messages=[{"role": "user", "content": "Hi"}])
    assert raw.headers["x-request-id"] == raw.headers["x-amzn-requestid"]
    assert raw.parse()._request_id == raw.headers["x-amzn-requestid"]
    with sdk.chat.completions.with_streaming_response.create(
        model="echo", messages=[{"role": "user", "content": "Hi"}], stream=True
    ) as streamed:
        assert streamed.headers["x-request-id"] == streamed.headers["x-amzn-requestid"]
    # A gateway error (the function's) and one of API Gateway's own (bad key, unknown route) carry it too.
    with pytest.raises(openai.NotFoundError) as unknown_model:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    assert unknown_model.value.request_id == unknown_model.value.response.headers["x-amzn-requestid"]
    with pytest.raises(openai.AuthenticationError) as bad_key:
        client(local_gateway, key="sk-llmgw-not-a-key").models.list()
    assert bad_key.value.request_id == bad_key.value.response.headers["x-amzn-requestid"]
    status, received, _ = call(local_gateway, "GET", "/no-such-route", headers={"x-api-key": local_gateway.key})
    assert (status, received["x-request-id"]) == (404, received["x-amzn-requestid"])
