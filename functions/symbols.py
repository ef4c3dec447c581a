"""Symbols: search the seeded catalogue (market search as fallback) and look one up."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.schemas.symbols import SymbolPage, SymbolPath, SymbolPublic, SymbolSearchQuery

bp = func.Blueprint()
TAGS = ("symbols",)


@route(bp, "v1/symbols", name="symbols_search", query=SymbolSearchQuery, response=SymbolPage, tags=TAGS, errors=(400, 401, 422, 502, 503))
async def search_symbols(req, ctx: RequestContext) -> SymbolPage:
    """Search by ticker prefix or company name (`q`); without `q`, browse the catalogue page by page."""
    q = ctx.query
    return await ctx.run(ctx.services.symbols.search_symbols, q.q, limit=q.limit, cursor=q.cursor)


@route(bp, "v1/symbols/{symbol}", name="symbols_get", path=SymbolPath, response=SymbolPublic, tags=TAGS, errors=(401, 404, 422, 502, 503))
async def get_symbol(req, ctx: RequestContext) -> SymbolPublic:
    """Metadata of one symbol (case-insensitive); 404 when unknown."""
    return await ctx.run(ctx.services.symbols.get_symbol, ctx.path.symbol)
