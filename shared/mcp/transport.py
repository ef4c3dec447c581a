"""Streamable HTTP in stateless mode, through the SDK's own transport, behind our request pipeline.

Each POST gets a fresh `StreamableHTTPSessionManager(stateless=True)` around this request's server, so no
instance keeps protocol state (no session affinity; no `Mcp-Session-Id` is issued, GET and DELETE are 405) and
both protocol eras work: the initialize handshake (2025-11-25 and older, version negotiated by the SDK) and the
2026-07-28 per-request envelope. The SDK writes to an ASGI `send` we hold; its status and headers become our
handler's response, so the pipeline logs, counts and decorates it like any route's.

The body is JSON unless the response has something to stream: a 2026-07-28 request (the SDK answers JSON unless
the handler emits a notification or runs past its keep-alive interval) or a request asking for progress. A
streamed response relays the SDK's SSE frames as they come; the client leaving ends the SDK's request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, AsyncIterator

import orjson
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message

from shared.mcp.http import check_origin
from shared.mcp.server import build_server

if TYPE_CHECKING:
    from shared.http.api import RequestContext

log = logging.getLogger("stockagent.mcp")
Outbox = asyncio.Queue[Message | None]  # what the SDK sends; None once it is done


async def serve(ctx: "RequestContext") -> Response:
    """Answer one MCP POST (`ctx.body`: its raw bytes) for the signed-in caller."""
    check_origin(ctx.request, ctx.settings.http.cors)
    manager = StreamableHTTPSessionManager(app=build_server(ctx), stateless=True,
                                           json_response=not _streams(ctx.request, ctx.body))
    outbox: Outbox = asyncio.Queue()
    done = asyncio.Event()  # our response is finished, or its client left: the SDK's request sees a disconnect
    body_read = False

    async def receive() -> Message:
        nonlocal body_read
        if not body_read:
            body_read = True
            return {"type": "http.request", "body": ctx.body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def run() -> None:
        try:
            async with manager.run():
                await manager.handle_request(dict(ctx.request.scope), receive, outbox.put)
        finally:
            outbox.put_nowait(None)

    task = asyncio.create_task(run())
    start = await outbox.get()
    if start is None or start["type"] != "http.response.start":
        done.set()
        await task  # the SDK's failure, if any, goes to the pipeline (a 500 without detail)
        raise RuntimeError("the MCP transport answered without a response")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", []) if k.lower() != b"content-length"}
    if headers.get("content-type", "").startswith("text/event-stream"):
        return StreamingResponse(_relay(outbox, task, done), status_code=start["status"], headers=headers)
    body = b"".join([chunk async for chunk in _body(outbox)])
    done.set()
    await task
    return Response(body, status_code=start["status"], headers=headers)


def _streams(request: Request, body: bytes) -> bool:
    """Whether to let the response stream (SSE): only for a client that accepts it, and only when there may be
    something to stream (see the module docstring)."""
    if not check_accept_headers(request)[1]:
        return False
    if request.headers.get(MCP_PROTOCOL_VERSION_HEADER) in MODERN_PROTOCOL_VERSIONS:
        return True
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False  # the SDK answers the parse error
    return isinstance(message, dict) and progress_token_from_params(message.get("params")) is not None


async def _body(outbox: Outbox) -> AsyncIterator[bytes]:
    """The body chunks the SDK sends, until its last one."""
    while (message := await outbox.get()) is not None:
        if message["type"] != "http.response.body":
            continue
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body", False):
            return


async def _relay(outbox: Outbox, task: asyncio.Task[None], done: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        async for chunk in _body(outbox):
            yield chunk
    finally:
        done.set()
        if not task.done():  # the client left mid-stream: stop the SDK's request (and its handler)
            task.cancel()
        task.add_done_callback(_consume)


def _consume(task: asyncio.Task[None]) -> None:
    """Log a failure that came after the response had started (nobody else can see it)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("MCP transport failed after the response started", exc_info=exc)
