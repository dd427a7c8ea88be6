"""ASGI sends the local gateway puts between the app and the client: one that notes what went through, one that holds
a BUFFERED integration's response until it is complete."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from emulator.events import HttpReply

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class ResponseMeter:
    """An ASGI send that notes what went through it: the status, the body's length, when content began."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.length = 0
        self.first_content_at: float | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        else:
            piece = len(message.get("body", b""))
            if piece and self.first_content_at is None:
                self.first_content_at = time.perf_counter()
            self.length += piece
        await self._send(message)


class BufferedResponse:
    """Collects a response for a BUFFERED integration, sent once complete."""

    def __init__(self) -> None:
        self.status = 502
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])}
        else:
            self.body += message.get("body", b"")

    def reply(self) -> HttpReply:
        return HttpReply(self.status, self.headers, bytes(self.body))
