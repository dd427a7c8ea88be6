"""Peak memory of the API function per request kind, started as Lambda starts it, with the CPU time it spends.

The function's handler script (functions/api/run.sh, uvicorn serving app.py) runs as AWS Lambda Web Adapter
runs it, with the layer's package from layers/gateway. Each request is the HTTP request the adapter sends for an
API Gateway proxy event (`x-amzn-request-context` with the authorizer's context, `x-amzn-lambda-context`), one
at a time as in one Lambda execution environment. Token budgets and usage records go to a DynamoDB table in
moto's server (the two UpdateItem calls of a chat request, through boto3 as on AWS).

Kinds, each in a fresh process (`--requests` requests after the readiness check):
- models: GET /models
- chat: POST /chat/completions, echo model, 2 KB prompt, JSON answer
- stream: the same with "stream": true
- large: a 4.9 MB prompt (the function takes at most 5 MB), JSON answer of the same size
- upstream-stream: an OpenAI-compatible model (a fake server in this process) streaming 200 chunks
- bedrock: a Bedrock model whose endpoint refuses connections: the boto3 bedrock-runtime client and its
  service model are loaded, retries and fallback run, the answer is a 502
- adversarial bodies of 4.9 MB, each the worst of its shape that API Gateway would pass on (status printed):
  nested-lists (an unknown field holding `[[[]],[[]],...]`, about a million empty lists), empty-messages
  (168,000 empty user messages), digits (a prompt of "0 0 0 ...", the costliest text to estimate), wide-object
  (an unknown field holding an object of 376,000 one-character members), flat-numbers (an unknown field of 2.4
  million zeros); and the costliest bodies within the gateway's limits, which must be served: max-messages
  (9,999 messages of three parts), max-members (100,000 object members), max-values (500,000 values)
- all: every kind above in one process, as one warm environment serves them all

`--python` runs the function with another interpreter whose environment holds the layer's requirements, such as
python3.13, Lambda's runtime here:

    python3.13 -m venv /tmp/py313-layer
    /tmp/py313-layer/bin/pip install -c constraints.txt -r layers/gateway/requirements.txt
    .venv/bin/python bench/memory.py --python /tmp/py313-layer/bin/python

Printed per kind: VmRSS once ready, VmHWM (peak resident set) after the requests, the process's CPU seconds
until ready, its CPU milliseconds for the first request (which imports and builds what an environment creates
once: boto3 clients, the registry) and per later request (/proc, user plus system). The CPU is this machine's
(Lambda's is arm64, Graviton); the adapter's own process, a small Rust binary, is not included.

    .venv/bin/python bench/memory.py [--requests 20] [--kinds chat,stream]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "layers" / "gateway")]

from emulator.aws import MotoProcess  # noqa: E402
from emulator.template import dynamodb_tables, load_template  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk  # noqa: E402

CODE = PROJECT_ROOT / "functions" / "api"
EVENT = json.loads((PROJECT_ROOT / "events" / "api" / "chat-completions.json").read_text())
TABLE = "bench-usage"
SMALL_PROMPT = " ".join(["word"] * 400)  # about 2 KB
# The largest body the function takes is 5,000,000 bytes (GATEWAY_MAX_REQUEST_BYTES); this one is 4.9 MB.
LARGE_PROMPT = " ".join(["word"] * 980_000)
ADVERSARIAL_BYTES = 4_900_000
SMALL_MESSAGES = [{"role": "user", "content": "hi"}]


def nested_lists() -> bytes:
    """An unknown field of empty lists two deep: five bytes each, every one a Python object once parsed."""
    head = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "x": ['
    items = (ADVERSARIAL_BYTES - len(head) - 2) // 5
    return head + b",".join([b"[[]]"] * items) + b"]}"


def empty_messages() -> bytes:
    message = b'{"role":"user","content":""}'
    head = b'{"model": "echo", "messages": ['
    return head + b",".join([message] * ((ADVERSARIAL_BYTES - len(head) - 2) // (len(message) + 1))) + b"]}"


def digits_prompt() -> bytes:
    head = b'{"model": "echo", "messages": [{"role": "user", "content": "'
    return head + b"0 " * ((ADVERSARIAL_BYTES - len(head) - 4) // 2) + b'"}]}'


def max_messages() -> bytes:
    """The costliest body within the gateway's limits (50,000 JSON arrays and objects, 10,000 messages): 9,999
    messages of three text parts each (five containers a message), their text filling 4.9 MB."""
    text = "x" * ((ADVERSARIAL_BYTES // 9_999 - 140) // 3)
    message = {"role": "user", "content": [{"type": "text", "text": text}] * 3}
    return json.dumps({"model": "echo", "messages": [message] * 9_999}).encode()


def at_limit(kind: str) -> Callable[[], bytes]:
    """An unknown field at the gateway's limit of object members (100,000) or values (500,000), padded with prompt
    text to 4.9 MB."""

    def make() -> bytes:
        if kind == "members":
            field = b"{" + b",".join(b'"%05d":"y"' % i for i in range(99_990)) + b"}"
        else:
            field = b"[" + b",".join([b"0"] * 499_990) + b"]"
        head = b'{"model": "echo", "x": ' + field + b', "messages": [{"role": "user", "content": "'
        return head + b"word " * ((ADVERSARIAL_BYTES - len(head) - 4) // 5) + b'"}]}'

    return make


def flat_numbers() -> bytes:
    """An unknown field of 2.4 million zeros: scalars are not counted, only arrays and objects."""
    head = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "x": ['
    return head + b",".join([b"0"] * ((ADVERSARIAL_BYTES - len(head) - 2) // 2)) + b"]}"


def wide_object() -> bytes:
    head = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "x": {'
    members = (ADVERSARIAL_BYTES - len(head) - 2) // 13
    return head + b",".join(b'"%06d":"y"' % i for i in range(members)) + b"}}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in KiB (Linux /proc)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            values[name] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far (/proc/PID/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def registry(upstream: str, refused: str) -> dict[str, Any]:
    return {
        "models": {
            "echo": {"targets": [{"provider": "echo", "model_id": "echo"}]},
            "upstream": {"targets": [{"provider": "openai", "model_id": "fake-model", "base_url": upstream}]},
            "bedrock": {
                "targets": [
                    {"provider": "bedrock", "model_id": "amazon.nova-lite-v1:0", "region": "us-east-1"},
                    {"provider": "bedrock", "model_id": "amazon.nova-lite-v1:0", "region": "us-west-2"},
                ]
            },
        }
    }


@dataclass
class Function:
    """The API function's process, as Lambda Web Adapter starts it."""

    process: subprocess.Popen[bytes]
    port: int
    started: float

    @classmethod
    def start(cls, environment: dict[str, str]) -> Function:
        port = free_port()
        env = {**environment, "LAMBDA_TASK_ROOT": str(CODE), "AWS_LWA_PORT": str(port)}
        started = time.perf_counter()
        process = subprocess.Popen(
            ["/bin/sh", str(CODE / "run.sh")], cwd=CODE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        function = cls(process, port, started)
        function.wait_ready()
        return function

    def wait_ready(self) -> None:
        """Poll GET / every 10 ms, as the adapter's readiness check does, until any HTTP answer."""
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/")
                connection.getresponse().read()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"run.sh exited with {self.process.returncode}") from None
                time.sleep(0.01)

    def call(self, method: str, path: str, body: dict[str, Any] | bytes | None = None) -> int:
        """One request as the adapter forwards it; the whole answer is read. Returns the status."""
        lambda_context = {
            "request_id": "bench",
            "deadline": int((time.time() + 900) * 1000),
            "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:ApiFunction",
            "env_config": {"function_name": "ApiFunction", "memory": 1024, "version": "$LATEST"},
        }
        context = {**EVENT["requestContext"], "resourcePath": path, "httpMethod": method}
        headers = {
            "content-type": "application/json",
            "x-amzn-request-context": json.dumps(context),
            "x-amzn-lambda-context": json.dumps(lambda_context),
        }
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def chat(prompt: str, model: str = "echo", stream: bool = False) -> Callable[[Function], int]:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    return lambda function: function.call("POST", "/chat/completions", body)


def raw(make: Callable[[], bytes]) -> Callable[[Function], int]:
    body = make()
    return lambda function: function.call("POST", "/chat/completions", body)


# Each kind: the request, and the statuses it may answer (an adversarial body is served or refused).
KINDS: dict[str, tuple[Callable[[Function], int], set[int]]] = {
    "models": (lambda function: function.call("GET", "/models"), {200}),
    "chat": (chat(SMALL_PROMPT), {200}),
    "stream": (chat(SMALL_PROMPT, stream=True), {200}),
    "large": (chat(LARGE_PROMPT), {200}),
    "upstream-stream": (chat(SMALL_PROMPT, "upstream", stream=True), {200}),
    "bedrock": (chat(SMALL_PROMPT, "bedrock"), {502}),
}
ADVERSARIAL: dict[str, tuple[Callable[[Function], int], set[int]]] = {
    "nested-lists": (raw(nested_lists), {200, 400, 413}),
    "empty-messages": (raw(empty_messages), {200, 400, 413}),
    "digits": (raw(digits_prompt), {200, 400, 413}),
    "wide-object": (raw(wide_object), {200, 400, 413}),
    "flat-numbers": (raw(flat_numbers), {200, 400, 413}),
    "max-messages": (raw(max_messages), {200}),
    "max-members": (raw(at_limit("members")), {200}),
    "max-values": (raw(at_limit("values")), {200}),
}
ALL_KINDS = {**KINDS, **ADVERSARIAL}


def measure(environment: dict[str, str], kinds: list[str], requests: int, upstream: FakeOpenAIServer) -> list[str]:
    function = Function.start(environment)
    try:
        pid = function.process.pid
        ready_cpu = cpu_seconds(pid)
        ready = proc_status(pid)
        first_ms: float | None = None
        warm_cpu, warm_count = 0.0, 0
        statuses: set[int] = set()
        for kind in kinds:
            send, expected = ALL_KINDS[kind]
            heavy = kind in {"bedrock", "large"} or kind in ADVERSARIAL
            for _ in range(max(2, requests // 5) if heavy else requests):
                if kind == "upstream-stream":
                    chunks = [delta_chunk(content=f"token{i} ") for i in range(200)]
                    upstream.enqueue(stream=[*chunks, delta_chunk(finish_reason="stop"), usage_chunk(400, 200)])
                before = cpu_seconds(pid)
                status = send(function)
                spent = cpu_seconds(pid) - before
                assert status in expected, f"{kind}: {status}"
                statuses.add(status)
                if first_ms is None:
                    # The first request imports and builds what the function creates once per environment.
                    first_ms = spent * 1000
                else:
                    warm_cpu, warm_count = warm_cpu + spent, warm_count + 1
        peak = proc_status(pid)
    finally:
        function.stop()
    return [
        f"{ready['VmRSS'] / 1024:.1f}",
        f"{peak['VmHWM'] / 1024:.1f}",
        f"{ready_cpu:.2f}",
        f"{first_ms or 0:.0f}",
        f"{warm_cpu / max(warm_count, 1) * 1000:.1f}",
        ",".join(map(str, sorted(statuses))),
    ]


def function_environment(
    moto: MotoProcess, upstream: FakeOpenAIServer, python: Path, *, time_budget_seconds: int
) -> dict[str, str]:
    """The API function's environment: its usage table created on `moto`, the fake upstream as its one model's
    target, and a Bedrock endpoint where nothing listens (Bedrock calls fail to connect, after the client is built)."""
    import boto3

    dynamodb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=moto.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    dynamodb.create_table(TableName=TABLE, **dynamodb_tables(load_template())["UsageTable"])
    return {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "PYTHONPATH": str(PROJECT_ROOT / "layers" / "gateway"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL_DYNAMODB": moto.url,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": f"http://127.0.0.1:{free_port()}",
        "GATEWAY_USAGE_TABLE": TABLE,
        "GATEWAY_MODELS_JSON": json.dumps(registry(upstream.base_url, "")),
        "GATEWAY_TIME_BUDGET_SECONDS": str(time_budget_seconds),
    }


def run_header(python: Path) -> tuple[str, str]:
    """(this checkout's commit, `python --version`), for the first line a bench prints."""
    commit = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True, check=False
    ).stdout.strip()
    version = subprocess.run([str(python), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return commit, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="requests per kind (large and bedrock: a fifth)")
    parser.add_argument("--kinds", default=",".join([*KINDS, "all", *ADVERSARIAL]), help="comma-separated kinds")
    parser.add_argument("--python", type=Path, help="interpreter for the function (default: .venv's)")
    args = parser.parse_args()
    moto = MotoProcess()
    upstream = FakeOpenAIServer().start()
    try:
        python = args.python or PROJECT_ROOT / ".venv" / "bin" / "python"
        environment = function_environment(moto, upstream, python, time_budget_seconds=10)
        commit, version = run_header(python)
        print(f"at {commit}, {version} ({platform.machine()}), {args.requests} requests per kind, fresh process each")
        print(
            f"{'kind':<16}{'ready MiB':>10}{'peak MiB':>10}{'start CPU s':>12}{'1st CPU ms':>11}{'warm CPU ms':>12}"
            f"{'status':>9}"
        )
        for kind in args.kinds.split(","):
            kinds = list(KINDS) if kind == "all" else [kind]
            row = measure(environment, kinds, args.requests, upstream)
            print(f"{kind:<16}{row[0]:>10}{row[1]:>10}{row[2]:>12}{row[3]:>11}{row[4]:>12}{row[5]:>9}", flush=True)
    finally:
        upstream.close()
        moto.stop()


if __name__ == "__main__":
    main()
