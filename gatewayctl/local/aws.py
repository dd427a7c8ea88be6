"""The local gateway's AWS endpoint: moto's server (DynamoDB, API Gateway) in a process of its own on loopback.

A process of its own, so that moto's request handling (CPU-bound Python) runs beside the gateway on another
core instead of taking turns with it for one interpreter lock. Calls are applied one at a time, as DynamoDB
applies the updates of one item atomically; connections stay open between calls (HTTP/1.1, Nagle off).

    python -m gatewayctl.local.aws PORT    # serves until terminated; prints "ready" once it listens
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess  # nosec B404 # starts moto's server from this interpreter, with a fixed argv
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

READY = "ready"
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(port: int) -> None:
    """Serve moto's endpoint on 127.0.0.1:`port` until the process is terminated."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    # Its per-request log would drown the gateway's own access log.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with one_at_a_time:
            return list(app(environ, start_response))

    class Handler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    server = make_server("127.0.0.1", port, serialized, threaded=True, request_handler=Handler)
    print(READY, flush=True)
    server.serve_forever()


def _die_with_parent() -> None:
    """In the child, before exec: ignore the terminal's Ctrl-C (the parent stops the child itself) and get
    SIGTERM should the parent die without doing so (Linux prctl PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class MotoProcess:
    """moto's server in a child process: started at once, waited for when its URL is first needed."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process = subprocess.Popen(  # noqa: S603 # nosec B603 # this interpreter running this module
            [sys.executable, "-m", "gatewayctl.local.aws", str(self.port)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet in a fresh child
        )
        self._ready = False

    @property
    def url(self) -> str:
        if not self._ready:
            self._wait()
        return f"http://127.0.0.1:{self.port}"

    def _wait(self) -> None:
        if self._process.stdout is None:
            raise RuntimeError("moto's process was started without a pipe for its output")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        line = ""
        while time.monotonic() < deadline and self._process.poll() is None:
            line = self._process.stdout.readline().strip()
            if line == READY:
                self._ready = True
                return
        self.stop()
        raise RuntimeError(f"the local AWS endpoint (moto) did not start: {line or 'no output'}")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
