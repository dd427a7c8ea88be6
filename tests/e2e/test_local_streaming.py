"""Streaming through `make run`'s gateway as clients see it: curl -N and the openai SDK get chunks as an
upstream produces them, and a caller who hangs up stops the upstream and is billed for what was produced."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from typing import Any

import pytest
from openai import OpenAI

from tests.e2e.conftest import LocalGateway, wait_for
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk

pytestmark = pytest.mark.e2e

WORDS = 20
INTERVAL = 0.1


def slow_stream(upstream: FakeOpenAIServer, words: int = WORDS, interval: float = INTERVAL) -> None:
    """The upstream's next answer: `words` words `interval` seconds apart, then usage."""
    frames: list[Any] = [delta_chunk(role="assistant", content="")]
    frames += [delta_chunk(content=f" w{n}") for n in range(words)]
    frames += [delta_chunk(finish_reason="stop"), usage_chunk(4, words)]
    upstream.enqueue(stream=frames, frame_delay=interval)


def body(stream: bool = True) -> str:
    return json.dumps({"model": "fake-upstream", "stream": stream, "messages": [{"role": "user", "content": "go"}]})


def test_curl_sees_each_chunk_as_the_upstream_produces_it(
    local_gateway: LocalGateway, upstream: FakeOpenAIServer
) -> None:
    slow_stream(upstream)
    started = time.monotonic()
    command = ["curl", "-sN", f"{local_gateway.base_url}/chat/completions", "-H", f"x-api-key: {local_gateway.key}"]
    curl = subprocess.Popen(
        [*command, "-H", "content-type: application/json", "-d", body()], stdout=subprocess.PIPE, text=True
    )
    assert curl.stdout is not None
    arrivals = [time.monotonic() - started for line in curl.stdout if line.startswith("data: {") and '" w' in line]
    assert curl.wait(timeout=30) == 0
    assert len(arrivals) == WORDS
    # 20 words 0.1 s apart: the first reaches curl after about 0.2 s, the last after about 2.1 s.
    assert arrivals[0] < 0.25 * arrivals[-1], arrivals
    assert arrivals[-1] > (WORDS - 1) * INTERVAL


def test_the_openai_sdk_streams_chunk_by_chunk(local_gateway: LocalGateway, upstream: FakeOpenAIServer) -> None:
    slow_stream(upstream)
    sdk = OpenAI(base_url=local_gateway.base_url, api_key=local_gateway.key, max_retries=0)
    started = time.monotonic()
    stream = sdk.chat.completions.create(
        model="fake-upstream", messages=[{"role": "user", "content": "go"}], stream=True
    )
    arrivals, text = [], ""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
            text += chunk.choices[0].delta.content
    assert text == "".join(f" w{n}" for n in range(WORDS))
    assert arrivals[0] < 0.25 * arrivals[-1], arrivals


def test_a_caller_who_hangs_up_stops_the_upstream_and_is_billed_for_what_it_produced(
    local_gateway: LocalGateway, upstream: FakeOpenAIServer
) -> None:
    created = local_gateway.gatewayctl("keys", "create", "--tenant", "hangup", "--plan", "premium", "--json")
    issued = json.loads(created.stdout)
    slow_stream(upstream, words=100, interval=0.05)
    abandoned_before = len(upstream.abandoned_streams)
    host, port = local_gateway.base_url.split("//")[1].split("/")[0].split(":")
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nx-api-key: {issued['key']}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body())}\r\n\r\n{body()}"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while received.count(b'" w') < 3:
            received += connection.recv(65536)
    # The gateway closes its upstream connection: the upstream's next writes fail long before its 100th word.
    wait_for(lambda: len(upstream.abandoned_streams) > abandoned_before, timeout=10)
    assert upstream.abandoned_streams[-1] < 30

    def usage() -> dict[str, Any] | None:
        report = local_gateway.gatewayctl("usage", "--key", issued["key_id"], "--json")
        rows = json.loads(report.stdout) if report.returncode == 0 else []
        return rows[0] if rows else None

    wait_for(lambda: usage() is not None, timeout=10)
    day = usage()
    assert day is not None
    assert (day["requests"], day["failed"]) == (1, 0)
    assert 3 <= day["completion_tokens"] < 30


def test_a_burst_of_100_connections_gets_answers_or_openai_shaped_429s_never_a_reset(
    local_gateway: LocalGateway,
) -> None:
    host, port = local_gateway.base_url.split("//")[1].split("/")[0].split(":")
    payload = body(stream=False).replace("fake-upstream", "echo")
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nx-api-key: {local_gateway.key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\nconnection: close\r\n\r\n{payload}"
    ).encode()
    connections = [socket.create_connection((host, int(port)), timeout=30) for _ in range(100)]
    answers: list[bytes] = []
    try:
        for connection in connections:
            connection.sendall(request)
        for connection in connections:
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
            answers.append(received)
    finally:
        for connection in connections:
            connection.close()
    statuses = [int(answer.split(b" ", 2)[1]) for answer in answers]
    assert set(statuses) <= {200, 429} and 200 in statuses, statuses
    for answer in answers:
        if answer.startswith(b"HTTP/1.1 429"):
            error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
            assert error["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("path", ["/chat/completions", "/messages"])
def test_callers_who_hang_up_before_the_first_byte_do_not_lock_their_key_out(
    local_gateway: LocalGateway, upstream: FakeOpenAIServer, path: str
) -> None:
    # A day window for about three requests' worst case; the upstream answers only after 1.5 s.
    created = local_gateway.gatewayctl(
        "keys", "create", "--tenant", "early-hangup", "--plan", "standard", "--tokens-per-day", "364", "--json"
    )
    issued = json.loads(created.stdout)
    host, port = local_gateway.base_url.split("//")[1].split("/")[0].split(":")
    payload = json.dumps(
        {"model": "fake-upstream", "stream": True, "max_tokens": 100, "messages": [{"role": "user", "content": "go"}]}
    )
    request = (
        f"POST /v1{path} HTTP/1.1\r\nHost: {host}\r\nx-api-key: {issued['key']}\r\nanthropic-version: 2023-06-01\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n{payload}"
    ).encode()
    for _ in range(3):
        upstream.enqueue(
            stream=[delta_chunk(role="assistant", content="late"), delta_chunk(finish_reason="stop")], delay=1.5
        )
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(request)
            time.sleep(0.3)
    time.sleep(1.5)

    def usage() -> dict[str, Any] | None:
        report = local_gateway.gatewayctl("usage", "--key", issued["key_id"], "--json")
        rows = json.loads(report.stdout) if report.returncode == 0 else []
        return rows[0] if rows else None

    wait_for(lambda: (usage() or {}).get("requests", 0) + (usage() or {}).get("failed", 0) == 3, timeout=10)
    # The key still has its budget: the three reservations were settled, not left to lock it out for the day.
    sdk = OpenAI(base_url=local_gateway.base_url, api_key=issued["key"], max_retries=0)
    answer = sdk.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "still here"}], max_tokens=100
    )
    assert answer.choices[0].message.content == "still here"
