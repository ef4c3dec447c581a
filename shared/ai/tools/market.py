"""The market-data tools: quotes, history summary, fundamentals, news, indicators, symbol search.

Arguments use the market layer's own types (shared.market.args, shared.market.indicators), so a tool never
refuses what the API accepts or passes on what it rejects, and its JSON schema says exactly that. Every datum in a
result carries its provenance (source, as_of, stale).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.ai.tools.fencing import sanitize_text
from shared.ai.tools.registry import TOOLS, ToolArgs, ToolContext, ToolResult, read_now, source
from shared.ai.tools.text import fmt, pct_of_fraction, prov_line
from shared.market.args import MAX_BATCH, IntervalArg, PeriodArg, SearchQuery, Symbol
from shared.market.indicators import IndicatorName
from shared.market.models import Fundamentals, IndicatorPoint, Provenance, Quote, QuoteBatch, SymbolMatch

# -- arguments -----------------------------------------------------------------------------------------------


class SymbolArgs(ToolArgs):
    symbol: Symbol


class QuotesArgs(ToolArgs):
    symbols: list[Symbol] = Field(min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} ticker symbols")


class HistoryArgs(SymbolArgs):
    period: PeriodArg = "1mo"
    interval: IntervalArg = "1d"


class NewsArgs(SymbolArgs):
    limit: int = Field(5, ge=1, le=10, description="How many headlines")


class IndicatorArgs(SymbolArgs):
    names: list[IndicatorName] = Field(min_length=1, max_length=5, description="1 to 5 indicator names")


class SearchArgs(ToolArgs):
    query: SearchQuery
    limit: int = Field(5, ge=1, le=10, description="How many matches")


# -- results (what the model and MCP clients see) -------------------------------------------------------------


class HistorySummary(BaseModel):
    symbol: str
    period: str
    interval: str
    currency: str | None = None
    bars: int
    first_date: date | None = None
    last_date: date | None = None
    first_close: float | None = None
    last_close: float | None = None
    change_percent: float | None = None
    high: float | None = None
    low: float | None = None
    provenance: Provenance


class Headline(BaseModel):
    title: str
    publisher: str | None = None
    published_at: datetime | None = None
    summary: str | None = None
    url: str | None = None


class Headlines(BaseModel):
    symbol: str
    items: list[Headline]
    provenance: Provenance


class IndicatorDigest(BaseModel):
    name: str
    latest: IndicatorPoint | None = None
    recent: list[IndicatorPoint] = Field(description="The last five defined values, oldest first")
    provenance: Provenance


class Indicators(BaseModel):
    symbol: str
    indicators: list[IndicatorDigest]


class SymbolSearch(BaseModel):
    query: str
    matches: list[SymbolMatch]
    provenance: Provenance


# -- text forms ------------------------------------------------------------------------------------------------


def quote_text(d: dict[str, Any]) -> list[str]:
    s = f"- {d.get('symbol')} last price {fmt(d.get('price'))} {d.get('currency') or ''}".rstrip()
    if d.get("change") is not None:
        s += f", change {fmt(d['change'])}"
        if d.get("change_percent") is not None:
            s += f" ({fmt(d['change_percent'])}%)"
    if d.get("previous_close") is not None:
        s += f", previous close {fmt(d['previous_close'])}"
    if d.get("day_low") is not None and d.get("day_high") is not None:
        s += f", day range {fmt(d['day_low'])} to {fmt(d['day_high'])}"
    if d.get("volume") is not None:
        s += f", volume {fmt(d['volume'])}"
    if d.get("market_cap") is not None:
        s += f", market cap {fmt(d['market_cap'])}"
    return [s + prov_line(d.get("provenance")) + "."]


def quotes_text(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for item in d.get("items") or []:
        if "price" in item:
            out += quote_text(item)
        else:
            out.append(f"- {item.get('symbol')}: no quote, {item.get('title')}. {item.get('detail') or ''}".rstrip())
    return out or ["- No quotes returned."]


def history_text(d: dict[str, Any]) -> list[str]:
    if not d.get("bars"):
        return [f"- {d.get('symbol')}: no price history returned for {d.get('period')}{prov_line(d.get('provenance'))}."]
    s = (
        f"- {d['symbol']} over {d.get('period')} ({d['bars']} bars, {d.get('first_date')} to {d.get('last_date')}): "
        f"close moved from {fmt(d.get('first_close'))} to {fmt(d.get('last_close'))}"
    )
    if d.get("change_percent") is not None:
        s += f" ({fmt(d['change_percent'])}%)"
    s += f"; high {fmt(d.get('high'))}, low {fmt(d.get('low'))}"
    return [s + prov_line(d.get("provenance")) + "."]


def fundamentals_text(d: dict[str, Any]) -> list[str]:
    head = f"- {d.get('symbol')}"
    if d.get("name"):
        head += f" ({d['name']})"
    if d.get("sector"):
        head += f", sector {d['sector']}"
    parts = []
    for key, label in [("market_cap", "market cap"), ("pe_ratio", "P/E"), ("forward_pe", "forward P/E"), ("eps", "EPS"),
                       ("revenue", "revenue"), ("beta", "beta"), ("dividend_yield", "dividend yield")]:
        if d.get(key) is not None:
            parts.append(f"{label} {fmt(d[key])}")
    for key, label in [("profit_margin", "profit margin"), ("operating_margin", "operating margin")]:
        if d.get(key) is not None:
            parts.append(f"{label} {pct_of_fraction(d[key])}")
    if d.get("week52_low") is not None and d.get("week52_high") is not None:
        parts.append(f"52-week range {fmt(d['week52_low'])} to {fmt(d['week52_high'])}")
    body = ": " + "; ".join(parts) if parts else ": no fundamentals fields were returned"
    return [head + body + prov_line(d.get("provenance")) + "."]


def news_text(d: dict[str, Any]) -> list[str]:
    items = d.get("items") or []
    if not items:
        return [f"- No recent news returned for {d.get('symbol')}{prov_line(d.get('provenance'))}."]
    out = [f"- Latest news for {d.get('symbol')}{prov_line(d.get('provenance'))}:"]
    for it in items:
        meta = ", ".join(x for x in [it.get("publisher"), it.get("published_at")] if x)
        out.append(f"  - {it.get('title')}" + (f" ({meta})" if meta else ""))
    return out


def indicators_text(d: dict[str, Any]) -> list[str]:
    out = []
    for ind in d.get("indicators") or []:
        latest = ind.get("latest") or {}
        if latest.get("value") is not None:
            val = fmt(latest["value"])
        elif latest.get("values"):
            val = ", ".join(f"{k} {fmt(v)}" for k, v in latest["values"].items() if v is not None)
        else:
            val = "no value"
        out.append(f"- {d.get('symbol')} {ind.get('name')}: latest {val} (at {latest.get('ts')})"
                   + prov_line(ind.get("provenance")) + ".")
    return out or [f"- No indicators returned for {d.get('symbol')}."]


def search_text(d: dict[str, Any]) -> list[str]:
    matches = d.get("matches") or []
    if not matches:
        return [f"- No symbol matched {d.get('query')!r}."]
    return [f"- Matches for {d.get('query')!r}: " + ", ".join(f"{m.get('symbol')} ({m.get('name')})" for m in matches) + "."]


# -- the tools -------------------------------------------------------------------------------------------------


@TOOLS.tool("get_quote", title="Quote", args=SymbolArgs, output=Quote, text=quote_text, open_world=True)
def get_quote(ctx: ToolContext, a: SymbolArgs) -> ToolResult[Quote]:
    """Latest quote (price, change, volume) for one symbol."""
    q = ctx.market.get_quote(a.symbol)
    return ToolResult(q, f"{q.symbol} quote {q.price} {q.currency or ''}".rstrip(), [source(q.provenance, q.symbol, "quote")])


@TOOLS.tool("get_quotes", title="Quotes", args=QuotesArgs, output=QuoteBatch, text=quotes_text, open_world=True)
def get_quotes(ctx: ToolContext, a: QuotesArgs) -> ToolResult[QuoteBatch]:
    """Latest quotes for several symbols at once; a symbol without a quote reports why in its place."""
    items = ctx.market.get_quotes(a.symbols)
    quotes = [i for i in items if isinstance(i, Quote)]
    return ToolResult(QuoteBatch(items=items), f"quotes: {len(quotes)} of {len(items)}",
                      [source(q.provenance, q.symbol, "quote") for q in quotes])


@TOOLS.tool("get_history_summary", title="Price history summary", args=HistoryArgs, output=HistorySummary,
            text=history_text, open_world=True)
def get_history_summary(ctx: ToolContext, a: HistoryArgs) -> ToolResult[HistorySummary]:
    """Compact price history summary (first/last close, change %, high/low) over a period."""
    h = ctx.market.get_history(a.symbol, a.period, a.interval)
    bars = h.bars
    out = HistorySummary(symbol=h.symbol, period=a.period, interval=h.interval, currency=h.currency, bars=len(bars),
                         provenance=h.provenance)
    if bars:
        first, last = bars[0], bars[-1]
        out = out.model_copy(update={
            "first_date": first.ts.date(), "last_date": last.ts.date(), "first_close": first.close,
            "last_close": last.close, "high": max(b.high for b in bars), "low": min(b.low for b in bars),
            "change_percent": round((last.close - first.close) / first.close * 100, 2) if first.close else None,
        })
    return ToolResult(out, f"{h.symbol} {a.period} history: {len(bars)} bars", [source(h.provenance, h.symbol, "history")])


@TOOLS.tool("get_fundamentals", title="Fundamentals", args=SymbolArgs, output=Fundamentals, text=fundamentals_text,
            open_world=True)
def get_fundamentals(ctx: ToolContext, a: SymbolArgs) -> ToolResult[Fundamentals]:
    """Company fundamentals: valuation, margins, market cap, sector."""
    f = ctx.market.get_fundamentals(a.symbol)
    if f.description:
        f = f.model_copy(update={"description": sanitize_text(f.description, 300)})
    return ToolResult(f, f"{f.symbol} fundamentals", [source(f.provenance, f.symbol, "fundamentals")])


@TOOLS.tool("get_news", title="News", args=NewsArgs, output=Headlines, text=news_text, open_world=True)
def get_news(ctx: ToolContext, a: NewsArgs) -> ToolResult[Headlines]:
    """Recent news headlines for one symbol."""
    n = ctx.market.get_news(a.symbol, a.limit)
    items = [
        Headline(title=sanitize_text(i.title, 200) or "", publisher=sanitize_text(i.publisher, 80),
                 published_at=i.published_at, summary=sanitize_text(i.summary, 300), url=i.url)
        for i in n.items[: a.limit]
    ]
    return ToolResult(Headlines(symbol=n.symbol, items=items, provenance=n.provenance), f"{n.symbol} news: {len(items)} items",
                      [source(n.provenance, n.symbol, "news")])


def _rounded(point: IndicatorPoint) -> IndicatorPoint:
    """Values rounded to 4 decimals: compact for the model, and the rounded value is what gets quoted."""
    return point.model_copy(update={
        "value": round(point.value, 4) if point.value is not None else None,
        "values": {k: round(v, 4) if v is not None else None for k, v in point.values.items()} if point.values else point.values,
    })


@TOOLS.tool("get_indicators", title="Technical indicators", args=IndicatorArgs, output=Indicators, text=indicators_text,
            open_world=True)
def get_indicators(ctx: ToolContext, a: IndicatorArgs) -> ToolResult[Indicators]:
    """Technical indicators (latest values) computed from daily history, names like rsi_14, sma_20, sma_50, ema_12,
    bbands_20, atr_14, macd."""
    digests, sources = [], []
    for s in ctx.market.get_indicators(a.symbol, a.names):
        points = [_rounded(p) for p in s.points if p.value is not None or p.values]
        digests.append(IndicatorDigest(name=s.name, latest=points[-1] if points else None, recent=points[-5:],
                                       provenance=s.provenance))
        sources.append(source(s.provenance, s.symbol, f"indicator:{s.name}"))
    return ToolResult(Indicators(symbol=a.symbol, indicators=digests),
                      f"{a.symbol} indicators: {', '.join(d.name for d in digests)}", sources)


@TOOLS.tool("search_symbols", title="Symbol search", args=SearchArgs, output=SymbolSearch, text=search_text,
            open_world=True)
def search_symbols(ctx: ToolContext, a: SearchArgs) -> ToolResult[SymbolSearch]:
    """Find ticker symbols by company name or ticker."""
    matches = ctx.market.search_symbols(a.query, a.limit)
    return ToolResult(SymbolSearch(query=a.query, matches=matches, provenance=read_now("symbol_search")),
                      f"search {a.query!r}: {len(matches)} matches")
