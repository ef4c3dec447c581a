"""Yahoo Finance via yfinance (imported lazily: it pulls in pandas and curl_cffi).

Normalisers are pure functions over plain dicts/lists, tested on real-shaped payloads. The adapter fetches
through one long-lived ``YahooSession`` (shared by ``Ticker``, ``download`` and ``Search``), converts frames to
records and classifies every outcome from what Yahoo really answered (``outcome_of_exchanges``), because
yfinance turns most HTTP failures into empty results.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from shared.errors import (
    ApiError,
    MarketDataUnavailable,
    NotFound,
    UpstreamRateLimited,
    UpstreamUnsupported,
)
from shared.market.hours import quote_as_of
from shared.market.models import Bar, Fundamentals, History, News, NewsItem, Provenance, Quote, SymbolMatch
from shared.market.providers._util import integer, num, to_datetime
from shared.market.symbols import listing_currency, normalize_currency

if TYPE_CHECKING:  # pragma: no cover
    from shared.market.providers.yahoo_session import Exchange, Observation, YahooSession

NAME = "yahoo"
logger = logging.getLogger(__name__)

_TYPES = {"EQUITY": "equity", "ETF": "etf", "INDEX": "index", "MUTUALFUND": "mutualfund",
          "CRYPTOCURRENCY": "crypto", "CURRENCY": "currency", "FUTURE": "future", "OPTION": "option"}


def _prov(fetched_at: datetime, as_of: datetime | None) -> Provenance:
    return Provenance(source=NAME, as_of=as_of, fetched_at=fetched_at)


# -- normalisers (pure) --------------------------------------------------------------------
def normalize_quote(symbol: str, fast_info: dict[str, Any], fetched_at: datetime) -> Quote:
    """Quote from ``Ticker.fast_info`` items (camelCase keys). No price -> MarketDataUnavailable (empty where
    a price was expected says nothing about the symbol: the adapter decides from Yahoo's answers)."""
    price = num(fast_info.get("lastPrice"))
    if price is None:
        raise MarketDataUnavailable(f"Yahoo returned no price for {symbol}", provider=NAME)
    prev = num(fast_info.get("regularMarketPreviousClose")) or num(fast_info.get("previousClose"))
    change = price - prev if prev else None
    return Quote(
        symbol=symbol,
        price=price,
        currency=normalize_currency(fast_info.get("currency")) or listing_currency(symbol),
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

    Rows without a close are dropped; no usable row -> MarketDataUnavailable (never an empty series). Daily bars
    keep Yahoo's stamp, the exchange's local midnight, expressed in UTC.
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
    return History(symbol=symbol, interval=interval, bars=bars, currency=normalize_currency(currency) or listing_currency(symbol),
                   provenance=_prov(fetched_at, bars[-1].ts))


def normalize_fundamentals(symbol: str, info: dict[str, Any], fetched_at: datetime) -> Fundamentals:
    """Fundamentals from ``Ticker.get_info()``. An info without a name or quote type is no answer
    (MarketDataUnavailable): yfinance returns such a dict when quoteSummary failed.

    Yahoo's ``dividendYield`` is in percent (0.44 = 0.44 %); ours is a fraction.
    """
    name = info.get("longName") or info.get("shortName")
    if not info or (not name and not info.get("quoteType")):
        raise MarketDataUnavailable(f"Yahoo returned no profile for {symbol}", provider=NAME)
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
        currency=normalize_currency(info.get("currency") or info.get("financialCurrency")) or listing_currency(symbol),
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


# -- outcome classification ------------------------------------------------------------------
def outcome_of_exchanges(finals: Sequence["Exchange"], symbol: str | None = None) -> ApiError | None:
    """What Yahoo's answers prove about a call that produced no usable data; None when they prove nothing.

    Throttled (429) -> UpstreamRateLimited; no answer (timeout, reset), 5xx, 401/403 ("Invalid Crumb"), another
    4xx without Yahoo's JSON error, a 2xx body that is not JSON or that carries Yahoo's error object (yfinance
    makes ``[]`` of it for search and news) -> MarketDataUnavailable; 400/422 with
    Yahoo's JSON error (the request is outside what Yahoo serves, e.g. 1m bars beyond 8 days) ->
    UpstreamUnsupported; only a 404 carrying Yahoo's ``"Not Found"`` error code, and no failure beside it ->
    NotFound.
    """
    throttled = [e for e in finals if e.status == 429]
    if throttled:
        waits = [e.retry_after for e in throttled if e.retry_after is not None]
        return UpstreamRateLimited("Yahoo Finance rate limited us", provider=NAME, retry_after=max(waits) if waits else None)
    for e in finals:
        if e.status is None:
            what = "timed out" if e.timed_out else f"could not be reached ({e.error})"
            return MarketDataUnavailable(f"Yahoo Finance {what}", provider=NAME)
    for e in finals:
        declined = e.status in (400, 422) and e.yahoo_error is not None
        failed_2xx = e.status < 400 and (not e.json_ok or e.yahoo_error is not None)
        if (e.status >= 400 and e.status != 404 and not declined) or failed_2xx or (e.status == 404 and e.yahoo_error is None):
            code = f" ({e.yahoo_error})" if e.yahoo_error else "" if e.status >= 400 else " (not JSON)"
            return MarketDataUnavailable(f"Yahoo Finance answered HTTP {e.status}{code}", provider=NAME)
    declined_by = next((e for e in finals if e.status in (400, 422)), None)
    if declined_by is not None:
        return UpstreamUnsupported(f"Yahoo Finance does not serve that request ({declined_by.yahoo_error})", provider=NAME)
    if any(e.status == 404 and e.yahoo_error == "Not Found" for e in finals):
        return NotFound(f"Unknown symbol {symbol}" if symbol else "Not found on Yahoo Finance", extra={"symbol": symbol} if symbol else None)
    return None


def map_yfinance_error(exc: BaseException, symbol: str | None = None) -> ApiError:
    """Translate a yfinance/HTTP exception raised without HTTP evidence (by class name: yfinance stays unimported).

    Never NotFound: yfinance raises its "missing" errors for outages too (see ``outcome_of_exchanges``).
    """
    if isinstance(exc, ApiError):
        return exc
    names = {c.__name__ for c in type(exc).__mro__}
    if "YFRateLimitError" in names:
        return UpstreamRateLimited("Yahoo Finance rate limited us", provider=NAME)
    if "YFPricesMissingError" in names or "YFInvalidPeriodError" in names:
        return UpstreamUnsupported(f"Yahoo Finance has no prices for {symbol} in that range", provider=NAME)
    if "Timeout" in names:
        return MarketDataUnavailable("Yahoo Finance timed out", provider=NAME)
    return MarketDataUnavailable(f"Yahoo Finance request failed ({type(exc).__name__})", provider=NAME)


class YahooProvider:
    """Quotes, history, fundamentals, news and search from Yahoo Finance.

    One ``YahooSession`` for the provider's lifetime, passed to every ``Ticker``, ``download`` and ``Search``
    (a ``download`` without one would replace yfinance's process-wide session and drop its cookies). yfinance's
    shared state is not re-entrant, so at most ``max_concurrency`` calls run at once; a call waits at most
    ``deadline_s`` for its turn (then it is unavailable, unasked). Every HTTP request is bounded by ``timeout_s``
    and every call by ``deadline_s``.
    """

    name = NAME

    def __init__(self, *, max_concurrency: int = 2, timeout_s: float = 8.0, deadline_s: float = 20.0,
                 clock: Callable[[], datetime] | None = None, session: "YahooSession | None" = None) -> None:
        self._sem = threading.BoundedSemaphore(max(1, max_concurrency))
        self._timeout = timeout_s
        self._deadline = deadline_s
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._session = session  # tests pass a session whose transport is faked; built on first use otherwise
        self._yf: Any = None
        self._lock = threading.Lock()

    def _sdk(self) -> tuple[Any, "YahooSession"]:
        with self._lock:
            if self._yf is None:
                import warnings

                import yfinance as yf  # heavy (pandas, curl_cffi): only on first use

                from shared.market.providers.yahoo_session import YahooSession

                # history(raise_errors=True) is deprecated in favour of a process-wide flag we do not want to flip.
                warnings.filterwarnings("ignore", message=".*raise_errors.*deprecated", category=DeprecationWarning)
                # yfinance logs every failure it hides at ERROR ("possibly delisted" during an outage): the adapter
                # classifies them and the chain logs each once with its class, so its own lines are only noise.
                logging.getLogger("yfinance").setLevel(logging.CRITICAL)
                if self._session is None:
                    self._session = YahooSession(timeout_s=self._timeout, deadline_s=self._deadline)
                self._yf = yf
            assert self._session is not None
            return self._yf, self._session

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the `max_concurrency` call slots. Waiting for one behind calls hung on Yahoo holds a worker thread
        of the shared pool (every API request runs there): the wait is bounded by the call's deadline too."""
        if not self._sem.acquire(timeout=self._deadline):
            raise MarketDataUnavailable(f"Yahoo Finance is busy: no call slot within {self._deadline:g} s", provider=NAME)
        try:
            yield
        finally:
            self._sem.release()

    @contextmanager
    def _call(self, symbol: str | None) -> Iterator[tuple[Any, "YahooSession", "Observation"]]:
        yf, session = self._sdk()
        with self._slot(), session.observe() as obs:
            try:
                yield yf, session, obs
            except ApiError:
                raise
            except Exception as exc:  # noqa: BLE001 - every SDK error is classified
                evidence = outcome_of_exchanges(obs.finals(), symbol)
                missing = {c.__name__ for c in type(exc).__mro__} & {"YFTzMissingError", "YFPricesMissingError"}
                if evidence is not None and (not isinstance(evidence, NotFound) or missing):
                    mapped = evidence
                else:
                    mapped = map_yfinance_error(exc, symbol)
                logger.info("yahoo call failed", extra={"symbol": symbol, "error": type(exc).__name__, "mapped": type(mapped).__name__})
                raise mapped from None
            finally:
                if obs.failed:
                    # yfinance keeps GET answers (failed ones too) in an in-process LRU: drop them so the next
                    # call asks Yahoo again instead of replaying this failure as an empty result.
                    yf.data.YfData.cache_get.cache_clear()

    @staticmethod
    def _no_data(obs: "Observation", symbol: str | None, what: str, path_suffix: str | None = None) -> ApiError:
        return outcome_of_exchanges(obs.finals(path_suffix), symbol) or MarketDataUnavailable(
            f"Yahoo returned no {what}", provider=NAME)

    @staticmethod
    def _raise_failure(obs: "Observation", symbol: str | None) -> None:
        """A call whose data request failed did not answer, whatever partial result yfinance made of it."""
        evidence = outcome_of_exchanges(obs.finals(), symbol)
        if evidence is not None and not isinstance(evidence, NotFound):
            raise evidence

    def get_quote(self, symbol: str) -> Quote:
        with self._call(symbol) as (yf, session, obs):
            fi = yf.Ticker(symbol, session=session).fast_info
            data: dict[str, Any] = {}
            # Only keys served from the one chart request: in yfinance 1.7 `previousClose` and `marketCap` each
            # cost extra HTTP round trips (previousClose is read only as a fallback; market cap is in fundamentals).
            for k in ("lastPrice", "regularMarketPreviousClose", "previousClose", "open", "dayHigh", "dayLow",
                      "lastVolume", "currency"):
                if k == "previousClose" and data.get("regularMarketPreviousClose") is not None:
                    continue
                try:
                    data[k] = fi.get(k)
                except (KeyError, IndexError, TypeError):
                    # fast_info reads chart metadata lazily and hides the HTTP answer: a missing key
                    # ('currentTradingPeriod') follows an outage as much as an unknown symbol.
                    data[k] = None
            if num(data.get("lastPrice")) is None:
                raise self._no_data(obs, symbol, f"price for {symbol}")
        return normalize_quote(symbol, data, self._clock())

    def get_quotes_batch(self, symbols: Sequence[str]) -> dict[str, Quote | ApiError]:
        syms = list(dict.fromkeys(s.upper() for s in symbols))
        if not syms:
            return {}
        with self._call(None) as (yf, session, obs):
            # threads=False: one request at a time on the shared session (see class docstring); every request
            # is then made on this thread and recorded per symbol.
            df = yf.download(syms, period="5d", interval="1d", group_by="ticker", auto_adjust=False, progress=False,
                             threads=False, timeout=self._timeout, multi_level_index=True, session=session)
            records: dict[str, list[dict[str, Any]]] = {}
            if df is not None and not df.empty:
                top = set(df.columns.get_level_values(0))
                for s in syms:
                    if s in top:
                        records[s] = df[s].reset_index().to_dict("records")
            quotes = normalize_download(syms, records, self._clock())
            out: dict[str, Quote | ApiError] = {}
            for s in syms:
                out[s] = quotes.get(s) or self._no_data(obs, s, f"price for {s}", f"/v8/finance/chart/{s}")
        return out

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
        with self._call(symbol) as (yf, session, obs):
            t = yf.Ticker(symbol, session=session)
            df = t.history(**kwargs)
            rows = [] if df is None or df.empty else df.reset_index().to_dict("records")
            if not rows:
                raise self._no_data(obs, symbol, f"bars for {symbol}")
            try:
                currency = (t.history_metadata or {}).get("currency")
            except Exception:  # noqa: BLE001 - metadata is optional
                currency = None
        return normalize_history(symbol, interval, rows, self._clock(), currency)

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        with self._call(symbol) as (yf, session, obs):
            info = dict(yf.Ticker(symbol, session=session).get_info() or {})
            # A failed quoteSummary leaves a partial dict (v7 fields, or just trailingPegRatio): never cache that.
            self._raise_failure(obs, symbol)
            if not (info.get("longName") or info.get("shortName") or info.get("quoteType")):
                raise self._no_data(obs, symbol, f"profile for {symbol}")
        return normalize_fundamentals(symbol, info, self._clock())

    def get_news(self, symbol: str, limit: int = 10) -> News:
        with self._call(symbol) as (yf, session, obs):
            items = yf.Ticker(symbol, session=session).get_news(count=limit) or []
            # yfinance answers [] when the news request failed: only an answered request's [] means "no news".
            self._raise_failure(obs, symbol)
        return normalize_news(symbol, list(items), self._clock(), limit)

    def search_symbols(self, query: str, limit: int = 10) -> list[SymbolMatch]:
        with self._call(None) as (yf, session, obs):
            quotes = yf.Search(query, max_results=limit, news_count=0, lists_count=0, recommended=0,
                               session=session, timeout=self._timeout, raise_errors=True).quotes or []
            self._raise_failure(obs, None)  # a failed search is [] in yfinance, not "no match"
        return normalize_search(list(quotes), limit)
