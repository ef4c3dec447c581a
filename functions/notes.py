"""Notes: markdown with tags and an optional symbol; filter by tag or symbol."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.schemas.notes import NoteCreate, NoteListQuery, NotePage, NotePublic, NoteUpdate

bp = func.Blueprint()
TAGS = ("notes",)


def _current(ctx: RequestContext) -> NotePublic:
    return ctx.services.notes.get_note(ctx.user.id, ctx.request.path_params["note_id"])


@route(bp, "v1/notes", query=NoteListQuery, response=NotePage, tags=TAGS, errors=(400, 401, 422, 503))
async def list_notes(req, ctx: RequestContext) -> NotePage:
    """The caller's notes, newest first; `tag` and `symbol` filter."""
    q = ctx.query
    return await ctx.run(ctx.services.notes.list_notes, ctx.user.id, tag=q.tag, symbol=q.symbol, limit=q.limit, cursor=q.cursor)


@route(bp, "v1/notes", name="create_note", methods=["POST"], body=NoteCreate, response=NotePublic, status=201,
       rate_group="write", tags=TAGS, errors=(401, 422, 503), location=lambda r: f"/api/v1/notes/{r.id}")
async def create_note(req, ctx: RequestContext) -> NotePublic:
    """Create a note."""
    return await ctx.run(ctx.services.notes.create_note, ctx.user.id, ctx.body)


@route(bp, "v1/notes/{note_id}", response=NotePublic, tags=TAGS, errors=(401, 404, 503))
async def get_note(req, ctx: RequestContext) -> NotePublic:
    """One of the caller's notes."""
    return await ctx.run(ctx.services.notes.get_note, ctx.user.id, req.path_params["note_id"])


@route(bp, "v1/notes/{note_id}", name="update_note", methods=["PATCH"], body=NoteUpdate, response=NotePublic,
       rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503), current=_current)
async def update_note(req, ctx: RequestContext) -> NotePublic:
    """Update a note."""
    return await ctx.run(ctx.services.notes.update_note, ctx.user.id, req.path_params["note_id"], ctx.body, ctx.expected_version)


@route(bp, "v1/notes/{note_id}", name="delete_note", methods=["DELETE"], status=204, rate_group="write", tags=TAGS,
       errors=(401, 404, 409, 412, 503), current=_current)
async def delete_note(req, ctx: RequestContext) -> None:
    """Delete a note."""
    await ctx.run(ctx.services.notes.delete_note, ctx.user.id, req.path_params["note_id"], ctx.expected_version)
