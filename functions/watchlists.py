"""Watchlists: CRUD and symbol membership (symbols must exist)."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.http.schemas import PageQuery
from shared.schemas.symbols import SymbolPath
from shared.schemas.watchlists import (
    WatchlistCreate, WatchlistPage, WatchlistPublic, WatchlistSymbolAdd, WatchlistUpdate,
)

bp = func.Blueprint()
TAGS = ("watchlists",)


def _current(ctx: RequestContext) -> WatchlistPublic:
    return ctx.services.watchlists.get_watchlist(ctx.user.id, ctx.request.path_params["watchlist_id"])


def _current_entry(ctx: RequestContext) -> WatchlistPublic:
    return ctx.services.watchlists.get_symbol_entry(ctx.user.id, ctx.request.path_params["watchlist_id"], ctx.path.symbol)


@route(bp, "v1/watchlists", query=PageQuery, response=WatchlistPage, tags=TAGS, errors=(400, 401, 422, 503))
async def list_watchlists(req, ctx: RequestContext) -> WatchlistPage:
    """The caller's watchlists, newest first."""
    return await ctx.run(ctx.services.watchlists.list_watchlists, ctx.user.id, limit=ctx.query.limit, cursor=ctx.query.cursor)


@route(bp, "v1/watchlists", name="create_watchlist", methods=["POST"], body=WatchlistCreate, response=WatchlistPublic,
       status=201, rate_group="write", tags=TAGS, errors=(401, 409, 422, 502, 503),
       location=lambda r: f"/api/v1/watchlists/{r.id}")
async def create_watchlist(req, ctx: RequestContext) -> WatchlistPublic:
    """Create a watchlist; every symbol must be known (422 otherwise)."""
    return await ctx.run(ctx.services.watchlists.create_watchlist, ctx.user.id, ctx.body)


@route(bp, "v1/watchlists/{watchlist_id}", response=WatchlistPublic, tags=TAGS, errors=(401, 404, 503))
async def get_watchlist(req, ctx: RequestContext) -> WatchlistPublic:
    """One of the caller's watchlists."""
    return await ctx.run(ctx.services.watchlists.get_watchlist, ctx.user.id, req.path_params["watchlist_id"])


@route(bp, "v1/watchlists/{watchlist_id}", name="update_watchlist", methods=["PATCH"], body=WatchlistUpdate,
       response=WatchlistPublic, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 502, 503),
       current=_current)
async def update_watchlist(req, ctx: RequestContext) -> WatchlistPublic:
    """Update a watchlist (`symbols` replaces the list)."""
    return await ctx.run(ctx.services.watchlists.update_watchlist, ctx.user.id, req.path_params["watchlist_id"],
                         ctx.body, ctx.expected_version)


@route(bp, "v1/watchlists/{watchlist_id}", name="delete_watchlist", methods=["DELETE"], status=204,
       rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 503), current=_current)
async def delete_watchlist(req, ctx: RequestContext) -> None:
    """Delete a watchlist."""
    await ctx.run(ctx.services.watchlists.delete_watchlist, ctx.user.id, req.path_params["watchlist_id"], ctx.expected_version)


@route(bp, "v1/watchlists/{watchlist_id}/symbols", name="add_watchlist_symbol", methods=["POST"],
       body=WatchlistSymbolAdd, response=WatchlistPublic, status=201, rate_group="write", tags=TAGS,
       errors=(401, 404, 409, 422, 502, 503))
async def add_watchlist_symbol(req, ctx: RequestContext) -> WatchlistPublic:
    """Add a known symbol to a watchlist (idempotent); returns the watchlist."""
    watchlist_id = req.path_params["watchlist_id"]
    result = await ctx.run(ctx.services.watchlists.add_symbol, ctx.user.id, watchlist_id, ctx.body.symbol)
    ctx.response_headers["Location"] = f"/api/v1/watchlists/{watchlist_id}"  # the resource that changed
    return result


@route(bp, "v1/watchlists/{watchlist_id}/symbols/{symbol}", name="remove_watchlist_symbol", methods=["DELETE"],
       path=SymbolPath, status=204, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503),
       current=_current_entry)
async def remove_watchlist_symbol(req, ctx: RequestContext) -> None:
    """Remove a symbol from a watchlist (404 when it is not in it); `If-Match` names the watchlist's ETag."""
    await ctx.run(ctx.services.watchlists.remove_symbol, ctx.user.id, req.path_params["watchlist_id"], ctx.path.symbol,
                  ctx.expected_version)
