"""Yahoo Finance via yfinance (imported lazily: it pulls in pandas).

Normalisers are pure functions over plain dicts/lists, tested on recorded payloads; the
adapter only fetches, converts frames to records and maps yfinance errors onto ours.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Sequence

from shared.errors import ApiError, MarketDataUnavailable, NotFound, UpstreamError, UpstreamRateLimited
from shared.market.hours import quote_as_of
from shared.market.models import Bar, Fundamentals, History, News, NewsItem, Provenance, Quote, SymbolMatch
from shared.market.providers._util import integer, num, to_datetime
from shared.market.symbols import listing_currency

NAME = "yahoo"
logger = logging.getLogger(__name__)

_TYPES = {"EQUITY": "equity", "ETF": "etf", "INDEX": "index", "MUTUALFUND": "mutualfund",
          "CRYPTOCURRENCY": "crypto", "CURRENCY": "currency", "FUTURE": "future", "OPTION": "option"}


def _prov(fetched_at: datetime, as_of: datetime | None) -> Provenance:
    return Provenance(source=NAME, as_of=as_of, fetched_at=fetched_at)


# -- normalisers (pure) --------------------------------------------------------------------
def normalize_quote(symbol: str, fast_info: dict[str, Any], fetched_at: datetime) -> Quote:
    """Quote from ``Ticker.fast_info`` items (camelCase keys). No price -> NotFound."""
    price = num(fast_info.get("lastPrice"))
    if price is None:
        raise NotFound(f"No quote for {symbol}", extra={"symbol": symbol})
    prev = num(fast_info.get("regularMarketPreviousClose")) or num(fast_info.get("previousClose"))
    change = price - prev if prev else None
    return Quote(
        symbol=symbol,
        price=price,
        currency=(fast_info.get("currency") or "").upper() or listing_currency(symbol),
        change=round(change, 6) if change is not None else None,
        change_percent=round(change / prev * 100, 6) if change is not None and prev else None,
        previous_close=prev,
        open=num(fast_info.get("open")),
        day_high=num(fast_info.get("dayHigh")),
        day_low=num(fast_info.get("dayLow")),
        volume=integer(fast_info.get("lastVolume")),
        market_cap=num(fast_info.get("marketCap")),
        provenance=_prov(fetched_at, quote_as_of(fetched_at)),
    )


def normalize_history(symbol: str, interval: str, rows: Sequence[dict[str, Any]], fetched_at: datetime, currency: str | None = None) -> History:
    """History from ``DataFrame.reset_index().to_dict("records")`` rows (Date/Datetime, Open, High, Low, Close, Volume).

    Rows without a close are dropped; no usable row -> MarketDataUnavailable (never an empty series).
    """
    bars = []
    for row in rows:
        ts = to_datetime(row.get("Datetime", row.get("Date", row.get("index"))))
        close = num(row.get("Close"))
        if ts is None or close is None:
            continue
        o, h, lo = num(row.get("Open")), num(row.get("High")), num(row.get("Low"))
        bars.append(Bar(ts=ts, open=o if o is not None else close, high=h if h is not None else close,
                        low=lo if lo is not None else close, close=close, volume=integer(row.get("Volume"))))
    if not bars:
        raise MarketDataUnavailable(f"Yahoo returned no bars for {symbol}", provider=NAME)
    bars.sort(key=lambda b: b.ts)
    return History(symbol=symbol, interval=interval, bars=bars, currency=(currency or "USD").upper(),
                   provenance=_prov(fetched_at, bars[-1].ts))


def normalize_fundamentals(symbol: str, info: dict[str, Any], fetched_at: datetime) -> Fundamentals:
    """Fundamentals from ``Ticker.get_info()``. An info without a name or quote type means an unknown symbol.

    Yahoo's ``dividendYield`` is in percent (0.44 = 0.44 %); ours is a fraction.
    """
    name = info.get("longName") or info.get("shortName")
    if not info or (not name and not info.get("quoteType")):
        raise NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol})
    dy = num(info.get("dividendYield"))
    if dy is not None:
        dy = dy / 100
    elif num(info.get("trailingAnnualDividendYield")) is not None:
        dy = num(info.get("trailingAnnualDividendYield"))
    return Fundamentals(
        symbol=symbol,
        name=name,
        sector=info.get("sector"),
        industry=info.get("industry"),
        exchange=info.get("fullExchangeName") or info.get("exchange"),
        currency=(info.get("currency") or info.get("financialCurrency") or "USD").upper(),
        market_cap=num(info.get("marketCap")),
        pe_ratio=num(info.get("trailingPE")),
        forward_pe=num(info.get("forwardPE")),
        eps=num(info.get("trailingEps")) if num(info.get("trailingEps")) is not None else num(info.get("epsTrailingTwelveMonths")),
        dividend_yield=dy,
        beta=num(info.get("beta")),
        profit_margin=num(info.get("profitMargins")),
        operating_margin=num(info.get("operatingMargins")),
        revenue=num(info.get("totalRevenue")),
        week52_high=num(info.get("fiftyTwoWeekHigh")),
        week52_low=num(info.get("fiftyTwoWeekLow")),
        description=info.get("longBusinessSummary"),
        provenance=_prov(fetched_at, to_datetime(info.get("regularMarketTime")) if isinstance(info.get("regularMarketTime"), (int, float)) else None),
    )


def normalize_news(symbol: str, items: Sequence[dict[str, Any]], fetched_at: datetime, limit: int = 10) -> News:
    """News from ``Ticker.get_news()``: current items nest fields under ``content``; legacy items are flat."""
    out: list[NewsItem] = []
    for item in items:
        c = item.get("content") if isinstance(item.get("content"), dict) else item
        title = (c.get("title") or "").strip()
        if not title:
            continue
        url = (c.get("canonicalUrl") or {}).get("url") or (c.get("clickThroughUrl") or {}).get("url") or c.get("link")
        provider = c.get("provider") if isinstance(c.get("provider"), dict) else {}
        published = to_datetime(c.get("pubDate") or c.get("displayTime") or c.get("providerPublishTime"))
        ident = c.get("id") or item.get("id") or c.get("uuid") or hashlib.sha1(f"{title}|{url}".encode()).hexdigest()[:16]
        out.append(NewsItem(
            id=str(ident), symbol=symbol, title=title,
            summary=(c.get("summary") or c.get("description") or None),
            publisher=provider.get("displayName") or c.get("publisher"),
            url=url, published_at=published,
        ))
        if len(out) >= limit:
            break
    out.sort(key=lambda n: n.published_at or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    return News(symbol=symbol, items=out, provenance=_prov(fetched_at, out[0].published_at if out else None))


def normalize_search(quotes: Sequence[dict[str, Any]], limit: int = 10) -> list[SymbolMatch]:
    """Matches from ``yf.Search(...).quotes``; Yahoo's raw scores are rescaled to 0..1."""
    rows = [q for q in quotes if q.get("symbol")]
    top = max((num(q.get("score")) or 0.0 for q in rows), default=0.0) or 1.0
    out = []
    for q in rows[:limit]:
        score = num(q.get("score"))
        out.append(SymbolMatch(
            symbol=str(q["symbol"]).upper(),
            name=q.get("longname") or q.get("shortname") or str(q["symbol"]),
            exchange=q.get("exchDisp") or q.get("exchange"),
            type=_TYPES.get(str(q.get("quoteType", "")).upper(), (q.get("quoteType") or "").lower() or None),
            currency=None,
            score=round(score / top, 4) if score is not None else None,
        ))
    return out


def _bar_as_of(row: dict[str, Any], fetched_at: datetime) -> datetime | None:
    """A daily bar is stamped at its day's midnight: the price it carries is as of that session's close
    (or now, while the session is running)."""
    ts = to_datetime(row.get("Date", row.get("Datetime")))
    return quote_as_of(fetched_at, ts.date()) if ts is not None else quote_as_of(fetched_at)


def normalize_download(symbols: Sequence[str], records: dict[str, Sequence[dict[str, Any]]], fetched_at: datetime) -> dict[str, Quote]:
    """Quotes from a batched ``yf.download(period="5d", interval="1d", group_by="ticker")`` converted per symbol to rows.

    The last row with a close is the current (or latest) session; the row before gives the previous close.
    Symbols without rows are absent from the result.
    """
    out: dict[str, Quote] = {}
    for sym in symbols:
        rows = [r for r in records.get(sym, []) if num(r.get("Close")) is not None]
        rows.sort(key=lambda r: to_datetime(r.get("Date", r.get("Datetime"))) or datetime.min.replace(tzinfo=timezone.utc))
        if not rows:
            continue
        last = rows[-1]
        price = num(last["Close"]) or 0.0
        prev = num(rows[-2]["Close"]) if len(rows) > 1 else None
        change = price - prev if prev else None
        out[sym] = Quote(
            currency=listing_currency(sym),  # yf.download does not report it
            symbol=sym, price=price, previous_close=prev,
            change=round(change, 6) if change is not None else None,
            change_percent=round(change / prev * 100, 6) if change is not None and prev else None,
            open=num(last.get("Open")), day_high=num(last.get("High")), day_low=num(last.get("Low")),
            volume=integer(last.get("Volume")),
            provenance=_prov(fetched_at, _bar_as_of(last, fetched_at)),
        )
    return out


# -- error mapping ---------------------------------------------------------------------------
def map_yfinance_error(exc: BaseException, symbol: str | None = None) -> ApiError:
    """Translate a yfinance/HTTP exception into our error classes (by class name: yfinance stays unimported)."""
    if isinstance(exc, ApiError):
        return exc
    names = {c.__name__ for c in type(exc).__mro__}
    text = str(exc)
    if "YFRateLimitError" in names or "Too Many Requests" in text:
        return UpstreamRateLimited("Yahoo Finance rate limited us", provider=NAME)
    if "YFTzMissingError" in names:
        return NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol})
    if "YFPricesMissingError" in names:
        # Only Yahoo's own reason is evidence of an unknown symbol; without one yfinance's
        # message always speculates "possibly delisted", so it just means "no data here".
        reason = (getattr(exc, "yahoo_reason", None) or "").lower()
        if "delisted" in reason or "not found" in reason or "no data found" in reason:
            return NotFound(f"Unknown or delisted symbol {symbol}", extra={"symbol": symbol})
        return MarketDataUnavailable(f"Yahoo has no prices for {symbol} in that range", provider=NAME)
    if "YFInvalidPeriodError" in names:
        return MarketDataUnavailable(f"Yahoo does not offer that period for {symbol}", provider=NAME)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404:
        return NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol})
    if status == 429:
        return UpstreamRateLimited("Yahoo Finance rate limited us", provider=NAME)
    return UpstreamError(f"Yahoo Finance request failed ({type(exc).__name__})", provider=NAME)


class YahooProvider:
    """Quotes, history, fundamentals, news and search from Yahoo Finance.

    yfinance's shared session is not re-entrant, so at most ``max_concurrency`` calls run at once.
    """

    name = NAME

    def __init__(self, *, max_concurrency: int = 2, timeout_s: float = 10.0, clock: Callable[[], datetime] | None = None,
                 yf_module: Any = None) -> None:
        self._sem = threading.BoundedSemaphore(max(1, max_concurrency))
        self._timeout = timeout_s
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._yf = yf_module  # injectable for adapter tests; real module imported on first use

    def _module(self) -> Any:
        if self._yf is None:
            import warnings

            import yfinance as yf  # heavy (pandas): only on first use

            # history(raise_errors=True) is deprecated in favour of a global flag we do not want to flip.
            warnings.filterwarnings("ignore", message=".*raise_errors.*deprecated", category=DeprecationWarning)
            self._yf = yf
        return self._yf

    @contextmanager
    def _call(self, symbol: str | None) -> Iterator[Any]:
        yf = self._module()
        with self._sem:
            try:
                yield yf
            except ApiError:
                raise
            except Exception as exc:  # noqa: BLE001 - every SDK error is translated
                mapped = map_yfinance_error(exc, symbol)
                logger.info("yahoo call failed", extra={"symbol": symbol, "error": type(exc).__name__, "mapped": type(mapped).__name__})
                raise mapped from None

    def get_quote(self, symbol: str) -> Quote:
        with self._call(symbol) as yf:
            fi = yf.Ticker(symbol).fast_info
            data: dict[str, Any] = {}
            # Only keys served from the one chart request: in yfinance 1.7 `previousClose` and `marketCap` each
            # cost extra HTTP round trips (previousClose is read only as a fallback; market cap is in fundamentals).
            for k in ("lastPrice", "regularMarketPreviousClose", "previousClose", "open", "dayHigh", "dayLow",
                      "lastVolume", "currency"):
                if k == "previousClose" and data.get("regularMarketPreviousClose") is not None:
                    continue
                try:
                    data[k] = fi.get(k)
                except (KeyError, IndexError, TypeError) as exc:
                    # fast_info reads chart metadata lazily; for a symbol Yahoo has no chart for, that
                    # metadata is missing (e.g. KeyError 'currentTradingPeriod'): the symbol is unknown,
                    # which must not count against the breaker like an outage would.
                    if k == "lastPrice":
                        logger.info("yahoo fast_info has no price", extra={"symbol": symbol, "error": type(exc).__name__})
                        raise NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol}) from None
                    data[k] = None
        return normalize_quote(symbol, data, self._clock())

    def get_quotes_batch(self, symbols: Sequence[str]) -> dict[str, Quote]:
        syms = list(dict.fromkeys(symbols))
        if not syms:
            return {}
        with self._call(None) as yf:
            # threads=False: one request at a time on yfinance's session (see class docstring).
            df = yf.download(syms, period="5d", interval="1d", group_by="ticker", auto_adjust=False,
                             progress=False, threads=False, timeout=self._timeout, multi_level_index=True)
            records: dict[str, list[dict[str, Any]]] = {}
            if df is not None and not df.empty:
                top = set(df.columns.get_level_values(0))
                for s in syms:
                    if s in top:
                        records[s] = df[s].reset_index().to_dict("records")
        quotes = normalize_download(syms, records, self._clock())
        if not quotes:
            raise MarketDataUnavailable("Yahoo returned no prices for the batch", provider=NAME)
        return quotes

    def get_history(self, symbol: str, *, period: str = "1mo", interval: str = "1d", start: date | None = None, end: date | None = None) -> History:
        kwargs: dict[str, Any] = {"interval": interval, "auto_adjust": True, "actions": False, "timeout": self._timeout, "raise_errors": True}
        if start:
            kwargs["start"] = start.isoformat()
            if end:
                kwargs["end"] = (end + timedelta(days=1)).isoformat()  # yfinance's end is exclusive
        elif end:
            kwargs["end"] = (end + timedelta(days=1)).isoformat()
            kwargs["period"] = period
        else:
            kwargs["period"] = period
        with self._call(symbol) as yf:
            t = yf.Ticker(symbol)
            df = t.history(**kwargs)
            rows = [] if df is None or df.empty else df.reset_index().to_dict("records")
            try:
                currency = (t.history_metadata or {}).get("currency")
            except Exception:  # noqa: BLE001 - metadata is optional
                currency = None
        return normalize_history(symbol, interval, rows, self._clock(), currency)

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        with self._call(symbol) as yf:
            info = yf.Ticker(symbol).get_info() or {}
        return normalize_fundamentals(symbol, dict(info), self._clock())

    def get_news(self, symbol: str, limit: int = 10) -> News:
        with self._call(symbol) as yf:
            items = yf.Ticker(symbol).get_news(count=limit) or []
        return normalize_news(symbol, list(items), self._clock(), limit)

    def search_symbols(self, query: str, limit: int = 10) -> list[SymbolMatch]:
        with self._call(None) as yf:
            quotes = yf.Search(query, max_results=limit, news_count=0, lists_count=0, recommended=0,
                               timeout=self._timeout, raise_errors=True).quotes or []
        return normalize_search(list(quotes), limit)
