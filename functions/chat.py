"""Chat with the StockAgent: JSON or Server-Sent Events, persisted conversations."""

import asyncio
import threading
from typing import Any, AsyncIterator, Iterator

import azure.functions as func
import orjson
from starlette.responses import StreamingResponse

from shared.http import RequestContext, openapi, route
from shared.http.schemas import PageQuery
from shared.schemas.chat import ChatDetail, ChatPage, ChatPath, ChatRequest, ChatResponse

bp = func.Blueprint()
TAGS = ("chat",)


def _document_configured_providers(doc: dict, settings) -> None:
    """`provider` accepts the configured providers only: say so in the document."""
    from shared.ai import ModelFactory

    configured = ModelFactory(settings).configured_providers()
    prop = doc["components"]["schemas"]["ChatRequest"]["properties"]["provider"]
    prop.clear()
    prop.update({"anyOf": [{"enum": configured}, {"type": "null"}], "default": None,
                 "description": "A configured model provider; omit for your preference or the default"})


openapi.CUSTOMIZERS.append(_document_configured_providers)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
_DONE = object()


def sse_frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _events_in_thread(ctx: RequestContext, events: Iterator[Any], stop: threading.Event) -> AsyncIterator[Any]:
    """Drive the synchronous event iterator in a worker thread; the event loop never blocks on the model."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def pump() -> None:
        try:
            for event in events:
                loop.call_soon_threadsafe(queue.put_nowait, event)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the event loop, which turns it into an error event
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # stops the model call when the client went away
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    ctx.core.executor.submit(pump)
    while True:
        item = await queue.get()
        if item is _DONE:
            return
        yield item


def _error_body(ctx: RequestContext, data: dict) -> dict:
    return {**data, "instance": ctx.request.url.path, "request_id": ctx.request_id, "error": data.get("title")}


def stream_response(ctx: RequestContext, events: Iterator[Any]) -> StreamingResponse:
    heartbeat = ctx.settings.chat.heartbeat_s
    stop = threading.Event()

    async def body() -> AsyncIterator[bytes]:
        source = _events_in_thread(ctx, events, stop).__aiter__()
        pending: asyncio.Task | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(source.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=heartbeat)
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
                    yield sse_frame("error", _error_body(ctx, {"type": "/problems/internal-error", "title": "Internal server error",
                                                               "status": 500, "detail": "The stream failed unexpectedly"}))
                    return
                data = ev.data
                if ev.event == "meta":
                    data = {**data, "request_id": ctx.request_id}
                elif ev.event == "error":
                    data = _error_body(ctx, data)
                yield sse_frame(ev.event, data)
        finally:
            stop.set()
            if pending is not None:
                pending.cancel()

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


async def _start(ctx: RequestContext) -> Iterator[Any]:
    b = ctx.body
    # Budget, conversation ownership and provider are checked here: they answer as problems, not stream events.
    return await ctx.run(ctx.services.chat.chat_stream, ctx.user.id, b.message, b.conversation_id, b.provider, b.temperature)


@route(bp, "v1/chat", methods=["POST"], body=ChatRequest, response=ChatResponse, rate_group="chat", tags=TAGS,
       errors=(404, 429, 502), stream_media_type="text/event-stream")
async def chat(req, ctx: RequestContext):
    """Ask the StockAgent; the answer cites its sources. With `stream: true` it streams like /chat/stream."""
    if ctx.body.stream:
        return stream_response(ctx, await _start(ctx))
    b = ctx.body
    return await ctx.run(ctx.services.chat.chat, ctx.user.id, b.message, b.conversation_id, b.provider, b.temperature)


@route(bp, "v1/chat/stream", methods=["POST"], body=ChatRequest, rate_group="chat", tags=TAGS,
       errors=(404, 429, 502), stream_media_type="text/event-stream")
async def chat_stream(req, ctx: RequestContext):
    """Stream the answer as Server-Sent Events.

    Events: `meta`, `tool_call`, `tool_result`, `delta`, `sources`, `usage`, `error` (an RFC 9457 body), `done`;
    a `: keep-alive` comment every 15 s.
    """
    return stream_response(ctx, await _start(ctx))


@route(bp, "v1/chats", query=PageQuery, response=ChatPage, tags=TAGS)
async def list_chats(req, ctx: RequestContext):
    """The caller's conversations, newest first."""
    items, next_cursor = await ctx.run(ctx.services.chat.store.list, ctx.user.id, limit=ctx.query.limit, cursor=ctx.query.cursor)
    return ChatPage(items=items, next_cursor=next_cursor)


@route(bp, "v1/chats/{chat_id}", path=ChatPath, response=ChatDetail, tags=TAGS, errors=(404,))
async def get_chat(req, ctx: RequestContext):
    """One conversation with its messages, tool calls, sources and usage."""
    return await ctx.run(ctx.services.chat.store.get, ctx.user.id, ctx.path.chat_id)


@route(bp, "v1/chats/{chat_id}", methods=["DELETE"], name="delete_chat", path=ChatPath, status=204, rate_group="write",
       tags=TAGS, errors=(404, 412))
async def delete_chat(req, ctx: RequestContext):
    """Delete a conversation."""
    await ctx.run(ctx.services.chat.store.delete, ctx.user.id, ctx.path.chat_id)
