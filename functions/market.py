"""Market data: quotes, history, fundamentals, news, indicators. Every datum carries provenance."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.schemas.market import (
    Fundamentals,
    History,
    HistoryQuery,
    IndicatorsQuery,
    IndicatorsResponse,
    News,
    NewsQuery,
    Quote,
    QuoteBatch,
    QuotesQuery,
    SymbolPath,
)

bp = func.Blueprint()
MARKET_ERRORS = (404, 502, 503)
TAGS = ("market",)


@route(bp, "v1/market/quotes", query=QuotesQuery, response=QuoteBatch, rate_group="market", tags=TAGS, errors=(502, 503))
async def get_quotes(req, ctx: RequestContext):
    """Quotes for up to 50 symbols; a symbol that fails is reported in place, the batch still answers."""
    return QuoteBatch(items=await ctx.run(ctx.services.market.get_quotes, ctx.query.symbol_list))


@route(bp, "v1/market/{symbol}/quote", path=SymbolPath, response=Quote, rate_group="market", tags=TAGS, errors=MARKET_ERRORS)
async def get_quote(req, ctx: RequestContext):
    """Latest quote, with provenance (source, as_of, fetched_at, cache_age_s, stale)."""
    return await ctx.run(ctx.services.market.get_quote, ctx.path.symbol)


@route(bp, "v1/market/{symbol}/history", path=SymbolPath, query=HistoryQuery, response=History, rate_group="market",
       tags=TAGS, errors=MARKET_ERRORS)
async def get_history(req, ctx: RequestContext):
    """OHLCV bars for a period (or start/end) at an interval, from one provider."""
    q = ctx.query
    return await ctx.run(ctx.services.market.get_history, ctx.path.symbol, q.period, q.interval, q.start, q.end)


@route(bp, "v1/market/{symbol}/fundamentals", path=SymbolPath, response=Fundamentals, rate_group="market", tags=TAGS,
       errors=MARKET_ERRORS)
async def get_fundamentals(req, ctx: RequestContext):
    """Company profile and valuation figures."""
    return await ctx.run(ctx.services.market.get_fundamentals, ctx.path.symbol)


@route(bp, "v1/market/{symbol}/news", path=SymbolPath, query=NewsQuery, response=News, rate_group="market", tags=TAGS,
       errors=MARKET_ERRORS)
async def get_news(req, ctx: RequestContext):
    """Recent news items about the symbol."""
    return await ctx.run(ctx.services.market.get_news, ctx.path.symbol, ctx.query.limit)


@route(bp, "v1/market/{symbol}/indicators", path=SymbolPath, query=IndicatorsQuery, response=IndicatorsResponse,
       rate_group="market", tags=TAGS, errors=MARKET_ERRORS)
async def get_indicators(req, ctx: RequestContext):
    """Technical indicators computed locally from daily history (SMA, EMA, RSI, MACD, Bollinger, ATR)."""
    series = await ctx.run(ctx.services.market.get_indicators, ctx.path.symbol, ctx.query.name_list)
    return IndicatorsResponse(symbol=ctx.path.symbol, indicators=series)
