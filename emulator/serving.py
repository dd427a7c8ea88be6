"""The local gateway's HTTP server: uvicorn on a loopback socket, in this process and optionally in forked worker
processes sharing the socket; and stdout without the metric lines."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, TextIO

import anyio
import anyio.to_thread

from emulator.aws import _die_with_parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Connections the listening socket queues before accept(); the stdlib's default of 5 reset bursts.
LISTEN_BACKLOG = 2048


# Threads for blocking work (API key lookups, invocations); anyio's default of 40 would queue a burst of 100
# connections behind each other.
WORKER_THREADS = 256


async def blocking(function: Callable[..., Any], *args: Any, abandon_on_cancel: bool = False) -> Any:
    """Run blocking work (a Lambda invocation, a DynamoDB or API Gateway call) off the event loop."""
    return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=abandon_on_cancel, limiter=_limiter())


_worker_limiter: anyio.CapacityLimiter | None = None
_serial: tuple[int, ThreadPoolExecutor] | None = None


async def serially(function: Callable[..., Any], *args: Any) -> Any:
    """Run short blocking work that is one at a time anyway (a plain-handler invocation holds the functions' lock,
    a usage-plan admission the database's write lock) in this process's one thread for it: off the event loop,
    without a thread per waiting request."""
    global _serial
    if _serial is None or _serial[0] != os.getpid():  # a forked worker makes its own
        _serial = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="serial"))
    return await asyncio.get_running_loop().run_in_executor(_serial[1], functools.partial(function, *args))


def _limiter() -> anyio.CapacityLimiter:
    global _worker_limiter
    if _worker_limiter is None:
        _worker_limiter = anyio.CapacityLimiter(WORKER_THREADS)
    return _worker_limiter


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, as API Gateway reads it before anything else; None when it exceeds `limit`
    (then read to the end and dropped, so that the client, still sending, receives the 413)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    return None if size > limit else b"".join(parts)


class DropMetrics(io.TextIOBase):
    """stdout without the EMF metric lines Powertools prints: installed once for the whole process, since
    every function and concurrent request prints through the same sys.stdout."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        if not text.startswith('{"_aws"'):
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()


class GatewayServer:
    """uvicorn serving an ASGI app on 127.0.0.1, on a socket bound at creation (so a busy port fails before
    anything else starts), in a thread of its own until `stop()`; with `workers` > 1, also in that many - 1 forked
    worker processes accepting on the same socket (each with its own interpreter, so requests no longer take
    turns for one interpreter lock)."""

    def __init__(self, port: int) -> None:
        # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off only on sockets that say so, and
        # with it on, a response written in pieces waits for the keep-alive client's delayed ACK (40 ms).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._socket.bind(("127.0.0.1", port))
            self._socket.listen(LISTEN_BACKLOG)
        except OSError:
            self._socket.close()
            raise
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._workers: list[int] = []

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def _config(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> Any:
        import uvicorn

        from emulator.framing import JsonErrorH11Protocol, json_server_errors

        return uvicorn.Config(
            json_server_errors(app),
            # The server's own answers (malformed HTTP, a failing app) in JSON, as every other answer.
            http=JsonErrorH11Protocol,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # API Gateway's REST APIs upgrade no connection to a WebSocket: a handshake request is answered as the
            # plain HTTP request it also is (a GET the routes answer), never by uvicorn's WebSocket protocol.
            ws="none",
            # Streams in flight get this long to finish when the gateway stops.
            timeout_graceful_shutdown=2,
        )

    def start(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], workers: int = 1) -> None:
        """Serve `app` in this process and in `workers` - 1 forked ones. Fork before this process starts
        threads: the children begin as copies of it, and open their own database connections."""
        import uvicorn

        for _ in range(workers - 1):
            self._workers.append(self._fork(app))
        config = self._config(app)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="gateway-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise RuntimeError("the local gateway's HTTP server did not start")

    def _fork(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> int:
        pid = os.fork()
        if pid:
            return pid
        # The worker: serve until the parent sends SIGTERM (or dies), then leave without running anything of the
        # parent's (its clean-up would stop what the parent started).
        status = 0
        try:
            _die_with_parent()
            import uvicorn

            uvicorn.Server(self._config(app)).run(sockets=[self._socket])
        except BaseException:
            status = 1
        finally:
            os._exit(status)

    def stop(self) -> None:
        for pid in self._workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
        for pid in self._workers:
            _reap(pid, timeout=10)
        self._workers = []


def _reap(pid: int, timeout: float) -> None:
    """Wait for a worker to exit; kill it after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                time.sleep(0.05)
                continue
        return
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)
