"""The local gateway's AWS endpoint: moto's server (DynamoDB, API Gateway) in a process of its own on loopback.

A process of its own, so that moto's request handling (CPU-bound Python) runs beside the gateway on another
core instead of taking turns with it for one interpreter lock. Calls are applied one at a time, as DynamoDB
applies the updates of one item atomically; connections stay open between calls (HTTP/1.1, Nagle off), so a
DynamoDB call costs no new connection and no new server thread.

    python -m emulator.aws PORT    # serves until terminated; prints "ready" once it listens
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess  # nosec B404 # starts moto's server from this interpreter, with a fixed argv
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

READY = "ready"
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The request's signing scope names its service and region (SigV4: Credential=KEY/DATE/REGION/SERVICE/aws4_request).
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request")


def aws_url(authorization: str, path: str) -> str:
    """The AWS URL a signed request to the local endpoint stands for: the service's regional endpoint (what
    moto's URL patterns match), from the request's signing scope."""
    scope = _SCOPE.search(authorization)
    service, region = (scope["service"], scope["region"]) if scope else ("dynamodb", "us-east-1")
    return f"https://{service}.{region}.amazonaws.com{path}"


def serve(port: int) -> None:
    """Serve moto's endpoint on 127.0.0.1:`port` until the process is terminated.

    Each request goes straight to moto's backends (what moto's in-process mock does with a botocore request),
    not through its Flask app, and connections stay open between requests (HTTP/1.1 with Content-Length; the
    werkzeug server moto ships closes every connection).
    """
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.compat import HTTPHeaders
    from moto import mock_aws
    from moto.core.models import botocore_stubber

    mock_aws().start()
    one_at_a_time = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one write: http.server flushes after each response.
        wbufsize = 1 << 16

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            """No per-request log: it would drown the gateway's own access log."""

        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = aws_url(self.headers.get("Authorization", ""), self.path)
            headers = HTTPHeaders()
            for name, value in self.headers.items():
                headers[name] = value
            request = AWSPreparedRequest(self.command, url, headers, body, stream_output=False)
            with one_at_a_time:
                answer = botocore_stubber.process_request(request)
            status, answered, payload = answer if answer is not None else (404, {}, b"")
            data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload or b"")
            self.send_response(int(status))
            for name, value in answered.items():
                if name.lower() not in {"content-length", "status", "connection", "server", "date"}:
                    self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_one

    class Server(ThreadingHTTPServer):
        # The gateway opens a connection per concurrent DynamoDB call; socketserver's default backlog of 5
        # would drop the SYNs of a burst (each retried a second later).
        request_queue_size = 1024
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler)
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
            [sys.executable, "-m", "emulator.aws", str(self.port)],
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
