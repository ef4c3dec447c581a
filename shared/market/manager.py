"""DataManager: the one entry point for market data (quotes, history, fundamentals, news, indicators, symbols).

Guarantees, for every public method:
- Arguments are validated by their argument model (``shared.market.args``; ValidationFailed, 422) first.
- Providers are asked in the order configured per data type (``settings.market.providers``) through one
  chain (``shared.market.chain``): the next one only when the previous failed, ``provenance.fallback_from``
  names those that failed, and one series always comes from one source.
- Every datum carries provenance: source, as_of, fetched_at, cache_age_s, stale (+ stale_reason).
- Answers are cached per data type with stale-while-revalidate (``shared.market.swr``); quotes follow NYSE
  hours. When every provider fails, a cached value is served flagged stale with the reason; otherwise the
  caller gets the class of the failure (502/503 naming provider and outcome), never an empty 200. Only
  NotFound (an upstream positively saying the symbol does not exist) is a 404.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared.errors import (
    ApiError,
    MarketDataUnavailable,
    NotFound,
    UpstreamError,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    UpstreamUnsupported,
    ValidationFailed,
)
from shared.market import indicators as ind
from shared.market.args import MAX_BATCH, HistoryArgs, NewsArgs, QuotesArgs, SearchArgs, SymbolArgs
from shared.market.chain import ProviderChain
from shared.market.hours import NEW_YORK, price_fresh_seconds
from shared.market.models import (
    Bar, Fundamentals, History, IndicatorPoint, IndicatorSeries, News, Provenance, Quote, QuoteError, SymbolMatch,
)
from shared.market.periods import INTRADAY, date_range
from shared.market.protocols import CacheLike, SingleFlightLike, SnapshotSink
from shared.market.swr import Request, SwrCache
from shared.market.symbols import normalize_symbol
from shared.resilience import BreakerBoard, BreakerPolicy, outcome_of

if TYPE_CHECKING:  # pragma: no cover
    from shared.config.models import Settings

logger = logging.getLogger(__name__)
_UPSTREAM: dict[str, type[UpstreamError]] = {"rate_limited": UpstreamRateLimited, "misconfigured": UpstreamMisconfigured,
                                             "unsupported": UpstreamUnsupported}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DataManager:
    """Market data with provider fallback, provenance, per-type SWR caching, single-flight and breakers.

    ``settings.market``: providers (order per data type), breaker_*, refresh_batch_size, core_symbols; TTLs
    come from ``cache.ttl_for``. ``providers`` override what ``provider_factory`` would build by name;
    ``snapshot_sink`` persists bars and quotes best-effort; ``executor.submit`` runs background refreshes.
    """

    def __init__(self, settings: "Settings", cache: CacheLike, singleflight: SingleFlightLike,
                 providers: dict[str, Any] | None = None, clock: Callable[[], datetime] = _utcnow,
                 snapshot_sink: SnapshotSink | None = None, executor: Any = None, *,
                 provider_factory: Callable[[str], Any] | None = None, swr_factor: float = 24.0,
                 stale_if_error_s: float = 86400.0) -> None:
        self._market = settings.market
        self._cache = cache
        self._sf = singleflight
        self._clock = clock
        self._sink = snapshot_sink
        policy = BreakerPolicy(failure_threshold=self._market.breaker_failure_threshold, cooldown_s=self._market.breaker_cooldown_s)
        self.chain = ProviderChain(self._market.providers, BreakerBoard(policy, clock=self._now),
                                   providers=providers, factory=provider_factory)
        self.swr = SwrCache(cache, singleflight, self._now, submit=executor.submit if executor is not None else None,
                            swr_factor=swr_factor, stale_if_error_s=stale_if_error_s)

    # ------------------------------------------------------------------ public API
    def get_quote(self, symbol: str) -> Quote:
        """Latest quote for one symbol."""
        return self.swr.serve(self._quote_req(SymbolArgs.parse(symbol=symbol).symbol))

    def get_quotes(self, symbols: Sequence[str]) -> list[Quote | QuoteError]:
        """Quotes for up to 50 symbols, in request order (duplicates removed); per-symbol failures become QuoteError.

        Symbols not servable from the cache are fetched together, one batched upstream call where a provider batches.
        """
        raw = QuotesArgs.parse(symbols=list(symbols) if isinstance(symbols, (list, tuple)) else symbols).symbols
        order: list[str] = []
        invalid: dict[str, QuoteError] = {}
        for item in raw:
            try:
                sym = normalize_symbol(item)
            except ValidationFailed as exc:
                invalid[str(item)] = QuoteError.of(str(item), exc)
                sym = str(item)
            if sym not in order:
                order.append(sym)
        missing = [s for s in order if s not in invalid and not self.swr.servable(self._key("quote", s))]
        settled = self._fetch_quotes(missing) if len(missing) > 1 else {}
        out: list[Quote | QuoteError] = []
        for s in order:
            try:
                out.append(invalid.get(s) or self.swr.serve(self._quote_req(s, settled.get(s))))
            except ApiError as exc:
                out.append(QuoteError.of(s, exc))
        return out

    def get_history(self, symbol: str, period: str = "1mo", interval: str = "1d", start: Any = None, end: Any = None) -> History:
        """OHLCV bars from one provider; falls back to persisted bars (snapshot sink) when nothing else answers."""
        today = self._clock().astimezone(NEW_YORK).date()
        a = HistoryArgs.parse(symbol=symbol, period=period, interval=interval, start=start, end=end, context={"today": today})
        return self.swr.serve(self._history_req(a))

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        """Company profile and key ratios (cached as fundamental_data)."""
        sym = SymbolArgs.parse(symbol=symbol).symbol
        load = self._loader("fundamentals", sym, lambda p: p.get_fundamentals(sym), "fundamental_data")
        return self.swr.serve(Request("fundamental_data", self._key("fundamentals", sym), load, Fundamentals.model_validate, f"fundamentals {sym}"))

    def get_news(self, symbol: str, limit: int = 10) -> News:
        """Up to ``limit`` (1-50) recent items, newest first; an empty list is a valid answer for news."""
        a = NewsArgs.parse(symbol=symbol, limit=limit)
        load = self._loader("news", a.symbol, lambda p: p.get_news(a.symbol, a.limit), "news_data")
        return self.swr.serve(Request("news_data", self._key("news", a.symbol, str(a.limit)), load, News.model_validate, f"news {a.symbol}"))

    def get_indicators(self, symbol: str, names: Sequence[str] | str) -> list[IndicatorSeries]:
        """Indicators computed locally from daily history (conventions: ``shared.market.indicators``).

        All series of one answer come from the same history fetch (same source and provenance.fetched_at),
        which is read at most once per call.
        """
        sym = SymbolArgs.parse(symbol=symbol).symbol
        specs = ind.parse_indicators([n for n in names.split(",") if n.strip()] if isinstance(names, str) else list(names or []))
        lookback = max(s.lookback for s in specs)
        period = "1y" if lookback <= 200 else "2y" if lookback <= 450 else "5y"
        memo: dict[str, History] = {}
        active = True

        def history() -> History:
            if not active:  # a background refresh later on: read the (by then newer) history anew
                return self.get_history(sym, period=period, interval="1d")
            if "h" not in memo:
                memo["h"] = self.get_history(sym, period=period, interval="1d")
            return memo["h"]

        try:
            reqs = [self._indicator_req(sym, spec, period, history) for spec in specs]
            out = [self.swr.serve(r) for r in reqs]
            if len({s.provenance.fetched_at for s in out}) > 1:
                # Series cached at different times came from different history fetches: rebuild the odd ones
                # from one history so the answer is consistent.
                anchor = history().provenance.fetched_at
                for i, r in enumerate(reqs):
                    if out[i].provenance.fetched_at != anchor:
                        out[i] = self.swr.render(r, self.swr.store(r.key, *r.load(), r.data_type))
        finally:
            active = False
        return out

    def search_symbols(self, q: str, limit: int = 10) -> list[SymbolMatch]:
        """Symbols matching a 1-64 character query, best first (cached as symbols)."""
        a = SearchArgs.parse(q=q, limit=limit)

        def load() -> tuple[Any, float]:
            matches = self.chain.call("search", f"search {a.q!r}", lambda p: p.search_symbols(a.q, a.limit))
            return [m.model_dump(mode="json") for m in matches], self._cache.ttl_for("symbols")

        return self.swr.serve(Request("symbols", self._key("search", a.q.lower(), str(a.limit)), load,
                                      lambda v: [SymbolMatch.model_validate(m) for m in v], f"search {a.q!r}"))

    def get_symbol(self, symbol: str) -> SymbolMatch:
        """Metadata for one symbol (an exact match from the search providers) or NotFound."""
        sym = SymbolArgs.parse(symbol=symbol).symbol

        def load() -> tuple[Any, float]:
            matches = self.chain.call("search", f"symbol {sym}", lambda p: p.search_symbols(sym, 10))
            exact = next((m for m in matches if m.symbol.upper() == sym), None)
            if exact is None:  # the providers answered, and none lists it
                raise NotFound(f"Unknown symbol {sym}", extra={"symbol": sym})
            return exact.model_dump(mode="json"), self._cache.ttl_for("symbols")

        return self.swr.serve(Request("symbols", self._key("symbol", sym), load, SymbolMatch.model_validate, f"symbol {sym}"))

    def refresh_quotes(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        """Warm the quote cache (timer): symbols not fresh are fetched in batches of ``refresh_batch_size``.

        Returns a summary: symbols, batches, upstream_calls, refreshed, skipped_fresh, failures, duration_ms.
        """
        started = time.perf_counter()
        calls_before = self.chain.upstream_calls()
        wanted: list[str] = []
        failures: dict[str, str] = {}
        for raw in symbols if symbols is not None else self._market.core_symbols:
            try:
                s = normalize_symbol(raw)
            except ValidationFailed:
                failures[str(raw)] = "invalid symbol"
                continue
            if s not in wanted:
                wanted.append(s)
        stale = [s for s in wanted if not self.swr.fresh(self._key("quote", s))]
        size = max(1, min(MAX_BATCH, int(self._market.refresh_batch_size)))
        batches = [stale[i : i + size] for i in range(0, len(stale), size)]
        for batch in batches:
            failures.update({s: f"{e.status} {e.title}" for s, e in self._fetch_quotes(batch).items()})
        return {
            "symbols": len(wanted),
            "batches": len(batches),
            "upstream_calls": self.chain.upstream_calls() - calls_before,
            "refreshed": len(stale) - sum(1 for s in stale if s in failures),
            "skipped_fresh": len(wanted) - len(stale),
            "failures": failures,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    def check_providers(self) -> dict[str, str]:
        """Build every configured provider now (cheap: SDKs load on first call), so one that cannot run as
        configured is logged at start-up rather than at its first request; returns those, with the reason."""
        return self.chain.check()

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while every data type has a usable provider; misconfigured providers are named."""
        return self.chain.health()

    def stats(self) -> dict[str, Any]:
        """Upstream calls per provider and outcome, cache hits/stale/misses per data type, breaker states."""
        return {**self.chain.stats(), **self.swr.stats()}

    def close(self) -> None:
        """Stop background refresh workers this manager created (if any)."""
        self.swr.close()

    # ------------------------------------------------------------------ requests
    def _now(self) -> float:
        return self._clock().timestamp()

    def _key(self, *parts: str) -> str:
        return self._cache.key("market", *parts)

    def _loader(self, kind: str, sym: str, call: Callable[[Any], Any], data_type: str) -> Callable[[], tuple[Any, float]]:
        return lambda: (self.chain.call(kind, f"{kind} {sym}", call).model_dump(mode="json"), self._cache.ttl_for(data_type))

    def _quote_req(self, sym: str, settled: ApiError | None = None) -> Request[Quote]:
        def load() -> tuple[Any, float]:
            if settled is not None:  # this request's batch already asked every provider
                raise settled
            quote = self.chain.call("quote", f"quote {sym}", lambda p: p.get_quote(sym))
            self._sink_call("save_snapshot", quote)
            return quote.model_dump(mode="json"), price_fresh_seconds(self._clock(), self._cache.ttl_for("price_data"))

        return Request("price_data", self._key("quote", sym), load, Quote.model_validate, f"quote {sym}")

    def _fetch_quotes(self, symbols: list[str]) -> dict[str, ApiError]:
        """Price ``symbols`` together (shared among concurrent identical batches) into the cache; the failures."""
        digest = hashlib.sha1(",".join(sorted(symbols)).encode()).hexdigest()[:16]
        failed = self._sf.do(self._key("quote_batch", digest), lambda: self._batch(symbols))
        return {s: _error(s, e) for s, e in failed.items()}

    def _batch(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        got = self.chain.call_many("quote", symbols, lambda p, s: p.get_quote(s), "get_quotes_batch",
                                   lambda p, syms: p.get_quotes_batch(syms))
        fresh = price_fresh_seconds(self._clock(), self._cache.ttl_for("price_data"))
        failed: dict[str, dict[str, Any]] = {}
        for sym, item in got.items():
            if isinstance(item, ApiError):  # JSON: a waiter on another instance gets this too
                failed[sym] = {"outcome": outcome_of(item), "detail": item.detail, "extra": item.extra}
                continue
            self.swr.store(self._key("quote", sym), item.model_dump(mode="json"), fresh, "price_data")
            self._sink_call("save_snapshot", item)
        return failed

    def _history_req(self, a: HistoryArgs) -> Request[History]:
        span = f"{a.start or ''}_{a.end or ''}" if (a.start or a.end) else a.period

        def load() -> tuple[Any, float]:
            hist = self.chain.call("history", f"history {a.symbol}", lambda p: p.get_history(
                a.symbol, period=a.period, interval=a.interval, start=a.start, end=a.end))
            if a.interval == "1d":
                self._sink_call("save_bars", a.symbol, a.interval, hist.bars)
            fresh = price_fresh_seconds(self._clock(), self._cache.ttl_for("price_data")) if a.interval in INTRADAY \
                else self._cache.ttl_for("historical_data")
            return hist.model_dump(mode="json"), fresh

        return Request("historical_data", self._key("history", a.symbol, a.interval, span), load, History.model_validate,
                       f"history {a.symbol} {a.interval} {span}", lambda exc: self._persisted_bars(a, exc))

    def _persisted_bars(self, a: HistoryArgs, exc: ApiError) -> History | None:
        """Bars saved earlier, served flagged stale when no provider answers (never for NotFound)."""
        if self._sink is None or isinstance(exc, (NotFound, ValidationFailed)):
            return None
        first, last = date_range(a.period, self._clock().astimezone(NEW_YORK).date(), a.start, a.end)
        try:
            saved = [b if isinstance(b, Bar) else Bar.model_validate(b) for b in self._sink.load_bars(a.symbol, a.interval, first, last) or []]
            # One bar per stamp; a daily bar saved before stamps moved to the exchange's midnight shares its UTC day.
            by_slot = {(b.ts.date() if a.interval == "1d" else b.ts): b for b in sorted(saved, key=lambda b: b.ts)}
            bars = list(by_slot.values())
        except Exception:  # noqa: BLE001 - best effort
            logger.warning("snapshot sink load_bars failed", extra={"symbol": a.symbol}, exc_info=True)
            return None
        if not bars:
            return None
        now = self._clock()
        return History(symbol=a.symbol, interval=a.interval, bars=bars, provenance=Provenance(
            source="snapshot", as_of=bars[-1].ts, fetched_at=now, stale=True, stale_reason=f"{exc.title}: {exc.detail}",
            cache_age_s=max(0.0, (now - bars[-1].ts).total_seconds()),
            fallback_from=[a["provider"] for a in exc.extra.get("attempted", [])]))

    def _indicator_req(self, sym: str, spec: ind.IndicatorSpec, period: str, history: Callable[[], History]) -> Request[IndicatorSeries]:
        def load() -> tuple[Any, float]:
            hist = history()
            rows = ind.compute(spec, [b.high for b in hist.bars], [b.low for b in hist.bars], [b.close for b in hist.bars])
            points = [IndicatorPoint(ts=b.ts, value=v, values=vs) for b, (v, vs) in zip(hist.bars, rows) if v is not None]
            series = IndicatorSeries(symbol=sym, name=spec.name, points=points, provenance=hist.provenance)
            # Computed from stale bars: worth recomputing as soon as fresh bars arrive.
            return series.model_dump(mode="json"), 0.0 if hist.provenance.stale else float(self._cache.ttl_for("technical_data"))

        return Request("technical_data", self._key("indicator", sym, spec.name, period), load, IndicatorSeries.model_validate,
                       f"indicator {sym} {spec.name}")

    def _sink_call(self, method: str, *args: Any) -> None:
        if self._sink is None:
            return
        try:
            getattr(self._sink, method)(*args)
        except Exception:  # noqa: BLE001 - persistence is best effort, never fails a request
            logger.warning("snapshot sink failed", extra={"method": method}, exc_info=True)


def _error(symbol: str, e: dict[str, Any]) -> ApiError:
    """A batch failure back from its JSON form (it may come from a single-flight leader on another instance)."""
    if e["outcome"] == "not_found":
        return NotFound(e["detail"], extra={"symbol": symbol})
    extra = dict(e.get("extra") or {})
    retry_after = extra.pop("retry_after", None) if e["outcome"] == "rate_limited" else None
    cls = _UPSTREAM.get(e["outcome"], MarketDataUnavailable)
    kw: dict[str, Any] = {"retry_after": retry_after} if cls is UpstreamRateLimited else {}
    return cls(e["detail"], provider=extra.pop("provider", None), extra=extra, **kw)
