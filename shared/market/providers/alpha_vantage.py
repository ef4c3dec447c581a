"""Alpha Vantage over HTTP (httpx).

Every value arrives as a string; errors arrive as HTTP 200 bodies with ``Information`` (throttle, premium
endpoint), ``Note`` (throttle, legacy) or ``Error Message`` (an invalid key, or a symbol it does not know).
The free tier allows 25 requests a day: usage is counted per UTC day in the cache and calls stop at the
configured quota. Symbols are spelled the Alpha Vantage way on the wire (VOD.L -> VOD.LON) and ours in every
answer; a symbol whose exchange it does not list is not asked (UpstreamUnsupported). The ``apikey`` never
reaches a log line or an exception message: it is registered with ``shared.logging``'s redactor, whose filter
scrubs every record (at the source for httpx, which logs request URLs), and upstream texts are redacted before
they are quoted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import (
    MarketDataUnavailable,
    NotFound,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    UpstreamUnsupported,
)
from shared.logging import redact, redact_at_source, register_secrets
from shared.market.hours import quote_as_of
from shared.market.models import Bar, Fundamentals, History, News, NewsItem, Provenance, Quote, SymbolMatch
from shared.market.periods import date_range
from shared.market.protocols import CacheLike
from shared.market.providers._util import integer, num, to_datetime
from shared.market.symbols import Listing, from_alpha_vantage, listing_currency, listing_of, normalize_currency, to_alpha_vantage
from shared.resilience import BodyTooSlow, body_deadline_hook, retry_after_from

NAME = "alpha_vantage"
logger = logging.getLogger(__name__)

_THROTTLE_RE = re.compile(r"rate limit|requests per|call frequency|spreading out|requests? (?:a|per) (?:day|minute)", re.IGNORECASE)


def _prov(fetched_at: datetime, as_of: datetime | None) -> Provenance:
    return Provenance(source=NAME, as_of=as_of, fetched_at=fetched_at)


# -- normalisers (pure) --------------------------------------------------------------------
def check_payload(payload: Any, symbol: str | None = None) -> dict[str, Any]:
    """Raise our error for Alpha Vantage's in-band errors (all arrive as HTTP 200); return the payload when it is data.

    - ``Note``, or an ``Information`` about request rates -> UpstreamRateLimited
    - ``Information`` about premium endpoints -> UpstreamMisconfigured (our plan lacks it; stop asking)
    - ``Information`` about the API key (the documentation's ``demo`` key) -> UpstreamMisconfigured
    - ``Information`` "Invalid inputs" (NEWS_SENTIMENT for tickers it does not cover) -> UpstreamUnsupported
    - ``Error Message`` naming the ``apikey`` (invalid or missing key) -> UpstreamMisconfigured, for every symbol
    - any other ``Error Message`` -> NotFound when a symbol was asked (we only send well-formed calls, so it is
      Alpha Vantage's documented answer to a symbol it does not know), else MarketDataUnavailable
    Quoted upstream text goes through the log redactor (it can echo the key).
    """
    if not isinstance(payload, dict):
        raise MarketDataUnavailable("Alpha Vantage returned an unexpected body", provider=NAME)
    if "Note" in payload:
        raise UpstreamRateLimited("Alpha Vantage throttled the request", provider=NAME)
    info = payload.get("Information")
    if isinstance(info, str) and len(payload) <= 2:
        if _THROTTLE_RE.search(info):
            raise UpstreamRateLimited("Alpha Vantage rate limit reached", provider=NAME)
        if "premium" in info.lower():
            raise UpstreamMisconfigured("That Alpha Vantage endpoint needs a premium plan", provider=NAME)
        if "api key" in info.lower():  # "The **demo** API key is for demo purposes only..."
            raise UpstreamMisconfigured(f"Alpha Vantage refuses the configured API key: {redact(info)[:120]}", provider=NAME)
        if "invalid inputs" in info.lower():
            raise UpstreamUnsupported(f"Alpha Vantage does not cover {symbol or 'that request'}", provider=NAME)
        raise MarketDataUnavailable(f"Alpha Vantage: {redact(info)[:200]}", provider=NAME)
    error = payload.get("Error Message")
    if isinstance(error, str):
        if "apikey" in error.lower():
            raise UpstreamMisconfigured(f"Alpha Vantage rejected the API key: {redact(error)[:120]}", provider=NAME)
        if symbol:
            raise NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol})
        raise MarketDataUnavailable(f"Alpha Vantage rejected the call: {redact(error)[:120]}", provider=NAME)
    return payload


def normalize_quote(symbol: str, payload: dict[str, Any], fetched_at: datetime) -> Quote:
    """GLOBAL_QUOTE for ``symbol`` (ours); an empty ``Global Quote`` object is Alpha Vantage's unknown-symbol answer.

    Currency: the listing's (GLOBAL_QUOTE does not report it), None when unknown.
    """
    check_payload(payload, symbol)
    q = payload.get("Global Quote") or {}
    price = num(q.get("05. price"))
    if not q:
        raise NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol})
    if price is None:
        raise MarketDataUnavailable(f"Alpha Vantage returned no price for {symbol}", provider=NAME)
    day = to_datetime(q.get("07. latest trading day"))
    return Quote(
        symbol=symbol,
        price=price,
        currency=listing_currency(symbol),
        change=num(q.get("09. change")),
        change_percent=num(q.get("10. change percent")),
        previous_close=num(q.get("08. previous close")),
        open=num(q.get("02. open")),
        day_high=num(q.get("03. high")),
        day_low=num(q.get("04. low")),
        volume=integer(q.get("06. volume")),
        provenance=_prov(fetched_at, quote_as_of(fetched_at, day.date()) if day is not None else None),
    )


def normalize_daily(symbol: str, payload: dict[str, Any], fetched_at: datetime, first: date | None = None, last: date | None = None) -> History:
    """TIME_SERIES_DAILY, optionally cut to [first, last]; nothing left -> MarketDataUnavailable.

    Each bar is stamped at its day's midnight on the exchange's clock (as Yahoo stamps daily bars), so one
    session's bar has the same timestamp whichever provider served it; the currency is the listing's.
    """
    check_payload(payload, symbol)
    series = payload.get("Time Series (Daily)")
    if not isinstance(series, dict):
        raise MarketDataUnavailable(f"Alpha Vantage returned no daily series for {symbol}", provider=NAME)
    listing = listing_of(symbol)
    zone = ZoneInfo(listing.timezone if listing else "America/New_York")
    bars = []
    for day, row in series.items():
        d = date.fromisoformat(day)
        if (first and d < first) or (last and d > last):
            continue
        close = num(row.get("4. close"))
        if close is None:
            continue
        midnight = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(timezone.utc)
        bars.append(Bar(ts=midnight, open=num(row.get("1. open")) or close, high=num(row.get("2. high")) or close,
                        low=num(row.get("3. low")) or close, close=close, volume=integer(row.get("5. volume"))))
    if not bars:
        raise MarketDataUnavailable(f"Alpha Vantage has no bars for {symbol} in that range", provider=NAME)
    bars.sort(key=lambda b: b.ts)
    return History(symbol=symbol, interval="1d", bars=bars, currency=listing_currency(symbol),
                   provenance=_prov(fetched_at, bars[-1].ts))


def normalize_overview(symbol: str, payload: dict[str, Any], fetched_at: datetime) -> Fundamentals:
    """OVERVIEW. ``{}`` is what it answers for ETFs and funds (and symbols it lacks): it has no overview to give,
    which is UpstreamUnsupported, not an unknown symbol. DividendYield is already a fraction."""
    check_payload(payload, symbol)
    if not payload or not payload.get("Symbol"):
        raise UpstreamUnsupported(f"Alpha Vantage has no company overview for {symbol} (none for ETFs and funds)", provider=NAME)

    def s(key: str) -> str | None:
        v = payload.get(key)
        return v if v not in (None, "", "None", "-") else None

    return Fundamentals(
        symbol=symbol,
        name=s("Name"), sector=s("Sector"), industry=s("Industry"), exchange=s("Exchange"),
        currency=normalize_currency(s("Currency")) or listing_currency(symbol),
        market_cap=num(payload.get("MarketCapitalization")),
        pe_ratio=num(payload.get("PERatio")), forward_pe=num(payload.get("ForwardPE")),
        eps=num(payload.get("EPS")), dividend_yield=num(payload.get("DividendYield")),
        beta=num(payload.get("Beta")), profit_margin=num(payload.get("ProfitMargin")),
        operating_margin=num(payload.get("OperatingMarginTTM")), revenue=num(payload.get("RevenueTTM")),
        week52_high=num(payload.get("52WeekHigh")), week52_low=num(payload.get("52WeekLow")),
        description=s("Description"),
        provenance=_prov(fetched_at, to_datetime(s("LatestQuarter"))),
    )


def normalize_news(symbol: str, payload: dict[str, Any], fetched_at: datetime, limit: int = 10, av_symbol: str | None = None) -> News:
    """NEWS_SENTIMENT; sentiment is the ticker-specific score when present (``av_symbol``: its spelling there),
    else the overall one."""
    check_payload(payload, symbol)
    feed = payload.get("feed")
    if not isinstance(feed, list):
        raise MarketDataUnavailable(f"Alpha Vantage returned no news feed for {symbol}", provider=NAME)
    wire = (av_symbol or symbol).upper()
    items = []
    for art in feed:
        title = (art.get("title") or "").strip()
        if not title:
            continue
        sentiment = num(art.get("overall_sentiment_score"))
        for ts in art.get("ticker_sentiment") or []:
            if str(ts.get("ticker", "")).upper() == wire:
                sentiment = num(ts.get("ticker_sentiment_score"))
                break
        url = art.get("url")
        items.append(NewsItem(
            id=hashlib.sha1((url or title).encode()).hexdigest()[:16], symbol=symbol, title=title,
            summary=art.get("summary") or None, publisher=art.get("source") or None, url=url,
            published_at=to_datetime(art.get("time_published")), sentiment=sentiment,
        ))
    items.sort(key=lambda n: n.published_at or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    items = items[:limit]
    return News(symbol=symbol, items=items, provenance=_prov(fetched_at, items[0].published_at if items else None))


_AV_TYPES = {"equity": "equity", "etf": "etf", "mutual fund": "mutualfund", "index": "index"}


def normalize_search(payload: dict[str, Any], limit: int = 10) -> list[SymbolMatch]:
    """SYMBOL_SEARCH ``bestMatches`` in our spelling (TSCO.LON -> TSCO.L) with the exchange of the listing (never
    the region); matches on exchanges we cannot map are left out (nothing could be asked about them)."""
    check_payload(payload)
    out = []
    for m in payload.get("bestMatches") or []:
        mapped: tuple[str, Listing] | None = from_alpha_vantage(m.get("1. symbol") or "")
        if mapped is None:
            continue
        sym, listing = mapped
        kind = (m.get("3. type") or "").lower()
        out.append(SymbolMatch(symbol=sym, name=m.get("2. name") or sym, exchange=listing.exchange,
                               type=_AV_TYPES.get(kind, kind or None),
                               currency=normalize_currency(m.get("8. currency")) or listing.currency,
                               score=num(m.get("9. matchScore"))))
        if len(out) >= limit:
            break
    return out


# -- adapter ---------------------------------------------------------------------------------
class AlphaVantageProvider:
    """Alpha Vantage adapter; daily bars only (intraday is premium), one HTTP call per method call, each done
    within ``timeout_s`` in all (however slowly the answer trickles in)."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str,
        cache: CacheLike,
        base_url: str = "https://www.alphavantage.co/query",
        daily_quota: int = 25,
        timeout_s: float = 10.0,
        transport: Any = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("Alpha Vantage needs an API key")
        self._key = api_key
        register_secrets([api_key])  # masked in every log line and quoted upstream text from now on
        redact_at_source("httpx", "httpcore")  # they log each request URL, apikey included
        self._cache = cache
        self._base_url = base_url
        self._quota = int(daily_quota)
        self._timeout = timeout_s
        self._transport = transport
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"AlphaVantageProvider(base_url={self._base_url!r}, daily_quota={self._quota})"

    def _http(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                # httpx's timeout bounds each wait for bytes; the hook bounds the whole answer by the same figure.
                self._client = httpx.Client(timeout=self._timeout, transport=self._transport, event_hooks={
                    "response": [body_deadline_hook(httpx.SyncByteStream, self._timeout)]})
            return self._client

    def quota_key(self) -> str:
        return self._cache.key("market", "av_quota", self._clock().astimezone(timezone.utc).date().isoformat())

    def used_today(self) -> int:
        v = self._cache.get_json(self.quota_key())
        return int(v) if isinstance(v, (int, float, str)) and str(v).isdigit() else 0

    def _reserve(self) -> None:
        """Count one request against today's quota; refuse (429 upstream) once it is used up."""
        used = self._cache.incr(self.quota_key(), 1, ttl=2 * 86400)
        if used > self._quota:
            raise UpstreamRateLimited(f"Alpha Vantage daily quota of {self._quota} requests is used up", provider=NAME)

    @staticmethod
    def _wire(symbol: str) -> str:
        """Alpha Vantage's spelling of ``symbol``; UpstreamUnsupported (no request, no quota) for an exchange it
        does not list: asked as is, it would call the symbol unknown."""
        av_symbol = to_alpha_vantage(symbol)
        if av_symbol is None:
            raise UpstreamUnsupported(f"Alpha Vantage does not list {symbol}", provider=NAME)
        return av_symbol

    def _get(self, function: str, subject: str | None, **params: Any) -> dict[str, Any]:
        self._reserve()
        import httpx

        query = {"function": function, **params, "apikey": self._key}
        try:
            resp = self._http().get(self._base_url, params=query)
        except (httpx.TimeoutException, BodyTooSlow):
            raise MarketDataUnavailable("Alpha Vantage timed out", provider=NAME) from None
        except httpx.HTTPError as exc:
            raise MarketDataUnavailable(f"Alpha Vantage request failed ({type(exc).__name__})", provider=NAME) from None
        if resp.status_code == 429:
            raise UpstreamRateLimited("Alpha Vantage rate limited us", provider=NAME,
                                      retry_after=retry_after_from(resp.headers))
        if resp.status_code >= 400:
            raise MarketDataUnavailable(f"Alpha Vantage answered HTTP {resp.status_code}", provider=NAME)
        try:
            payload = resp.json()
        except ValueError:
            raise MarketDataUnavailable("Alpha Vantage returned a body that is not JSON", provider=NAME) from None
        return check_payload(payload, subject)

    def get_quote(self, symbol: str) -> Quote:
        return normalize_quote(symbol, self._get("GLOBAL_QUOTE", symbol, symbol=self._wire(symbol)), self._clock())

    def get_history(self, symbol: str, *, period: str = "1mo", interval: str = "1d", start: date | None = None, end: date | None = None) -> History:
        if interval != "1d":
            # Only daily bars on the free tier; the chain asks the next provider.
            raise UpstreamUnsupported(f"Alpha Vantage serves daily bars only, not {interval}", provider=NAME)
        wire = self._wire(symbol)
        today = self._clock().date()
        first, last = date_range(period, today, start, end)
        # compact = the latest 100 sessions (~140 calendar days); full is a premium feature.
        if (today - first).days > 140:
            raise UpstreamUnsupported("Alpha Vantage's free tier serves the last 100 sessions only", provider=NAME)
        payload = self._get("TIME_SERIES_DAILY", symbol, symbol=wire, outputsize="compact")
        if start is None and end is None and period in ("1d", "5d"):
            # The last 1/5 sessions, even before today's open (as Yahoo answers).
            hist = normalize_daily(symbol, payload, self._clock(), None, last)
            return hist.model_copy(update={"bars": hist.bars[-int(period[0]):]})
        return normalize_daily(symbol, payload, self._clock(), first, last)

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        return normalize_overview(symbol, self._get("OVERVIEW", symbol, symbol=self._wire(symbol)), self._clock())

    def get_news(self, symbol: str, limit: int = 10) -> News:
        wire = self._wire(symbol)
        payload = self._get("NEWS_SENTIMENT", symbol, tickers=wire, limit=max(limit, 10), sort="LATEST")
        return normalize_news(symbol, payload, self._clock(), limit, wire)

    def search_symbols(self, query: str, limit: int = 10) -> list[SymbolMatch]:
        return normalize_search(self._get("SYMBOL_SEARCH", None, keywords=query), limit)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
