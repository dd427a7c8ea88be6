"""A scriptable fake OpenAI-compatible server on 127.0.0.1 for provider, routing and end-to-end tests.

By default it answers like OpenAI: POST .../embeddings returns deterministic vectors (`embeddings_json`), POST
.../chat/completions returns a deterministic completion that echoes the last user message (streamed when the
request says `stream`, with a usage chunk when it asks for `stream_options.include_usage`, and a tool call when
`tool_choice` is "required" or names a tool); POST .../responses a Responses API object echoing it
(`response_json`); GET .../models lists `models`. Tests script particular answers with
`enqueue()`, consumed in order by the next chat completion or embeddings requests, and inspect every request the
server received in `requests`.

    with FakeOpenAIServer() as server:
        server.enqueue(status=429, headers={"Retry-After": "3"}, json=error_json("slow down"))
        server.enqueue(stream=[delta_chunk(content="Hi"), delta_chunk(finish_reason="stop")], done=False)
        target = Target(provider="openai", model_id="gpt-x", base_url=server.base_url)
        ...
        assert server.last_request.body["model"] == "gpt-x"

The `openai_server` fixture wraps the same in a pytest fixture that always shuts the server down.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

# What the emulated chat template adds to every prompt, in tokens (see FakeOpenAIServer.context_overflow).
CHAT_TEMPLATE_TOKENS = 26

Frame = Mapping[str, Any] | str
"""One SSE frame to stream: a chunk object (sent as `data: <json>`) or raw text sent verbatim."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON body; None when it was empty or not JSON
    raw_body: bytes
    client_port: int  # the client's source port: equal ports mean a reused connection


@dataclass(frozen=True)
class ScriptedResponse:
    """One scripted answer; see `FakeOpenAIServer.enqueue` for the fields."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    body: bytes | None = None
    stream: Sequence[Frame] | None = None
    done: bool = True
    error: Mapping[str, Any] | None = None
    abort: bool = False
    delay: float = 0.0
    frame_delay: float = 0.0
    split: int | None = None


def usage_json(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return usage


def tool_call_json(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion_json(
    content: str | None,
    *,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    finish_reason: str | None = "stop",
    usage: Mapping[str, Any] | None = None,
    model: str = "fake-model",
) -> dict[str, Any]:
    """A `chat.completion` object; without `usage` it has none, as some servers do."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = dict(usage)
    return body


def delta_chunk(
    *,
    content: str | None = None,
    role: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice holding the given delta fields."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = list(tool_calls)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    """The final chunk OpenAI sends for stream_options.include_usage: no choices, only usage."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-model",
        "choices": [],
        "usage": usage_json(prompt_tokens, completion_tokens, cached_tokens),
    }


def error_json(message: str, *, error_type: str = "invalid_request_error", param: str | None = None) -> dict[str, Any]:
    """An OpenAI error body: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": None}}


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def default_response(body: Any) -> ScriptedResponse:
    """What the server answers when nothing is scripted: the last user message, echoed like OpenAI would."""
    request = body if isinstance(body, dict) else {}
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    reply = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
    tool = _forced_tool(request)
    call = tool_call_json("call_fake_0", tool, json.dumps({"input": reply})) if tool else None
    completion_tokens = len(call["function"]["arguments"].split()) if call else len(reply.split())
    if not request.get("stream"):
        return ScriptedResponse(
            json=chat_completion_json(
                None if call else reply,
                tool_calls=[call] if call else None,
                finish_reason="tool_calls" if call else "stop",
                usage=usage_json(prompt_tokens, completion_tokens),
                model=str(request.get("model", "fake-model")),
            )
        )
    frames: list[Frame] = [delta_chunk(role="assistant", content="")]
    if call:
        arguments = call["function"]["arguments"]
        middle = len(arguments) // 2
        start = {"index": 0, **call, "function": {"name": tool, "arguments": ""}}
        frames += [
            delta_chunk(tool_calls=[start]),
            delta_chunk(tool_calls=[{"index": 0, "function": {"arguments": arguments[:middle]}}]),
            delta_chunk(tool_calls=[{"index": 0, "function": {"arguments": arguments[middle:]}}]),
            delta_chunk(finish_reason="tool_calls"),
        ]
    else:
        words = reply.split(" ")
        frames += [delta_chunk(content=w if i == 0 else " " + w) for i, w in enumerate(words) if reply]
        frames.append(delta_chunk(finish_reason="stop"))
    options = request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        frames.append(usage_chunk(prompt_tokens, completion_tokens))
    return ScriptedResponse(stream=frames)


def response_json(
    body: Any, *, text: str | None = None, input_tokens: int = 7, output_tokens: int = 3
) -> dict[str, Any]:
    """A Responses API response object, as a server that serves that API itself answers: `text`, else the last
    user text of the request's input."""
    if text is None:
        items = body.get("input") if isinstance(body, dict) else None
        if isinstance(items, str):
            text = items
        else:
            users = [item for item in items or [] if isinstance(item, dict) and item.get("role") == "user"]
            text = _text(users[-1].get("content")) if users else ""
    return {
        "id": "resp_upstream_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "model": body.get("model") if isinstance(body, dict) else None,
        "output": [
            {
                "id": "msg_upstream_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def embeddings_json(body: Any) -> dict[str, Any]:
    """OpenAI's embeddings answer for a request: per input, `dimensions` (default 8) values from the input's
    position and length, as floats or (encoding_format base64) little-endian float32; a token per word or id."""
    import base64
    import struct

    raw = body.get("input") if isinstance(body, dict) else None
    inputs = [raw] if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)) else raw
    size = int(body.get("dimensions") or 8) if isinstance(body, dict) else 8
    data, tokens = [], 0
    for index, item in enumerate(inputs or []):
        vector = [round((index + 1) / (position + 2), 4) for position in range(size)]
        tokens += len(item.split()) if isinstance(item, str) else len(item)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") if isinstance(body, dict) else None,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _forced_tool(request: Mapping[str, Any]) -> str | None:
    choice = request.get("tool_choice")
    tools = [t.get("function", {}).get("name") for t in request.get("tools") or [] if isinstance(t, dict)]
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        return name if isinstance(name, str) else None
    if choice == "required" and tools and isinstance(tools[0], str):
        return tools[0]
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FakeOpenAIServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
        self.stopping = threading.Event()
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up on purpose in timeout and abandoned-stream tests; anything else is reported.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so tests can see a client reuse its connection
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default writes every request to stderr."""

    def _serve(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        owner._record(
            RecordedRequest(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query)),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                raw_body=raw,
                client_port=self.client_address[1],
            )
        )
        if self.command == "GET" and url.path.endswith("/models"):
            models = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in owner.models]
            response = ScriptedResponse(json={"object": "list", "data": models})
        elif self.command == "POST" and url.path.endswith("/chat/completions"):
            response = owner._next_response() or owner.context_overflow(body) or default_response(body)
        elif self.command == "POST" and url.path.endswith("/responses"):
            response = owner._next_response() or ScriptedResponse(json=response_json(body))
        elif self.command == "POST" and url.path.endswith("/embeddings"):
            response = owner._next_response() or ScriptedResponse(json=embeddings_json(body))
        else:
            response = ScriptedResponse(status=404, json=error_json(f"no route {self.command} {url.path}"))
        try:
            self._send(response)
        except ConnectionError:
            # The client gave up (a timeout test): nothing left to answer.
            self.close_connection = True

    def _send(self, response: ScriptedResponse) -> None:
        if response.delay and self.server.stopping.wait(response.delay):
            self.close_connection = True
            return
        if response.stream is not None:
            self._send_stream(response)
            return
        if response.body is not None:
            payload = response.body
        elif response.json is not None:
            payload = json.dumps(response.json).encode()
        else:
            payload = b""
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(self, response: ScriptedResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        frames = [f if isinstance(f, str) else f"data: {json.dumps(f)}\n\n" for f in response.stream or []]
        if response.error is not None:
            frames.append(f"data: {json.dumps({'error': dict(response.error)})}\n\n")
        elif response.done:
            frames.append("data: [DONE]\n\n")
        for written, frame in enumerate(frames):
            if response.frame_delay and self.server.stopping.wait(response.frame_delay):
                break
            data = frame.encode()
            step = response.split or len(data)
            try:
                for start in range(0, len(data), step):
                    # One HTTP chunk per piece: the client's reads then see frames cut at these points.
                    piece = data[start : start + step]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
            except ConnectionError:
                # The client hung up mid-stream: note how many frames it had been sent, then stop generating.
                self.server.owner._abandon(written)
                raise
        if response.abort:
            # No terminating chunk: the client sees the connection drop mid-body.
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


class FakeOpenAIServer:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port), serving the OpenAI chat API from a script.

    Use it as a context manager (or call `start()` and `close()`); `base_url` ends in /v1 like OpenAI's.
    """

    def __init__(self, models: Sequence[str] = ("fake-model",), max_model_len: int | None = None) -> None:
        """`max_model_len` makes the server refuse, as vLLM started with --max-model-len does, any request whose
        prompt plus max_tokens exceeds that many tokens."""
        self.models = tuple(models)
        self.max_model_len = max_model_len
        self._lock = threading.Lock()
        self._script: deque[ScriptedResponse] = deque()
        self._requests: list[RecordedRequest] = []
        self._abandoned: list[int] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeOpenAIServer:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop every open connection, including ones a client keeps alive."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        with server.sockets_lock:
            for sock in list(server.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(
        self,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        stream: Sequence[Frame] | None = None,
        done: bool = True,
        error: Mapping[str, Any] | None = None,
        abort: bool = False,
        delay: float = 0.0,
        frame_delay: float = 0.0,
        split: int | None = None,
    ) -> None:
        """Script the answer to the next chat completion request not yet answered by the script.

        status/headers: the HTTP status and extra headers. json: a JSON body; body: raw bytes instead
        (malformed JSON, HTML error pages). stream: SSE frames (chunk objects, or raw strings such as
        ": keep-alive\\n\\n" sent verbatim), then `data: [DONE]` unless done=False; error: an error object
        sent as a final `data: {"error": ...}` frame instead of [DONE]; abort: drop the connection
        without ending the chunked body. delay: seconds to wait before answering (client timeouts);
        frame_delay: seconds before each frame; split: send every frame in pieces of this many bytes.
        """
        response = ScriptedResponse(
            status=status,
            headers=dict(headers or {}),
            json=json,
            body=body,
            stream=list(stream) if stream is not None else None,
            done=done,
            error=error,
            abort=abort,
            delay=delay,
            frame_delay=frame_delay,
            split=split,
        )
        with self._lock:
            self._script.append(response)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("the fake OpenAI server received no request")
            return self._requests[-1]

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet."""
        with self._lock:
            return len(self._script)

    @property
    def abandoned_streams(self) -> list[int]:
        """For every stream whose client hung up, how many frames had been written before (in order)."""
        with self._lock:
            return list(self._abandoned)

    def _abandon(self, frames_written: int) -> None:
        with self._lock:
            self._abandoned.append(frames_written)

    def context_overflow(self, body: Any) -> ScriptedResponse | None:
        """vLLM's answer to a request that does not fit its --max-model-len, or None when it fits.

        The prompt is counted as its words plus CHAT_TEMPLATE_TOKENS, the tokens a chat template adds (Llama
        3.1's default system header alone is about that many); vLLM without max_tokens generates until the
        window is full, so only an explicit limit can overflow.
        """
        if self.max_model_len is None or not isinstance(body, dict):
            return None
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        prompt = sum(len(_text(m.get("content")).split()) for m in messages) + CHAT_TEMPLATE_TOKENS
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        window = self.max_model_len
        if asked is None or prompt + asked <= window:
            return None
        message = (
            f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's maximum context length "
            f"is {window} tokens and your request has {prompt} input tokens ({asked} > {window} - {prompt}). None"
        )
        return ScriptedResponse(
            status=400, json={"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}
        )

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_response(self) -> ScriptedResponse | None:
        with self._lock:
            return self._script.popleft() if self._script else None


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A running fake OpenAI-compatible server, shut down after the test."""
    with FakeOpenAIServer() as server:
        yield server
