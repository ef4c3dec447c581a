"""Streamed responses: Server-Sent Events and NDJSON, built the same way for every route.

Errors before the first byte are raised, so the pipeline still answers them as problems;
after the status line is sent the only way left to report is in-band: an `error` event
(SSE, an RFC 9457 body) or an `{"error": ...}` line (NDJSON), then the stream closes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterator

import orjson
from starlette.responses import StreamingResponse

from shared.errors import ApiError
from shared.http.problems import problem_body
from shared.logging import request_id_var

if TYPE_CHECKING:
    from shared.http.api import RequestContext

log = logging.getLogger("stockagent.http")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
NDJSON = "application/x-ndjson"
_DONE = object()


def sse_frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def problem_data(ctx: "RequestContext", data: dict) -> dict:
    """An in-band error event's data (already a problem: status, type, title, detail) as a full
    RFC 9457 body of this request."""
    return {**data, "instance": ctx.request.url.path, "request_id": ctx.request_id, "error": data.get("title")}


def _problem_of(ctx: "RequestContext", exc: BaseException) -> dict:
    """The RFC 9457 body for an exception raised after the headers went out (the same mapping as the pipeline)."""
    if not isinstance(exc, ApiError):
        log.error("stream failed", exc_info=exc)
        exc = ApiError("The stream failed unexpectedly")
    return problem_body(exc, instance=ctx.request.url.path, request_id=ctx.request_id)


def _pump_in_thread(ctx: "RequestContext", events: Iterator[Any], stop: threading.Event,
                    on_done: Callable[[], None] | None) -> asyncio.Queue[Any]:
    """Drive a synchronous iterator in a worker thread from now on, so the event loop never blocks on
    it; its items (or the exception it raised), then `_DONE`, arrive on the returned queue.

    When the client goes away `stop` is set: the worker stops after the event in hand and closes the
    iterator, which ends the upstream call (e.g. the model stream); then it calls `on_done()` (a
    stream's concurrency slot is free once its thread is).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def pump() -> None:
        try:
            for event in events:
                loop.call_soon_threadsafe(queue.put_nowait, event)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the event loop, which reports it in-band
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            try:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            finally:
                if on_done is not None:
                    on_done()
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    # Its own pool: a stream holds a thread for a whole model turn, short calls must not queue behind it.
    ctx.core.stream_executor.submit(contextvars.copy_context().run, pump)
    return queue


async def _drain(queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while (item := await queue.get()) is not _DONE:
        yield item


def sse_response(ctx: "RequestContext", events: Iterator[Any], *, heartbeat_s: float,
                 on_done: Callable[[], None] | None = None) -> StreamingResponse:
    """Stream `events` (objects with `.event` and `.data`) as SSE, with a keep-alive comment every `heartbeat_s`.

    A worker starts consuming `events` at once; `on_done()` runs when it has stopped (see `_pump_in_thread`)."""
    stop = threading.Event()
    queue = _pump_in_thread(ctx, events, stop, on_done)

    async def body() -> AsyncIterator[bytes]:
        rid_token = request_id_var.set(ctx.request_id)  # the pipeline's context ended with the headers
        source = _drain(queue).__aiter__()
        pending: asyncio.Future | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(source.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=heartbeat_s)
                if not done:
                    yield b": keep-alive\n\n"  # a comment line: proxies keep the connection open
                    continue
                try:
                    ev = pending.result()
                except StopAsyncIteration:
                    return
                finally:
                    pending = None
                if isinstance(ev, BaseException):
                    yield sse_frame("error", _problem_of(ctx, ev))
                    return
                data = ev.data
                if ev.event == "meta":
                    data = {**data, "request_id": ctx.request_id}
                elif ev.event == "error":
                    data = problem_data(ctx, data)
                yield sse_frame(ev.event, data)
        finally:
            stop.set()
            if pending is not None:
                pending.cancel()
            log.info("stream end", extra={"route": ctx.spec.public_path, "client_gone": stop.is_set()})
            request_id_var.reset(rid_token)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


async def capped_sse_response(ctx: "RequestContext", start: Callable[[], Awaitable[Iterator[Any]]], *,
                              heartbeat_s: float) -> StreamingResponse:
    """Admit a stream under the caller's and the instance's caps (`Core.stream_slots`: 429 or 503 at once,
    before anything starts), start it with `start()` (whose errors are still answered as problems) and
    stream it as SSE. The slot is freed when the stream's worker stops: completion, error, or the client
    going away (after the event in hand)."""
    slot = ctx.core.stream_slots.acquire(ctx.user.id)
    try:
        return sse_response(ctx, await start(), heartbeat_s=heartbeat_s, on_done=slot.release)
    except BaseException:
        slot.release()
        raise


async def ndjson_response(ctx: "RequestContext", chunks: Iterator[list[dict[str, Any]]]) -> StreamingResponse:
    """Stream chunks of JSON-safe dicts, one object per line. The first chunk is read before the
    headers go out, so a failure there (database down, ...) is still a problem response."""
    first = await ctx.run(next, chunks, None)

    def lines() -> Iterator[bytes]:
        if first is None:
            return
        yield b"".join(orjson.dumps(item) + b"\n" for item in first)
        try:
            for chunk in chunks:
                yield b"".join(orjson.dumps(item) + b"\n" for item in chunk)
        except Exception as exc:  # the status line is sent: report in-band, as an RFC 9457 body under "error"
            yield orjson.dumps({"error": _problem_of(ctx, exc)}) + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)
