"""Drive an ASGI app in-process the way an HTTP server does: one request in, the response pieces as they come.

    reply = asgi_call(app, "POST", "/v1/chat/completions", headers={"x-api-key": "k"}, body=b"{...}")
    assert reply.status == 200 and reply.json()["object"] == "chat.completion"

`disconnect_after` hangs up after that many non-empty body pieces, as a client that closes the connection
mid-stream; `hang_up_at` hangs up that many seconds after the request was sent, whatever was written by then.
Once the client is gone the app's next `receive()` returns `http.disconnect`, and its next `send()` fails like
a server's write to a closed socket (the ASGI spec lets a server raise OSError there), or, with
`closed_writes="ignore"`, is dropped without a word, as uvicorn does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


@dataclass
class AsgiReply:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    # (seconds since the request was sent, body piece) for every non-empty piece, in order.
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    disconnected: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(piece for _, piece in self.chunks)

    def json(self) -> Any:
        return json.loads(self.body)

    def sse_data(self) -> list[str]:
        """The `data:` payloads of a text/event-stream body, in order (comments and blank lines skipped)."""
        return [
            line.removeprefix("data:").strip() for line in self.body.decode().splitlines() if line.startswith("data:")
        ]


def http_scope(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    client: tuple[str, int] = ("203.0.113.7", 50000),
) -> Scope:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs],
        "client": client,
        "server": ("127.0.0.1", 3000),
    }


async def run_asgi(
    app: App,
    scope: Scope,
    body: bytes = b"",
    *,
    disconnect_after: int | None = None,
    hang_up_at: float | None = None,
    closed_writes: Literal["raise", "ignore"] = "raise",
    timeout: float = 30.0,
) -> AsgiReply:
    """Send one request (its whole body at once) to `app` and collect the response as it is written."""
    reply = AsgiReply()
    started = time.monotonic()
    body_sent = False
    hung_up = asyncio.Event()

    def hang_up() -> None:
        reply.disconnected = True
        hung_up.set()

    if hang_up_at is not None:
        asyncio.get_running_loop().call_later(hang_up_at, hang_up)

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if hung_up.is_set():
            if closed_writes == "ignore":
                return
            raise OSError("the client closed the connection")
        if message["type"] == "http.response.start":
            reply.status = int(message["status"])
            for name, value in message.get("headers", []):
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                reply.headers[key] = f"{reply.headers[key]}, {text}" if key in reply.headers else text
        elif message["type"] == "http.response.body" and message.get("body"):
            reply.chunks.append((time.monotonic() - started, bytes(message["body"])))
            if disconnect_after is not None and len(reply.chunks) >= disconnect_after:
                hang_up()

    await asyncio.wait_for(app(scope, receive, send), timeout)
    return reply


async def asgi_request(
    app: App,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    disconnect_after: int | None = None,
    timeout: float = 30.0,
) -> AsgiReply:
    scope = http_scope(method, path, query=query, headers=headers)
    return await run_asgi(app, scope, body, disconnect_after=disconnect_after, timeout=timeout)


def asgi_call(app: App, method: str, path: str, **options: Any) -> AsgiReply:
    """`asgi_request` from synchronous code, in an event loop of its own."""
    return asyncio.run(asgi_request(app, method, path, **options))
