"""Bytes of log each request-path function writes per request: the cost model's log input (docs/cost.md;
`gatewayctl cost --api-log-bytes`, gatewayctl/cost.py's AUTHORIZER_LOG_BYTES).

The API function starts as `bench/memory.py` starts it (functions/api/run.sh, uvicorn serving app.py; budgets and
usage in moto's DynamoDB), its stdout, what Lambda sends to CloudWatch Logs, written to a file. After one request
that pays the cold start's lines, each kind of request is sent REPEAT times and the file's growth divided among
them; one request's lines are split into its log lines and its EMF documents. The authorizer runs its Lambda
handler in a process of its own (the key in an embedded store, its record cached after the first request as in a
warm environment), its stdout a file as well. Lambda's own start and report lines are not counted: the template's
FunctionSystemLogLevel=WARN leaves them out.

    .venv/bin/python bench/log_bytes.py [--repeat 5] [--python /tmp/py313-layer/bin/python]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import memory
from memory import CODE, PROJECT_ROOT, SMALL_PROMPT, Function, free_port, function_environment, run_header

from emulator.aws import MotoProcess
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk

AUTHORIZER_EVENT = PROJECT_ROOT / "events" / "authorizer" / "x-api-key.json"
# Run in the authorizer's own process: a key in an embedded store, then the handler once cold and REPEAT times
# warm, the size of its stdout after each invocation written to stderr (stdout holds nothing but its logs).
AUTHORIZER_SCRIPT = """
import json, os, sys
from datetime import UTC, datetime
sys.path.insert(0, os.environ["AUTHORIZER_CODE"])
from app import lambda_handler
from emulator.lambda_context import LocalLambdaContext
from llm_gateway.config import get_settings
from llm_gateway.domain.keys import (
    KeyRecord, generate_key, generate_key_id, generate_usage_identifier, hash_key, key_hint,
)
from llm_gateway.store.factory import key_records

key = generate_key()
record = KeyRecord(
    key_id=generate_key_id(), key_hash=hash_key(key), key_hint=key_hint(key), tenant="bench", plan="standard",
    models=None, status="active", created_at=datetime.now(UTC), api_key_id="bench",
    usage_identifier=generate_usage_identifier(),
)
key_records(get_settings()).create(record)
event = json.loads(open(os.environ["AUTHORIZER_EVENT"]).read())
event["headers"]["x-api-key"] = key
event["multiValueHeaders"].pop("x-api-key", None)
for _ in range(1 + int(os.environ["REPEAT"])):
    answer = lambda_handler(event, LocalLambdaContext(function_name="KeyAuthorizerFunction", memory_limit_in_mb=512))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow", answer
    sys.stdout.flush()
    print(os.fstat(1).st_size, file=sys.stderr)
"""


def split(lines: list[str]) -> tuple[int, int]:
    """(bytes of log lines, bytes of EMF documents), each line with its newline."""
    emf = sum(len(line) + 1 for line in lines if '"_aws"' in line)
    return sum(len(line) + 1 for line in lines) - emf, emf


def api_function(
    environment: dict[str, str], upstream: FakeOpenAIServer, repeat: int
) -> dict[str, tuple[float, int, int]]:
    """Per kind of request: (bytes a request, of one request its log lines' bytes, its EMF documents' bytes)."""

    def upstream_stream() -> None:
        chunks = [delta_chunk(content=f"token{i} ") for i in range(40)]
        upstream.enqueue(stream=[*chunks, delta_chunk(finish_reason="stop"), usage_chunk(400, 40)])

    kinds: dict[str, tuple[Callable[[Function], int], Callable[[], None] | None]] = {
        "chat (echo, JSON)": (memory.chat(SMALL_PROMPT), None),
        "chat (echo, streamed)": (memory.chat(SMALL_PROMPT, stream=True), None),
        "chat (upstream, streamed)": (memory.chat(SMALL_PROMPT, "upstream", stream=True), upstream_stream),
    }
    figures: dict[str, tuple[float, int, int]] = {}
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "stdout"
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["/bin/sh", str(CODE / "run.sh")],
                cwd=CODE,
                env={**environment, "LAMBDA_TASK_ROOT": str(CODE), "AWS_LWA_PORT": str(port)},
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
        function = Function(process, port, time.perf_counter())
        try:
            function.wait_ready()
            assert memory.chat(SMALL_PROMPT)(function) == 200  # the cold start's lines
            for name, (send, prepare) in kinds.items():
                before = settled_size(log)
                one: list[str] = []
                for attempt in range(repeat):
                    if prepare is not None:
                        prepare()
                    start = settled_size(log)
                    assert send(function) == 200, name
                    if attempt == 0:
                        one = read_from(log, start)
                figures[name] = ((settled_size(log) - before) / repeat, *split(one))
        finally:
            function.stop()
    return figures


def settled_size(path: Path) -> int:
    """The file's size once the process has stopped writing to it (its last lines follow the answer's end)."""
    size = -1
    while (current := path.stat().st_size) != size:
        size = current
        time.sleep(0.05)
    return size


def read_from(path: Path, offset: int) -> list[str]:
    """The lines written to `path` after `offset`, once written."""
    settled_size(path)
    return [line for line in path.read_bytes()[offset:].decode().splitlines() if line]


def authorizer(python: Path, repeat: int) -> tuple[float, int, int]:
    """(bytes a warm authorization, of one its log lines' bytes, its EMF documents' bytes)."""
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "stdout"
        environment = {
            "PATH": f"{python.parent}:/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "layers" / "gateway"), str(PROJECT_ROOT)]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "GATEWAY_STORE": "sqlite",
            "GATEWAY_DATA_DIR": directory,
            "POWERTOOLS_SERVICE_NAME": "llm-gateway",
            "AUTHORIZER_CODE": str(PROJECT_ROOT / "functions" / "authorizer"),
            "AUTHORIZER_EVENT": str(AUTHORIZER_EVENT),
            "REPEAT": str(repeat),
        }
        with log.open("wb") as out:
            done = subprocess.run(
                [str(python), "-c", AUTHORIZER_SCRIPT], env=environment, stdout=out, stderr=subprocess.PIPE, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode())
        sizes = [int(line) for line in done.stderr.decode().split() if line.isdigit()]
        text = log.read_bytes()
        first_warm = text[sizes[0] : sizes[1]].decode().splitlines()
        return (sizes[-1] - sizes[0]) / repeat, *split([line for line in first_warm if line])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="requests of each kind (5)")
    parser.add_argument("--python", type=Path, help="interpreter for the functions (default: .venv's)")
    args = parser.parse_args()
    python = args.python or PROJECT_ROOT / ".venv" / "bin" / "python"
    moto = MotoProcess()
    upstream = FakeOpenAIServer().start()
    try:
        environment = function_environment(moto, upstream, python, time_budget_seconds=30)
        commit, version = run_header(python)
        print(f"at {commit}, {version} ({platform.machine()}), bytes of stdout (CloudWatch Logs) a request")
        print(f"{'function: request':<38}{'bytes a request':>16}{'log lines':>11}{'EMF':>6}")
        for name, (mean, lines, emf) in api_function(environment, upstream, args.repeat).items():
            print(f"{'API function: ' + name:<38}{mean:>16,.0f}{lines:>11,}{emf:>6,}", flush=True)
        mean, lines, emf = authorizer(python, args.repeat)
        print(f"{'authorizer: a key allowed (warm)':<38}{mean:>16,.0f}{lines:>11,}{emf:>6,}")
    finally:
        upstream.close()
        moto.stop()


if __name__ == "__main__":
    main()
