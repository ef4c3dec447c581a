"""Workspaces: CRUD (names unique per owner) and an NDJSON stream of all of them."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.http.streaming import NDJSON, ndjson_response
from shared.schemas.workspaces import WorkspaceCreate, WorkspaceListQuery, WorkspacePage, WorkspacePublic, WorkspaceUpdate

bp = func.Blueprint()
TAGS = ("workspaces",)


def _current(ctx: RequestContext) -> WorkspacePublic:
    return ctx.services.workspaces.get_workspace(ctx.user.id, ctx.request.path_params["workspace_id"])


@route(bp, "v1/workspaces", query=WorkspaceListQuery, response=WorkspacePage, tags=TAGS, errors=(400, 401, 422, 503),
       stream_media_type=NDJSON)
async def list_workspaces(req, ctx: RequestContext):
    """The caller's workspaces, newest first; `stream=true` streams them as NDJSON: all of them, or `limit`
    when given (after `cursor` when given)."""
    service, q = ctx.services.workspaces, ctx.query
    if q.stream:
        limit = q.limit if "limit" in q.model_fields_set else None
        return await ndjson_response(ctx, service.stream_workspaces(ctx.user.id, limit=limit, cursor=q.cursor))
    return await ctx.run(service.list_workspaces, ctx.user.id, limit=q.limit, cursor=q.cursor)


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
       response=WorkspacePublic, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503), current=_current)
async def update_workspace(req, ctx: RequestContext) -> WorkspacePublic:
    """Update a workspace; `If-Match` makes it conditional (412 when stale)."""
    return await ctx.run(ctx.services.workspaces.update_workspace, ctx.user.id, req.path_params["workspace_id"],
                         ctx.body, ctx.expected_version)


@route(bp, "v1/workspaces/{workspace_id}", name="delete_workspace", methods=["DELETE"], status=204,
       rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 503), current=_current)
async def delete_workspace(req, ctx: RequestContext) -> None:
    """Delete a workspace."""
    await ctx.run(ctx.services.workspaces.delete_workspace, ctx.user.id, req.path_params["workspace_id"], ctx.expected_version)
