"""The API function's ASGI plumbing: the routes' use cases run and answered (on worker threads where requests come
many at once), and streamed answers written to the client chunk by chunk as the model produces them. The request
observer (api/observer.py) wraps every request."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from llm_gateway.api.http import EVENT_STREAM, Reply, api_request, parse_body, utf8
from llm_gateway.config import environment_variable, get_settings
from llm_gateway.domain.caller import ApiRequest
from llm_gateway.errors import GatewayError
from llm_gateway.gateway import Gateway, get_gateway
from llm_gateway.observability import (
    current_request,
    get_tracer,
    logger,
)

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]

# An SSE comment: clients ignore it, proxies and API Gateway's idle timer see bytes flowing.
KEEPALIVE_FRAME = b": keep-alive\n\n"
# Worker threads for the gateway's blocking work (boto3, urllib3) when the process is not told how many requests it
# serves at once: Lambda on demand serves one per environment, the local gateway many from one process.
WORKER_THREADS = 128
# Threads beyond one per request in flight: a finished request's settling still holds one while the next request
# already waits on its own.
SPARE_WORKER_THREADS = 8


def worker_threads(concurrency_per_environment: int | None) -> int:
    """Worker threads for a process serving `concurrency_per_environment` requests at once (Lambda Managed
    Instances' PerExecutionEnvironmentMaxConcurrency): a waiting request holds one for its whole answer, since a
    provider's stream is read on a worker thread; None: WORKER_THREADS."""
    if concurrency_per_environment is None:
        return WORKER_THREADS
    return concurrency_per_environment + SPARE_WORKER_THREADS


_workers: ThreadPoolExecutor | None = None


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work on a worker thread; it sees the request's context (its record, its log keys). Once begun
    the work runs to its end, also when the awaiting task is cancelled (the cancellation is raised then).

    A plain executor rather than anyio's `to_thread.run_sync`, whose capacity limiter, backend lookup and task
    bookkeeping cost about as much again as the hand-off itself (docs/benchmarks.md)."""
    work = _submit(function, *args)
    try:
        return await asyncio.wrap_future(work)
    except asyncio.CancelledError:
        # Cancelling the awaited wrapper does not stop a thread that has begun: wait for it on a new one.
        await completed(asyncio.wrap_future(work))
        raise


def _submit(function: Callable[..., T], *args: Any) -> Future[T]:
    global _workers
    if _workers is None:
        # Imported at the first request: concurrent.futures loads its thread pool lazily, and a cold start need not.
        from concurrent.futures import ThreadPoolExecutor

        _workers = ThreadPoolExecutor(
            max_workers=worker_threads(get_settings().concurrency_per_environment), thread_name_prefix="gateway-worker"
        )
    return _workers.submit(contextvars.copy_context().run, function, *args)


async def completed(work: Awaitable[T]) -> T:
    """Await `work` to its end even when the request's task is cancelled meanwhile (the cancellation is raised
    once it is done): what settles a reservation or closes a provider stream must not be cut short."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


# How a surface answers a failure: the error in the shape of the API the caller speaks.
ErrorRenderer = Callable[[Request, GatewayError], Response]
# What the request's observer and its route pass each other in the ASGI scope, read once a request: the headers
# (lower-case names) and the caller the authorizer identified.
HEADERS_SCOPE_KEY, CALLER_SCOPE_KEY = "llm_gateway.headers", "llm_gateway.caller"


def posted(schema: type[M], use_case: Callable[[Gateway, M, str, ApiRequest], Reply]) -> Endpoint:
    """A POST route: the caller from the request context, the body validated into `schema` (and kept as sent),
    then `use_case` (`respond`)."""

    async def endpoint(request: Request) -> Response:
        headers = request.scope.get(HEADERS_SCOPE_KEY) or request.headers
        api = api_request(headers)
        request.scope[CALLER_SCOPE_KEY] = api.caller
        body, text = parse_body(await request.body(), headers.get("content-type"), schema)
        return await respond(lambda: use_case(get_gateway(), body, text, api))

    return endpoint


def serves_one_request_at_a_time() -> bool:
    """Whether this process is a Lambda environment on demand (one request at a time): Lambda sets
    AWS_LAMBDA_FUNCTION_NAME in every environment, AWS_LAMBDA_MAX_CONCURRENCY only on Lambda Managed Instances, which
    take many at once (aws/aws-lambda-go#600). The local gateway is neither."""
    on_lambda, concurrency = environment_variable("AWS_LAMBDA_FUNCTION_NAME"), "AWS_LAMBDA_MAX_CONCURRENCY"
    return bool(on_lambda) and not environment_variable(concurrency)


async def respond(use_case: Callable[[], Reply]) -> Response:
    """Run a gateway use case and answer with its reply: the JSON document, or the stream of SSE frames delivered
    as they are produced. Where requests come one at a time (Lambda on demand) the use case runs on the event loop's
    thread, its finishing work (the usage settlement) once the answer is written: a hand-off to a worker thread and
    back costs about 100 µs of CPU (docs/benchmarks.md) and buys nothing there; a stream's frames are still pulled on
    worker threads, so keep-alives and hang-ups are seen while the model is silent. Elsewhere a worker thread runs the
    use case, hands its reply to the event loop, then runs the finishing work while the loop writes the answer."""
    if serves_one_request_at_a_time():
        # In a context of its own, as on a worker thread: what the use case sets stays the use case's.
        context = contextvars.copy_context()
        reply = context.run(_traced, use_case)
        finish = reply.finish
        if finish is not None and isinstance(reply.body, str):
            return FinishingResponse(_whole(reply, reply.body), lambda: context.run(finish))
        return _answer(reply)
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[Reply] = loop.create_future()

    def work() -> None:
        try:
            reply = _traced(use_case)
        except BaseException as error:
            loop.call_soon_threadsafe(_fail, answered, error)
            return
        loop.call_soon_threadsafe(_resolve, answered, reply)
        if reply.finish is not None and isinstance(reply.body, str):
            reply.finish()

    job = asyncio.wrap_future(_submit(work))
    try:
        reply = await answered
    except asyncio.CancelledError:
        # Run to its end even so: the use case may have reserved budget, and what it returns (and its finishing
        # work) is what releases it (the request's leftover settlements, RequestRecord.unsettled).
        await completed(job)
        raise
    if reply.finish is not None and isinstance(reply.body, str):
        return FinishingResponse(_whole(reply, reply.body), job)
    return _answer(reply)


def _whole(reply: Reply, body: str) -> Response:
    return Response(utf8(body), status_code=reply.status, media_type=reply.content_type, headers=reply.headers)


def _answer(reply: Reply) -> Response:
    """The response of a reply whose finishing work, if any, is the stream's own."""
    if isinstance(reply.body, str):
        return _whole(reply, reply.body)
    current_request().streamed = True
    return EventStreamResponse(reply.body, headers=reply.headers, keepalive=get_settings().stream_keepalive_seconds)


def _resolve(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _traced(use_case: Callable[[], Reply]) -> Reply:
    tracer = get_tracer()
    if tracer is None:
        return use_case()
    record = current_request()
    with tracer.provider.in_subsegment(f"## {record.method} {record.route}") as subsegment:
        reply = use_case()
        subsegment.put_annotation("model", record.model)
        subsegment.put_annotation("plan", record.plan)
        return reply


class FinishingResponse(Response):
    """A whole answer written, then the end of the response once the reply's finishing work (the usage record) is
    done, under way on the worker thread that produced the reply (an awaitable) or run here (a callable): the caller
    has the answer one DynamoDB round trip earlier, and the invocation still ends only once the record is written."""

    def __init__(self, response: Response, finishing: Awaitable[None] | Callable[[], None]) -> None:
        self.response = response
        self.finishing = finishing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.response
        try:
            await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": response.body, "more_body": True})
        finally:
            # Also when the caller is already gone: the answer was produced and is recorded.
            if callable(self.finishing):
                self.finishing()
            else:
                await completed(self.finishing)
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class EventStreamResponse(Response):
    """A text/event-stream answer written frame by frame as the iterator yields them.

    The iterator is pulled on a worker thread (providers block on their sockets). When it stays silent for
    `keepalive` seconds a comment frame goes out. When the client goes away the iterator is closed after the
    frame being produced, which stops reading from the provider and settles the request's usage.
    """

    media_type = EVENT_STREAM

    def __init__(self, frames: Iterator[str], *, headers: dict[str, str], keepalive: float) -> None:
        self.frames = frames
        self.keepalive = keepalive
        self.status_code = 200
        self.background = None
        self.init_headers({**headers, "Cache-Control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        complete = await deliver(self.frames, receive, send, self.keepalive, start=start)
        if not complete:
            current_request().client_disconnected = True
            logger.info("client disconnected before the stream ended")


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def deliver(
    frames: Iterator[str], receive: Receive, send: Send, keepalive: float, *, start: Message | None = None
) -> bool:
    """Send the response's `start`, then each frame as soon as it is produced; True when every frame was written
    (the client may close the connection once it has the last one), False when the client left before.

    However it ends (the last frame, a client gone, a server that raises writing to a closed connection, a
    cancelled task), `frames` is closed once the frame being produced is out, which stops the provider."""
    gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnect(receive))
    pulling: asyncio.Future[str | None] | None = None
    complete = False
    try:
        if start is not None:
            await send(start)
        while True:
            if pulling is None:
                pulling = asyncio.ensure_future(run_blocking(next, frames, None))
            done, _ = await asyncio.wait({pulling, gone}, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED)
            if pulling in done:
                frame = pulling.result()
                pulling = None
                if frame is None:
                    complete = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    break
                await send({"type": "http.response.body", "body": utf8(frame), "more_body": True})
            elif gone in done:
                break
            else:
                await send({"type": "http.response.body", "body": KEEPALIVE_FRAME, "more_body": True})
    except OSError:
        # The server could not write: the client is gone.
        pass
    finally:
        gone.cancel()
        ended = await completed(_close_frames(frames, pulling))
        complete = complete or ended
    return complete


async def _close_frames(frames: Iterator[str], pulling: asyncio.Future[str | None] | None) -> bool:
    """Close `frames` once the frame being produced on a worker thread is out (a generator cannot be closed while
    it runs); True when that pull found the stream's end (every frame before it was written)."""
    ended = False
    if pulling is not None:
        await asyncio.wait({pulling})
        ended = not pulling.cancelled() and pulling.exception() is None and pulling.result() is None
    close = getattr(frames, "close", None)
    if close is not None:
        await run_blocking(close)
    return ended
