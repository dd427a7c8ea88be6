"""Starts the real local gateway (`gatewayctl serve`) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEY = "sk-llmgw-" + "E2eDemoKeyForTheLocalGatewayTests".ljust(43, "0")
# The e2e plan overrides: revocation seen at once, and a free plan with a tiny quota but no throttling.
PARAMETERS = ["AuthCacheSeconds=0", "FreePlanRateLimit=100", "FreePlanBurstLimit=100", "FreePlanQuotaLimit=3"]


@dataclass
class LocalGateway:
    process: subprocess.Popen[str]
    base_url: str
    key: str
    root_url: str
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    def gatewayctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gatewayctl.cli", *args, "--local", self.root_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=child_environment(),
        )


def child_environment() -> dict[str, str]:
    """The developer's environment without AWS or gateway settings (the tests' own are fakes anyway)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GATEWAY_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_gateway(
    *extra: str, demo_key: str | None = DEMO_KEY, env_extra: dict[str, str] | None = None, data_dir: Path | None = None
) -> LocalGateway:
    """`data_dir`: the gateway's state directory (default: a fresh one, so that runs never share state);
    `demo_key` None: the one the data directory keeps (or a new one)."""
    env = {**child_environment(), **({"GATEWAY_DEMO_KEY": demo_key} if demo_key else {}), **(env_extra or {})}
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="gateway-data-"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gatewayctl.cli",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--parameter-overrides",
            *PARAMETERS,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()
    found: dict[str, str] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = re.search(r"serving template.yaml on (http://127\.0\.0\.1:\d+/v1)", line)
            if match:
                found["base_url"] = match.group(1)
            if line.startswith("Ctrl-C stops"):
                ready.set()
        ready.set()  # the process ended before it was ready: stop waiting

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout=90) or "base_url" not in found or process.poll() is not None:
        process.kill()
        process.wait()
        raise RuntimeError("the local gateway did not start:\n" + "".join(output))
    base_url = found["base_url"]
    key = demo_key or re.findall(r"^\s+(sk-llmgw-\S+)$", "".join(output), re.MULTILINE)[0]
    return LocalGateway(process, base_url, key, base_url.rsplit("/", 1)[0], output)


def stop_gateway(gateway: LocalGateway) -> int:
    if gateway.process.poll() is None:
        gateway.process.send_signal(signal.SIGINT)
        try:
            return gateway.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()
            raise
    return int(gateway.process.returncode)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def local_gateway(upstream: FakeOpenAIServer) -> Iterator[LocalGateway]:
    """The gateway with echo and an OpenAI-compatible chat model and embedding model configured as a user would
    (env variables)."""
    gateway = start_gateway(
        env_extra={
            "GATEWAY_LOCAL_OPENAI_BASE_URL": upstream.base_url,
            "GATEWAY_LOCAL_OPENAI_MODELS": "fake-upstream=gpt-fake",
            "GATEWAY_LOCAL_OPENAI_EMBEDDING_MODELS": "fake-embedding=text-embedding-fake",
            "GATEWAY_LOCAL_OPENAI_API_KEY": "sk-upstream-secret-for-e2e",
        }
    )
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
