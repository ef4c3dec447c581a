"""Investment ideas: CRUD; filter by status, symbol or tag."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.schemas.notes import IdeaCreate, IdeaListQuery, IdeaPage, IdeaPublic, IdeaUpdate

bp = func.Blueprint()
TAGS = ("ideas",)


def _current(ctx: RequestContext) -> IdeaPublic:
    return ctx.services.ideas.get_idea(ctx.user.id, ctx.request.path_params["idea_id"])


@route(bp, "v1/ideas", query=IdeaListQuery, response=IdeaPage, tags=TAGS, errors=(400, 401, 422, 503))
async def list_ideas(req, ctx: RequestContext) -> IdeaPage:
    """The caller's investment ideas, newest first."""
    q = ctx.query
    return await ctx.run(ctx.services.ideas.list_ideas, ctx.user.id, status=q.status, symbol=q.symbol, tag=q.tag,
                         limit=q.limit, cursor=q.cursor)


@route(bp, "v1/ideas", name="create_idea", methods=["POST"], body=IdeaCreate, response=IdeaPublic, status=201,
       rate_group="write", tags=TAGS, errors=(401, 422, 503), location=lambda r: f"/api/v1/ideas/{r.id}")
async def create_idea(req, ctx: RequestContext) -> IdeaPublic:
    """Create an investment idea."""
    return await ctx.run(ctx.services.ideas.create_idea, ctx.user.id, ctx.body)


@route(bp, "v1/ideas/{idea_id}", response=IdeaPublic, tags=TAGS, errors=(401, 404, 503))
async def get_idea(req, ctx: RequestContext) -> IdeaPublic:
    """One of the caller's ideas."""
    return await ctx.run(ctx.services.ideas.get_idea, ctx.user.id, req.path_params["idea_id"])


@route(bp, "v1/ideas/{idea_id}", name="update_idea", methods=["PATCH"], body=IdeaUpdate, response=IdeaPublic,
       rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503), current=_current)
async def update_idea(req, ctx: RequestContext) -> IdeaPublic:
    """Update an idea."""
    return await ctx.run(ctx.services.ideas.update_idea, ctx.user.id, req.path_params["idea_id"], ctx.body, ctx.expected_version)


@route(bp, "v1/ideas/{idea_id}", name="delete_idea", methods=["DELETE"], status=204, rate_group="write", tags=TAGS,
       errors=(401, 404, 409, 412, 503), current=_current)
async def delete_idea(req, ctx: RequestContext) -> None:
    """Delete an idea."""
    await ctx.run(ctx.services.ideas.delete_idea, ctx.user.id, req.path_params["idea_id"], ctx.expected_version)
