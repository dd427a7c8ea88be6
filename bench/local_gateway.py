"""The local gateway (`gatewayctl serve`, what `make run` starts) streaming and under load, for one or more
checkouts of the project measured in the same run.

- stream: an OpenAI-compatible upstream (a fake one, in this process) streams 20 chunks 100 ms apart; the
  gateway is asked for `--streams` streamed answers one after another, and each gives the time to its first
  content chunk and to its end. Printed: medians, and first chunk / total (1.0 = delivered in one piece).
- load: `--clients` concurrent clients on keep-alive connections send non-streamed chat requests (echo model)
  for `--seconds`; printed: requests/s answered 200 and the failures by kind (status, reset, refused...).

Each checkout's gateway is started from its own .venv with the plans' limits raised out of the way; they run
one after the other, alternating over `--rounds`. `--root` names a checkout (repeatable; default this one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk  # noqa: E402

OVERRIDES = [
    "StandardPlanRateLimit=100000",
    "StandardPlanBurstLimit=100000",
    "StandardPlanQuotaLimit=100000000",
    "StandardPlanTokensPerMinute=0",
    "StandardPlanTokensPerDay=0",
    "StandardPlanUsdPerMonth=0",
]
WORDS, INTERVAL = 20, 0.1


class Gateway:
    def __init__(self, root: Path, upstream: FakeOpenAIServer) -> None:
        self.key = "sk-llmgw-" + secrets.token_urlsafe(32)[:43].ljust(43, "0")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GATEWAY_"))},
            "GATEWAY_DEMO_KEY": self.key,
            "GATEWAY_LOCAL_OPENAI_BASE_URL": upstream.base_url,
            "GATEWAY_LOCAL_OPENAI_MODELS": "fake=fake-model",
            "PYTHONUNBUFFERED": "1",
            # A fresh state directory per start, so that no round inherits another's budgets (ignored by checkouts
            # that keep state in moto).
            "GATEWAY_DATA_DIR": tempfile.mkdtemp(prefix="bench-gateway-data-"),
        }
        command = [str(root / ".venv" / "bin" / "python"), "-m", "gatewayctl.cli", "serve", "--port", "0", "--quiet"]
        self.process = subprocess.Popen(
            [*command, "--parameter-overrides", *OVERRIDES],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = re.search(r"serving template.yaml on http://127\.0\.0\.1:(\d+)/v1", line)
            if match:
                self.port = int(match.group(1))
            if line.startswith("Ctrl-C stops"):
                break
        else:
            raise RuntimeError(f"the gateway of {root} did not start")
        threading.Thread(target=lambda: [None for _ in self.process.stdout or ()], daemon=True).start()

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, key: str, body: dict[str, Any]
) -> tuple[int, float | None, float]:
    """One request on an open connection: (status, seconds to the first content chunk, seconds to the end)."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    started = time.perf_counter()
    writer.write(head.encode() + payload)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("connection closed")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    first: float | None = None
    if "content-length" in headers:
        data = await reader.readexactly(int(headers["content-length"]))
        if b'"content":" w' in data:
            first = time.perf_counter() - started
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            data = await reader.readexactly(size)
            await reader.readline()
            if first is None and b'"content":" w' in data:
                first = time.perf_counter() - started
    return status, first, time.perf_counter() - started


async def stream_phase(port: int, key: str, upstream: FakeOpenAIServer, count: int) -> list[tuple[float, float]]:
    frames: list[Any] = [delta_chunk(role="assistant", content="")]
    frames += [delta_chunk(content=f" w{n}") for n in range(WORDS)]
    frames += [delta_chunk(finish_reason="stop"), usage_chunk(4, WORDS)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    results = []
    try:
        for _ in range(count):
            upstream.enqueue(stream=frames, frame_delay=INTERVAL)
            body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "go"}]}
            status, first, total = await _exchange(reader, writer, port, key, body)
            if status != 200 or first is None:
                raise RuntimeError(f"streamed request failed: {status}")
            results.append((first, total))
    finally:
        writer.close()
    return results


async def load_phase(port: int, key: str, clients: int, seconds: float) -> tuple[float, Counter[str]]:
    outcomes: Counter[str] = Counter()
    body = {"model": "echo", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello to the bench"}]}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < deadline:
            try:
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", port)
                status, _, _ = await asyncio.wait_for(_exchange(*connection, port, key, body), 30)
                outcomes["ok" if status == 200 else f"http_{status}"] += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                outcomes[type(error).__name__] += 1
                if connection is not None:
                    connection[1].close()
                connection = None
                await asyncio.sleep(0.01)
        if connection is not None:
            connection[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return outcomes["ok"] / (time.perf_counter() - started), outcomes


def commit_of(root: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, action="append", help="checkout(s) to measure (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.root or [PROJECT_ROOT])]
    streams: dict[Path, list[tuple[float, float]]] = {root: [] for root in roots}
    rates: dict[Path, list[float]] = {root: [] for root in roots}
    failures: dict[Path, Counter[str]] = {root: Counter() for root in roots}
    with FakeOpenAIServer() as upstream:
        for round_number in range(args.rounds):
            order = roots if round_number % 2 == 0 else list(reversed(roots))
            for root in order:
                gateway = Gateway(root, upstream)
                try:
                    streams[root] += asyncio.run(stream_phase(gateway.port, gateway.key, upstream, args.streams))
                    rate, outcomes = asyncio.run(load_phase(gateway.port, gateway.key, args.clients, args.seconds))
                finally:
                    gateway.stop()
                rates[root].append(rate)
                failures[root].update({kind: n for kind, n in outcomes.items() if kind != "ok"})
                print(f"round {round_number + 1}: {root.name} {rate:.1f} req/s, failures {dict(failures[root])}")
    print(
        f"\nstreams: {WORDS} chunks {INTERVAL * 1000:.0f} ms apart, {args.streams} x {args.rounds} per checkout; "
        f"load: {args.clients} clients x {args.seconds:g} s x {args.rounds} rounds (medians)"
    )
    print(f"{'checkout':<28}{'first chunk ms':>16}{'total ms':>10}{'first/total':>13}{'req/s':>9}  failures")
    for root in roots:
        first = statistics.median(f for f, _ in streams[root])
        total = statistics.median(t for _, t in streams[root])
        ratio = statistics.median(f / t for f, t in streams[root])
        label = f"{root.name} {commit_of(root)}"
        print(
            f"{label:<28}{first * 1000:>16.0f}{total * 1000:>10.0f}{ratio:>13.2f}"
            f"{statistics.median(rates[root]):>9.1f}  {dict(failures[root]) or 'none'}"
        )


if __name__ == "__main__":
    main()
