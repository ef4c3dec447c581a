"""Standard market-data models. Every datum carries its provenance so the API and the agent can cite it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Provenance(BaseModel):
    """Where a datum came from and how fresh it is."""

    model_config = ConfigDict(extra="forbid")

    source: str  # provider name: "yahoo", "alpha_vantage", "offline"
    as_of: datetime | None = None  # the data's own timestamp
    fetched_at: datetime  # when we got it from the provider
    cache_age_s: float = 0.0
    stale: bool = False
    stale_reason: str | None = None  # why a stale value was served: refreshing, or the upstream failure
    fallback_from: list[str] = Field(default_factory=list)  # providers that failed before `source` answered


class Quote(BaseModel):
    symbol: str
    price: float
    currency: str | None = None  # ISO code; None when the provider did not say (never assume USD)
    change: float | None = None
    change_percent: float | None = None
    previous_close: float | None = None
    open: float | None = None
    day_high: float | None = None
    day_low: float | None = None
    volume: int | None = None
    market_cap: float | None = None
    provenance: Provenance


class Bar(BaseModel):
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int | None = None


Interval = Literal["1m", "5m", "15m", "30m", "1h", "1d", "1wk", "1mo"]
Period = Literal["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]


class History(BaseModel):
    symbol: str
    interval: str
    bars: list[Bar]
    currency: str | None = None  # the listing's ISO code (GBX for pence); None when unknown, never assumed
    provenance: Provenance


class Fundamentals(BaseModel):
    symbol: str
    name: str | None = None
    sector: str | None = None
    industry: str | None = None
    exchange: str | None = None
    currency: str | None = None  # the listing's ISO code (GBX for pence); None when unknown, never assumed
    market_cap: float | None = None
    pe_ratio: float | None = None
    forward_pe: float | None = None
    eps: float | None = None
    dividend_yield: float | None = None
    beta: float | None = None
    profit_margin: float | None = None
    operating_margin: float | None = None
    revenue: float | None = None
    week52_high: float | None = None
    week52_low: float | None = None
    description: str | None = None
    provenance: Provenance


class NewsItem(BaseModel):
    id: str
    symbol: str
    title: str
    summary: str | None = None
    publisher: str | None = None
    url: str | None = None
    published_at: datetime | None = None
    sentiment: float | None = None


class News(BaseModel):
    symbol: str
    items: list[NewsItem]
    provenance: Provenance


class SymbolMatch(BaseModel):
    symbol: str
    name: str
    exchange: str | None = None
    type: str | None = None  # equity, etf, index...
    currency: str | None = None
    score: float | None = None


class IndicatorPoint(BaseModel):
    ts: datetime | date
    value: float | None = None
    values: dict[str, float | None] | None = None  # multi-line indicators (MACD, Bollinger)


class IndicatorSeries(BaseModel):
    symbol: str
    name: str  # e.g. "sma_20", "rsi_14", "macd_12_26_9"
    points: list[IndicatorPoint]
    provenance: Provenance


class QuoteError(BaseModel):
    """Why one symbol has no quote: the problem the market-data layer reported for it (RFC 9457 fields).

    Used wherever quotes are fetched in bulk (the batch route, portfolio valuations, the dashboard): the
    batch still answers, the symbol reports its problem in place, never a made-up price."""

    symbol: str
    status: int
    type: str  # the problem type, "/problems/<slug>"
    title: str
    detail: str | None = None

    @classmethod
    def of(cls, symbol: str, err: Any) -> "QuoteError":
        """From an ApiError (or another QuoteError)."""
        slug = str(err.type)
        return cls(symbol=symbol, status=err.status, type=slug if slug.startswith("/") else f"/problems/{slug}",
                   title=err.title, detail=err.detail)


class QuoteBatch(BaseModel):
    """Quotes for several symbols in request order; a symbol that failed reports its problem in place."""

    items: list[Quote | QuoteError]
