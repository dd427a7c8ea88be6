"""Warm CPU per POST /responses request in the API function, answered by an OpenAI-compatible upstream: translated to
chat completions (a target without `responses_api`) against passed through to the upstream's own /responses
(`responses_api: true`), non-streamed and streamed (100 text deltas), in one run and one process per kind.

The function runs as Lambda Web Adapter starts it (functions/api/run.sh, bench/memory.py's Function) with the
embedded SQLite store; the upstream is the tests' fake server in this process, so its CPU is not counted. Each
figure is the CPU over `--requests` warm requests divided by their number (the first request of a process, which
imports and builds what an environment creates once, is left out); `--runs` fresh processes per kind, and the median
of their figures."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "layers" / "gateway")]

from bench.memory import Function, cpu_seconds  # noqa: E402
from tests.fakes.openai_server import (  # noqa: E402
    FakeOpenAIServer,
    delta_chunk,
    response_json,
    usage_chunk,
)

PROMPT = " ".join(["word"] * 400)
DELTAS = 100


def registry(upstream: str) -> dict[str, Any]:
    target = {"provider": "openai", "model_id": "fake-model", "base_url": upstream}
    return {"models": {"translated": {"targets": [target]}, "native": {"targets": [{**target, "responses_api": True}]}}}


def native_stream() -> list[str]:
    final = response_json({"model": "fake-model"}, text="token " * DELTAS, input_tokens=400, output_tokens=DELTAS)
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    events += [
        {"type": "response.output_text.delta", "item_id": "msg_upstream_1", "output_index": 0, "content_index": 0,
         "delta": "token ", "logprobs": []}
        for _ in range(DELTAS)
    ]  # fmt: skip
    events.append({"type": "response.completed", "response": final})
    return [
        f"event: {event['type']}\ndata: {json.dumps({**event, 'sequence_number': n})}\n\n"
        for n, event in enumerate(events)
    ]


def script(upstream: FakeOpenAIServer, model: str, stream: bool) -> None:
    """The upstream's answer to the next request (the fake's defaults answer non-streamed requests)."""
    if not stream:
        return
    if model == "native":
        upstream.enqueue(stream=native_stream(), done=False)
    else:
        chunks = [delta_chunk(content="token ") for _ in range(DELTAS)]
        upstream.enqueue(stream=[*chunks, delta_chunk(finish_reason="stop"), usage_chunk(400, DELTAS)])


def measure(environment: dict[str, str], upstream: FakeOpenAIServer, model: str, stream: bool, requests: int) -> float:
    """Warm CPU ms per request in a fresh function process: the process's CPU over `requests` requests after the
    first (/proc counts CPU in clock ticks, too coarse for one request)."""
    function = Function.start(environment)
    body = {"model": model, "input": PROMPT, "stream": stream, "store": False}
    try:
        script(upstream, model, stream)
        assert function.call("POST", "/responses", body) == 200
        before = cpu_seconds(function.process.pid)
        for _ in range(requests):
            script(upstream, model, stream)
            status = function.call("POST", "/responses", body)
            assert status == 200, f"{model}: {status}"
        spent = cpu_seconds(function.process.pid) - before
    finally:
        function.stop()
    return spent / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="warm requests per process")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per kind")
    args = parser.parse_args()
    upstream = FakeOpenAIServer().start()
    try:
        with tempfile.TemporaryDirectory() as data:
            python = PROJECT_ROOT / ".venv" / "bin" / "python"
            environment = {
                "PATH": f"{python.parent}:/usr/bin:/bin",
                "PYTHONPATH": str(PROJECT_ROOT / "layers" / "gateway"),
                "PYTHONDONTWRITEBYTECODE": "1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "GATEWAY_STORE": "sqlite",
                "GATEWAY_DATA_DIR": data,
                "GATEWAY_MODELS_JSON": json.dumps(registry(upstream.base_url)),
            }
            commit = subprocess.run(
                ["git", "-C", str(PROJECT_ROOT), "log", "-1", "--format=%h"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            print(
                f"at {commit}, CPU ms per warm request in the function "
                f"({args.requests} requests, median of {args.runs} runs)"
            )
            print(f"{'answer':<10}{'translated':>12}{'native':>10}{'native/translated':>19}")
            for stream in (False, True):
                translated = statistics.median(
                    measure(environment, upstream, "translated", stream, args.requests) for _ in range(args.runs)
                )
                native = statistics.median(
                    measure(environment, upstream, "native", stream, args.requests) for _ in range(args.runs)
                )
                label = "stream" if stream else "json"
                print(f"{label:<10}{translated:>12.2f}{native:>10.2f}{native / translated:>19.2f}", flush=True)
    finally:
        upstream.close()


if __name__ == "__main__":
    main()
