"""Workspaces: CRUD (names unique per owner) and an NDJSON stream of all of them."""

import logging
from typing import Any, Iterator

import azure.functions as func
import orjson
from starlette.responses import StreamingResponse

from shared.http import RequestContext, route
from shared.schemas.workspaces import WorkspaceCreate, WorkspaceListQuery, WorkspacePage, WorkspacePublic, WorkspaceUpdate

bp = func.Blueprint()
TAGS = ("workspaces",)
NDJSON = "application/x-ndjson"
log = logging.getLogger("stockagent.http")


def _ndjson(first: list[dict[str, Any]] | None, rest: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    """One JSON object per line; a failure after the headers went out ends the stream with an `error` line."""
    if first is None:
        return
    yield b"".join(orjson.dumps(item) + b"\n" for item in first)
    try:
        for chunk in rest:
            yield b"".join(orjson.dumps(item) + b"\n" for item in chunk)
    except Exception:  # the status line is sent: the only way left to report is in-band
        log.exception("workspace stream interrupted")
        yield orjson.dumps({"error": {"title": "Stream interrupted", "status": 500}}) + b"\n"


@route(bp, "v1/workspaces", query=WorkspaceListQuery, response=WorkspacePage, tags=TAGS, errors=(400, 401, 422, 503),
       stream_media_type=NDJSON)
async def list_workspaces(req, ctx: RequestContext):
    """The caller's workspaces, newest first; `stream=true` streams all of them as NDJSON."""
    service = ctx.services.workspaces
    if ctx.query.stream:
        chunks = service.stream_workspaces(ctx.user.id)
        first = await ctx.run(next, chunks, None)  # errors before the first byte are still problem responses
        return StreamingResponse(_ndjson(first, chunks), media_type=NDJSON)
    return await ctx.run(service.list_workspaces, ctx.user.id, limit=ctx.query.limit, cursor=ctx.query.cursor)


@route(bp, "v1/workspaces", name="create_workspace", methods=["POST"], body=WorkspaceCreate, response=WorkspacePublic,
       status=201, rate_group="write", tags=TAGS, errors=(401, 409, 422, 503),
       location=lambda r: f"/api/v1/workspaces/{r.id}")
async def create_workspace(req, ctx: RequestContext) -> WorkspacePublic:
    """Create a workspace owned by the caller."""
    return await ctx.run(ctx.services.workspaces.create_workspace, ctx.user.id, ctx.body)


@route(bp, "v1/workspaces/{workspace_id}", response=WorkspacePublic, tags=TAGS, errors=(401, 404, 503))
async def get_workspace(req, ctx: RequestContext) -> WorkspacePublic:
    """One of the caller's workspaces."""
    return await ctx.run(ctx.services.workspaces.get_workspace, ctx.user.id, req.path_params["workspace_id"])


@route(bp, "v1/workspaces/{workspace_id}", name="update_workspace", methods=["PATCH"], body=WorkspaceUpdate,
       response=WorkspacePublic, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503))
async def update_workspace(req, ctx: RequestContext) -> WorkspacePublic:
    """Update a workspace; `If-Match` makes it conditional (412 when stale)."""
    return await ctx.run(ctx.services.workspaces.update_workspace, ctx.user.id, req.path_params["workspace_id"],
                         ctx.body, ctx.if_match)


@route(bp, "v1/workspaces/{workspace_id}", name="delete_workspace", methods=["DELETE"], status=204,
       rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 503))
async def delete_workspace(req, ctx: RequestContext) -> None:
    """Delete a workspace."""
    await ctx.run(ctx.services.workspaces.delete_workspace, ctx.user.id, req.path_params["workspace_id"], ctx.if_match)
