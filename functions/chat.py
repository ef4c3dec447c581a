"""Chat with the StockAgent: JSON or Server-Sent Events, persisted conversations."""

from typing import Any, Iterator

import azure.functions as func
from starlette.requests import Request
from starlette.responses import StreamingResponse

from shared.http import RequestContext, openapi, route
from shared.http.streaming import capped_sse_response
from shared.http.schemas import PageQuery
from shared.schemas.chat import ChatDetail, ChatMessagePage, ChatPage, ChatPath, ChatRequest, ChatResponse

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
async def _start(ctx: RequestContext) -> Iterator[Any]:
    b = ctx.body
    # Budget, conversation ownership and provider are checked here: they answer as problems, not stream events.
    return await ctx.run(ctx.services.chat.chat_stream, ctx.user.id, b.message, b.conversation_id, b.provider, b.temperature)


@route(bp, "v1/chat", methods=["POST"], body=ChatRequest, response=ChatResponse, rate_group="chat", tags=TAGS,
       errors=(404, 422, 429, 502, 503), stream_media_type="text/event-stream")
async def chat(req: Request, ctx: RequestContext) -> StreamingResponse | dict[str, Any]:
    """Ask the StockAgent; the answer cites its sources. With `stream: true` it streams like /chat/stream.

    Turns in progress are capped per user (429) and per instance (503), both with Retry-After; a conversation
    that reached its message cap answers 422 `conversation-full`: start a new one.
    """
    if ctx.body.stream:
        return await capped_sse_response(ctx, lambda: _start(ctx), heartbeat_s=ctx.settings.chat.heartbeat_s)
    b = ctx.body
    with ctx.core.stream_slots.acquire(ctx.user.id):
        return await ctx.core.run_turn(ctx.services.chat.chat, ctx.user.id, b.message, b.conversation_id, b.provider, b.temperature)


@route(bp, "v1/chat/stream", methods=["POST"], body=ChatRequest, rate_group="chat", tags=TAGS,
       errors=(404, 422, 429, 502, 503), stream_media_type="text/event-stream")
async def chat_stream(req: Request, ctx: RequestContext) -> StreamingResponse:
    """Stream the answer as Server-Sent Events.

    Events: `meta`, `tool_call`, `tool_result`, `delta`, `sources`, `usage`, `error` (an RFC 9457 body), `done`;
    a `: keep-alive` comment every 15 s. Streams in progress are capped per user (429) and per instance (503),
    both answered at once with Retry-After before the stream starts.
    """
    return await capped_sse_response(ctx, lambda: _start(ctx), heartbeat_s=ctx.settings.chat.heartbeat_s)


@route(bp, "v1/chats", query=PageQuery, response=ChatPage, tags=TAGS)
async def list_chats(req, ctx: RequestContext):
    """The caller's conversations, newest first."""
    items, next_cursor = await ctx.run(ctx.services.chat.store.list, ctx.user.id, limit=ctx.query.limit, cursor=ctx.query.cursor)
    return ChatPage(items=items, next_cursor=next_cursor)


@route(bp, "v1/chats/{chat_id}", path=ChatPath, response=ChatDetail, tags=TAGS, errors=(404,))
async def get_chat(req: Request, ctx: RequestContext) -> dict[str, Any]:
    """One conversation with its messages, tool calls, sources and usage."""
    return await ctx.run(ctx.services.chat.store.detail, ctx.user.id, ctx.path.chat_id)


@route(bp, "v1/chats/{chat_id}/messages", path=ChatPath, query=PageQuery, response=ChatMessagePage, tags=TAGS,
       errors=(404,))
async def list_chat_messages(req: Request, ctx: RequestContext) -> ChatMessagePage:
    """The conversation's messages in order (oldest first), a page at a time."""
    items, next_cursor = await ctx.run(ctx.services.chat.store.messages, ctx.user.id, ctx.path.chat_id,
                                       limit=ctx.query.limit, cursor=ctx.query.cursor)
    return ChatMessagePage(items=items, next_cursor=next_cursor)


def _current(ctx: RequestContext) -> dict[str, Any]:
    return ctx.services.chat.store.record(ctx.user.id, ctx.path.chat_id)


@route(bp, "v1/chats/{chat_id}", methods=["DELETE"], name="delete_chat", path=ChatPath, status=204, rate_group="write",
       tags=TAGS, errors=(404, 409, 412), current=_current)
async def delete_chat(req, ctx: RequestContext):
    """Delete a conversation."""
    await ctx.run(ctx.services.chat.store.delete, ctx.user.id, ctx.path.chat_id, ctx.expected_version)
