"""DataManager: the one entry point for market data (quotes, history, fundamentals, news, indicators, symbols).

Guarantees, for every public method:
- Arguments are validated (ValidationFailed, 422) before anything else happens.
- Providers are tried in the order configured per data type (``settings.market.providers``);
  the next one is asked only when the previous one failed (error, throttle, open breaker), and
  ``provenance.fallback_from`` lists those that failed. One series always comes from one source.
- Every returned datum carries provenance: source, as_of, fetched_at, cache_age_s, stale.
- Answers are cached per data type with the configured TTLs (quotes follow NYSE hours: while
  the exchange is closed a quote stays fresh until the next open). Past its TTL a value is
  served flagged ``stale`` while one background refresh runs; when every provider fails and a
  stale value exists, that value is served (flagged) instead of an error.
- Concurrent identical misses share one upstream call (single-flight).
- Each provider sits behind its own circuit breaker, visible in ``health_check()`` and ``stats()``.
- NotFound (404) from a provider is authoritative and not retried elsewhere; when nothing can
  answer the caller gets MarketDataUnavailable (502) or UpstreamRateLimited, never an empty 200.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence

from shared.errors import ApiError, MarketDataUnavailable, NotFound, UpstreamRateLimited, ValidationFailed
from shared.market import indicators as ind
from shared.market.hours import NEW_YORK, price_fresh_seconds
from shared.market.models import (
    Bar,
    Fundamentals,
    History,
    IndicatorPoint,
    IndicatorSeries,
    News,
    Provenance,
    Quote,
    QuoteError,
    SymbolMatch,
)
from shared.market.periods import INTRADAY, date_range, validate_history_args
from shared.market.protocols import CacheLike, ProviderUnsupported, SingleFlightLike, SnapshotSink
from shared.market.symbols import normalize_symbol
from shared.resilience import OPEN, BreakerPolicy, CircuitBreaker

if TYPE_CHECKING:  # pragma: no cover
    from shared.config.models import Settings

logger = logging.getLogger(__name__)

MAX_BATCH = 50
# Which provider list (settings.market.providers) and which cache TTL each data type uses.
KINDS = {
    "quote": "price_data",
    "history": "historical_data",
    "fundamentals": "fundamental_data",
    "news": "news_data",
    "search": "symbols",
}
_METHODS = {
    "quote": "get_quote",
    "history": "get_history",
    "fundamentals": "get_fundamentals",
    "news": "get_news",
    "search": "search_symbols",
}


@dataclass
class _Req:
    """One cacheable request: where it lives in the cache and how to load/parse it."""

    data_type: str
    key: str
    load: Callable[[], tuple[Any, float]]  # -> (JSON value, fresh seconds)
    parse: Callable[[Any], Any]
    describe: str
    last_resort: Callable[[BaseException], Any] | None = None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DataManager:
    """Market data with provider fallback, provenance, per-type caching, SWR, single-flight and breakers.

    Args:
        settings: ``Settings``; reads ``market.providers`` (order per data type: quote, history,
            fundamentals, news, search), ``market.breaker_*``, ``market.refresh_batch_size``,
            ``market.core_symbols``. TTLs come from ``cache.ttl_for(data_type)``.
        cache / singleflight: ``shared.cache.CacheBackend`` / ``SingleFlight`` (or anything CacheLike / SingleFlightLike).
        providers: provider objects by name (they override what ``provider_factory`` would build).
        clock: returns the current aware UTC datetime (tests pass a fixed one).
        snapshot_sink: optional persistence, called best-effort (see ``SnapshotSink``).
        executor: runs background refreshes (``submit(fn)``); a 2-thread pool is created when None.
        provider_factory: builds a provider by name on first use, or returns None when it cannot run.
        swr_factor: a value past its TTL is served stale for ``swr_factor * TTL`` more (then refreshed
            synchronously); it is kept ``stale_if_error_s`` beyond that to serve when every provider fails.
    """

    def __init__(
        self,
        settings: "Settings",
        cache: CacheLike,
        singleflight: SingleFlightLike,
        providers: dict[str, Any] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        snapshot_sink: SnapshotSink | None = None,
        executor: Any = None,
        *,
        provider_factory: Callable[[str], Any] | None = None,
        swr_factor: float = 24.0,
        stale_if_error_s: float = 86400.0,
    ) -> None:
        self._settings = settings
        self._market = settings.market
        self._cache = cache
        self._sf = singleflight
        self._providers: dict[str, Any] = dict(providers or {})
        self._provider_factory = provider_factory
        self._unavailable: dict[str, str] = {}  # name -> reason it could not be built
        self._clock = clock
        self._sink = snapshot_sink
        self._executor = executor
        self._own_executor = False
        self._swr_factor = swr_factor
        self._stale_if_error_s = stale_if_error_s
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._refreshing: set[str] = set()
        self._upstream: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._cache_stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._bg: dict[str, int] = defaultdict(int)

    # ------------------------------------------------------------------ public API
    def get_quote(self, symbol: str) -> Quote:
        """Latest quote for one symbol."""
        sym = normalize_symbol(symbol)
        return self._serve(self._quote_req(sym))

    def get_quotes(self, symbols: Sequence[str]) -> list[Quote | QuoteError]:
        """Quotes for up to 50 symbols, in request order (duplicates removed); per-symbol failures become QuoteError.

        Cache misses are fetched with one batched upstream call where the provider supports it.
        """
        if not isinstance(symbols, (list, tuple)) or not symbols:
            raise ValidationFailed("No symbols", errors={"symbols": ["At least one symbol is required"]})
        if len(symbols) > MAX_BATCH:
            raise ValidationFailed("Too many symbols", errors={"symbols": [f"At most {MAX_BATCH} symbols per request"]})
        order: list[str] = []
        errors: dict[str, QuoteError] = {}
        for raw in symbols:
            try:
                sym = normalize_symbol(raw)
            except ValidationFailed as exc:
                errors[str(raw)] = _error_entry(str(raw), exc)
                order.append(str(raw))
                continue
            if sym not in order:
                order.append(sym)
        valid = [s for s in order if s not in errors]
        now = self._now_ts()
        missing = [s for s in valid if not self._fresh_or_swr(self._quote_req(s), now)]
        if len(missing) > 1:
            self._batch_fetch_shared(missing)
        out: list[Quote | QuoteError] = []
        for s in order:
            if s in errors:
                out.append(errors[s])
                continue
            try:
                out.append(self.get_quote(s))
            except ApiError as exc:
                out.append(_error_entry(s, exc))
        return out

    def get_history(
        self,
        symbol: str,
        period: str = "1mo",
        interval: str = "1d",
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> History:
        """OHLCV bars from one provider; falls back to persisted bars (snapshot sink) when nothing else answers."""
        sym = normalize_symbol(symbol)
        today = self._clock().astimezone(NEW_YORK).date()
        period, interval, s, e = validate_history_args(period, interval, start, end, today)
        return self._serve(self._history_req(sym, period, interval, s, e))

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        """Company profile and key ratios (cached as fundamental_data)."""
        sym = normalize_symbol(symbol)
        key = self._cache.key("market", "fundamentals", sym)

        def load() -> tuple[Any, float]:
            model = self._call_chain("fundamentals", sym, lambda p: p.get_fundamentals(sym))
            return model.model_dump(mode="json"), self._cache.ttl_for("fundamental_data")

        return self._serve(_Req("fundamental_data", key, load, Fundamentals.model_validate, f"fundamentals {sym}"))

    def get_news(self, symbol: str, limit: int = 10) -> News:
        """Up to ``limit`` (1-50) recent items, newest first; an empty list is a valid answer for news."""
        sym = normalize_symbol(symbol)
        limit = _check_limit(limit, 50)
        key = self._cache.key("market", "news", sym, str(limit))

        def load() -> tuple[Any, float]:
            model = self._call_chain("news", sym, lambda p: p.get_news(sym, limit))
            return model.model_dump(mode="json"), self._cache.ttl_for("news_data")

        return self._serve(_Req("news_data", key, load, News.model_validate, f"news {sym}"))

    def get_indicators(self, symbol: str, names: Sequence[str]) -> list[IndicatorSeries]:
        """Indicators computed locally from daily history (see ``shared.market.indicators`` for conventions).

        Each series is cached as technical data; all series of one answer are computed from the same history
        fetch (same source and provenance.fetched_at), which is read at most once per call.
        """
        sym = normalize_symbol(symbol)
        if isinstance(names, str):
            names = [n for n in names.split(",") if n.strip()]
        specs = ind.parse_indicators(list(names or []))
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
            out = [self._serve(r) for r in reqs]
            if len({s.provenance.fetched_at for s in out}) > 1:
                # Series cached at different times came from different history fetches: rebuild the odd ones
                # from one history so the answer is consistent.
                anchor = history().provenance.fetched_at
                for i, r in enumerate(reqs):
                    if out[i].provenance.fetched_at != anchor:
                        env = self._envelope(*r.load(), r.data_type)
                        self._write(r.key, env, r.data_type)
                        out[i] = self._render(r, env, self._now_ts(), stale=False)
        finally:
            active = False
        return out

    def search_symbols(self, q: str, limit: int = 10) -> list[SymbolMatch]:
        """Symbols matching a 1-64 character query, best first (cached as symbols)."""
        if not isinstance(q, str) or not q.strip() or len(q.strip()) > 64:
            raise ValidationFailed("Invalid query", errors={"q": ["Query must be 1-64 characters"]})
        limit = _check_limit(limit, 50)
        query = " ".join(q.split())
        key = self._cache.key("market", "search", query.lower(), str(limit))

        def load() -> tuple[Any, float]:
            matches = self._call_chain("search", query, lambda p: p.search_symbols(query, limit))
            return [m.model_dump(mode="json") for m in matches], self._cache.ttl_for("symbols")

        return self._serve(_Req("symbols", key, load, lambda v: [SymbolMatch.model_validate(m) for m in v], f"search {query!r}"))

    def get_symbol(self, symbol: str) -> SymbolMatch:
        """Metadata for one symbol (an exact match from the search providers) or NotFound."""
        sym = normalize_symbol(symbol)
        key = self._cache.key("market", "symbol", sym)

        def load() -> tuple[Any, float]:
            matches = self._call_chain("search", sym, lambda p: p.search_symbols(sym, 10))
            exact = next((m for m in matches if m.symbol.upper() == sym), None)
            if exact is None:
                raise NotFound(f"Unknown symbol {sym}", extra={"symbol": sym})
            return exact.model_dump(mode="json"), self._cache.ttl_for("symbols")

        return self._serve(_Req("symbols", key, load, SymbolMatch.model_validate, f"symbol {sym}"))

    def refresh_quotes(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        """Warm the quote cache (timer): symbols not fresh are fetched in batches of ``refresh_batch_size``.

        Returns a summary: symbols, batches, upstream_calls, refreshed, skipped_fresh, failures, duration_ms.
        """
        started = time.perf_counter()
        calls_before = self._upstream_total()
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
        now = self._now_ts()
        stale = [s for s in wanted if not self._is_fresh(self._quote_req(s), now)]
        size = max(1, min(MAX_BATCH, int(self._market.refresh_batch_size)))
        batches = [stale[i : i + size] for i in range(0, len(stale), size)]
        refreshed = 0
        for batch in batches:
            got = self._batch_fetch_shared(batch)
            for s in batch:
                if s in got:
                    refreshed += 1
                    continue
                req = self._quote_req(s)
                try:  # not priced by the batch call: the single-symbol path with its fallbacks
                    self._sf.do(req.key, lambda req=req: self._load(req))
                    refreshed += 1
                except ApiError as exc:
                    failures[s] = f"{exc.status} {exc.title}"
        return {
            "symbols": len(wanted),
            "batches": len(batches),
            "upstream_calls": self._upstream_total() - calls_before,
            "refreshed": refreshed,
            "skipped_fresh": len(wanted) - len(stale),
            "failures": failures,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while every data type has at least one usable provider (built, breaker not open)."""
        providers: dict[str, Any] = {}
        for name in self._all_names():
            provider = self._provider(name)  # building is cheap: SDKs load on first call
            if provider is None:
                providers[name] = {"state": "not_configured", "reason": self._unavailable.get(name)}
                continue
            providers[name] = self._breaker(name).snapshot()
            if callable(getattr(provider, "used_today", None)):
                try:
                    providers[name]["quota_used_today"] = provider.used_today()
                except Exception:  # noqa: BLE001 - informational only
                    pass
        degraded = []
        for kind in KINDS:
            names = self._names(kind)
            usable = [n for n in names if n not in self._unavailable and providers.get(n, {}).get("state") != OPEN]
            if not usable:
                degraded.append(kind)
        healthy = not degraded
        return healthy, {
            "component": "market_data",
            "status": "healthy" if healthy else "degraded",
            "providers": providers,
            "order": {k: self._names(k) for k in KINDS},
            "unavailable_data_types": degraded,
        }

    def stats(self) -> dict[str, Any]:
        """Upstream calls per provider and outcome, cache hits/stale/misses per data type, breaker states."""
        with self._lock:
            upstream = {p: dict(v) for p, v in self._upstream.items()}
            cache = {t: dict(v) for t, v in self._cache_stats.items()}
            bg = dict(self._bg)
        return {
            "upstream": upstream,
            "cache": cache,
            "background_refresh": bg,
            "breakers": {n: self._breaker(n).snapshot()["state"] for n in self._all_names() if n not in self._unavailable},
        }

    def close(self) -> None:
        """Stop the background executor this manager created (if any)."""
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ request builders
    def _quote_req(self, sym: str) -> _Req:
        key = self._cache.key("market", "quote", sym)

        def load() -> tuple[Any, float]:
            quote = self._call_chain("quote", sym, lambda p: p.get_quote(sym))
            self._sink_call("save_snapshot", quote)
            return quote.model_dump(mode="json"), self._price_fresh()

        return _Req("price_data", key, load, Quote.model_validate, f"quote {sym}")

    def _history_req(self, sym: str, period: str, interval: str, s: date | None, e: date | None) -> _Req:
        span = f"{s or ''}_{e or ''}" if (s or e) else period
        key = self._cache.key("market", "history", sym, interval, span)
        intraday = interval in INTRADAY

        def load() -> tuple[Any, float]:
            hist = self._call_chain(
                "history", sym, lambda p: p.get_history(sym, period=period, interval=interval, start=s, end=e)
            )
            if interval == "1d":
                self._sink_call("save_bars", sym, interval, hist.bars)
            fresh = self._price_fresh() if intraday else self._cache.ttl_for("historical_data")
            return hist.model_dump(mode="json"), fresh

        def last_resort(exc: BaseException) -> History | None:
            if self._sink is None or isinstance(exc, (NotFound, ValidationFailed)):
                return None
            today = self._clock().astimezone(NEW_YORK).date()
            first, last = date_range(period, today, s, e)
            try:
                bars = list(self._sink.load_bars(sym, interval, first, last) or [])
            except Exception:  # noqa: BLE001 - best effort
                logger.warning("snapshot sink load_bars failed", extra={"symbol": sym}, exc_info=True)
                return None
            if not bars:
                return None
            bars = [b if isinstance(b, Bar) else Bar.model_validate(b) for b in bars]
            bars.sort(key=lambda b: b.ts)
            attempted = list(getattr(exc, "extra", {}).get("attempted", []))
            return History(symbol=sym, interval=interval, bars=bars, provenance=Provenance(
                source="snapshot", as_of=bars[-1].ts, fetched_at=self._clock(), stale=True,
                cache_age_s=max(0.0, (self._clock() - bars[-1].ts).total_seconds()), fallback_from=attempted))

        return _Req("historical_data", key, load, History.model_validate, f"history {sym} {interval} {span}", last_resort)

    def _indicator_req(self, sym: str, spec: ind.IndicatorSpec, period: str, history: Callable[[], History]) -> _Req:
        key = self._cache.key("market", "indicator", sym, spec.name, period)

        def load() -> tuple[Any, float]:
            hist = history()
            rows = ind.compute(spec, [b.high for b in hist.bars], [b.low for b in hist.bars], [b.close for b in hist.bars])
            points = [IndicatorPoint(ts=b.ts, value=v, values=vs) for b, (v, vs) in zip(hist.bars, rows) if v is not None]
            # The bars' provenance as is (stale=True from stale bars; its age is recomputed on every read).
            series = IndicatorSeries(symbol=sym, name=spec.name, points=points, provenance=hist.provenance)
            # Computed from stale bars: worth recomputing as soon as fresh bars arrive.
            fresh = 0.0 if hist.provenance.stale else float(self._cache.ttl_for("technical_data"))
            return series.model_dump(mode="json"), fresh

        return _Req("technical_data", key, load, IndicatorSeries.model_validate, f"indicator {sym} {spec.name}")

    # ------------------------------------------------------------------ caching core
    def _now_ts(self) -> float:
        return self._clock().timestamp()

    def _price_fresh(self) -> float:
        return price_fresh_seconds(self._clock(), self._cache.ttl_for("price_data"))

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            env = self._cache.get_json(key)
        except Exception:  # noqa: BLE001 - a cache outage must not fail market data
            logger.warning("market cache read failed", exc_info=True)
            return None
        if isinstance(env, dict) and {"v", "fetched_at", "fresh_until", "swr_until"} <= env.keys():
            return env
        return None

    def _write(self, key: str, env: dict[str, Any], data_type: str) -> None:
        base = self._cache.ttl_for(data_type)
        # Physically keep the value well past its TTL: it is what we serve while revalidating,
        # and what we serve when every provider fails.
        keep = max(env["swr_until"] - env["fetched_at"] + self._stale_if_error_s, base)
        try:
            self._cache.set_json(key, env, ttl=int(math.ceil(keep)))
        except Exception:  # noqa: BLE001
            logger.warning("market cache write failed", exc_info=True)

    def _envelope(self, value: Any, fresh_s: float, data_type: str) -> dict[str, Any]:
        now = self._now_ts()
        swr = self._cache.ttl_for(data_type) * self._swr_factor
        return {"v": value, "fetched_at": now, "fresh_until": now + fresh_s, "swr_until": now + fresh_s + swr}

    def _is_fresh(self, req: _Req, now: float) -> bool:
        env = self._read(req.key)
        return env is not None and now < env["fresh_until"]

    def _fresh_or_swr(self, req: _Req, now: float) -> bool:
        env = self._read(req.key)
        return env is not None and now < env["swr_until"]

    def _render(self, req: _Req, env: dict[str, Any], now: float, stale: bool) -> Any:
        value = req.parse(env["v"])
        age = max(0.0, now - float(env["fetched_at"]))
        if isinstance(value, list) or not hasattr(value, "provenance"):
            return value
        fetched = value.provenance.fetched_at
        if fetched is not None:  # data derived from an earlier fetch (indicators from cached bars) is that old
            if fetched.tzinfo is None:
                fetched = fetched.replace(tzinfo=timezone.utc)
            age = max(age, now - fetched.timestamp())
        prov = value.provenance.model_copy(update={"cache_age_s": round(age, 3), "stale": stale or value.provenance.stale})
        return value.model_copy(update={"provenance": prov})

    def _count_cache(self, data_type: str, outcome: str) -> None:
        with self._lock:
            self._cache_stats[data_type][outcome] += 1

    def _serve(self, req: _Req) -> Any:
        now = self._now_ts()
        env = self._read(req.key)
        if env is not None and "not_found" in env:
            if now < env["fresh_until"]:
                self._count_cache(req.data_type, "hit")
                raise NotFound(env["not_found"], extra={"what": req.describe})
            env = None  # an expired negative entry: ask upstream again
        if env is not None:
            if now < env["fresh_until"]:
                self._count_cache(req.data_type, "hit")
                return self._render(req, env, now, stale=False)
            if now < env["swr_until"]:
                self._count_cache(req.data_type, "stale")
                self._refresh_in_background(req)
                return self._render(req, env, now, stale=True)
        self._count_cache(req.data_type, "miss")
        try:
            fresh_env = self._sf.do(req.key, lambda: self._load(req))
        except ApiError as exc:
            if env is not None and not isinstance(exc, (NotFound, ValidationFailed)):
                logger.warning("serving stale market data after upstream failure", extra={"what": req.describe})
                self._count_cache(req.data_type, "stale_on_error")
                return self._render(req, env, self._now_ts(), stale=True)
            if req.last_resort is not None:
                fallback = req.last_resort(exc)
                if fallback is not None:
                    return fallback
            raise
        return self._render(req, fresh_env, self._now_ts(), stale=False)

    def _load(self, req: _Req) -> dict[str, Any]:
        """Runs once per key among concurrent callers: re-check the cache, then ask the providers."""
        env = self._read(req.key)
        if env is not None and self._now_ts() < env["fresh_until"]:
            if "not_found" in env:
                raise NotFound(env["not_found"], extra={"what": req.describe})
            return env  # another caller (or instance) refreshed it meanwhile
        value, fresh_s = req.load()
        env = self._envelope(value, fresh_s, req.data_type)
        self._write(req.key, env, req.data_type)
        return env

    def _refresh_in_background(self, req: _Req) -> None:
        with self._lock:
            if req.key in self._refreshing:
                return
            self._refreshing.add(req.key)
            self._bg["scheduled"] += 1

        def job() -> None:
            try:
                self._sf.do(req.key, lambda: self._load(req))
                outcome = "ok"
            except NotFound as exc:
                # Authoritative (e.g. delisted): replace the stale value with a short negative entry, so
                # requests answer 404 at once instead of serving stale data and asking upstream each time.
                outcome = "not_found"
                now = self._now_ts()
                neg_s = min(float(self._cache.ttl_for(req.data_type)), 300.0)
                try:
                    self._cache.set_json(req.key, {"v": None, "not_found": exc.detail, "fetched_at": now,
                                                   "fresh_until": now + neg_s, "swr_until": now + neg_s}, ttl=int(math.ceil(neg_s)))
                except Exception:  # noqa: BLE001
                    logger.warning("market cache write failed", exc_info=True)
            except Exception as exc:  # noqa: BLE001 - the stale value stays in place
                outcome = "failed"
                logger.info("background market refresh failed", extra={"what": req.describe, "error": type(exc).__name__})
            finally:
                with self._lock:
                    self._refreshing.discard(req.key)
            with self._lock:
                self._bg[outcome] += 1

        try:
            self._get_executor().submit(job)
        except Exception:  # noqa: BLE001 - e.g. executor shut down: just don't refresh now
            with self._lock:
                self._refreshing.discard(req.key)
                self._bg["not_scheduled"] += 1

    def _get_executor(self) -> Any:
        with self._lock:
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="market-refresh")
                self._own_executor = True
            return self._executor

    # ------------------------------------------------------------------ providers
    def _names(self, kind: str) -> list[str]:
        return list(self._market.providers.get(kind) or [])

    def _all_names(self) -> list[str]:
        seen: list[str] = []
        for kind in KINDS:
            for n in self._names(kind):
                if n not in seen:
                    seen.append(n)
        return seen

    def _provider(self, name: str) -> Any:
        with self._lock:
            if name in self._providers:
                return self._providers[name]
            if name in self._unavailable:
                return None
        built = None
        reason = "no such provider"
        if self._provider_factory is not None:
            try:
                built = self._provider_factory(name)
            except Exception as exc:  # noqa: BLE001 - a provider that cannot be built is skipped, loudly
                reason = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if built is None:
                self._unavailable[name] = reason
                logger.warning("market data provider unavailable", extra={"provider": name, "reason": reason})
                return None
            return self._providers.setdefault(name, built)

    def _breaker(self, name: str) -> CircuitBreaker:
        with self._lock:
            br = self._breakers.get(name)
            if br is None:
                policy = BreakerPolicy(failure_threshold=self._market.breaker_failure_threshold,
                                       cooldown_s=self._market.breaker_cooldown_s)
                br = self._breakers[name] = CircuitBreaker(name, policy, clock=self._now_ts)
            return br

    def _count_upstream(self, name: str, outcome: str) -> None:
        with self._lock:
            self._upstream[name][outcome] += 1

    def _upstream_total(self) -> int:
        with self._lock:
            return sum(n for p in self._upstream.values() for o, n in p.items() if o != "breaker_open")

    def _call_chain(self, kind: str, subject: str, call: Callable[[Any], Any], *, method: str | None = None) -> Any:
        """Ask providers in order until one answers; stamp ``fallback_from`` on the answer."""
        method = method or _METHODS[kind]
        failed: list[str] = []
        rate_limited: list[str] = []
        for name in self._names(kind):
            provider = self._provider(name)
            if provider is None or not callable(getattr(provider, method, None)):
                continue
            breaker = self._breaker(name)
            if not breaker.allow():
                self._count_upstream(name, "breaker_open")
                failed.append(name)
                continue
            try:
                result = call(provider)
            except ProviderUnsupported:
                breaker.release()  # not a probe: says nothing about the provider's health
                self._count_upstream(name, "unsupported")
                continue
            except (NotFound, ValidationFailed):
                breaker.record_success()
                self._count_upstream(name, "not_found")
                raise
            except UpstreamRateLimited as exc:
                breaker.record_failure(rate_limited=True, error=exc.title)
                self._count_upstream(name, "rate_limited")
                failed.append(name)
                rate_limited.append(name)
                logger.warning("market data provider rate limited", extra={"provider": name, "what": f"{kind} {subject}"})
                continue
            except Exception as exc:  # noqa: BLE001 - any provider failure means: try the next one
                breaker.record_failure(error=exc.title if isinstance(exc, ApiError) else type(exc).__name__)
                self._count_upstream(name, "error")
                failed.append(name)
                if not isinstance(exc, ApiError):
                    logger.exception("market data provider raised an unexpected error", extra={"provider": name})
                else:
                    logger.warning("market data provider failed", extra={"provider": name, "what": f"{kind} {subject}", "error": exc.title})
                continue
            breaker.record_success()
            self._count_upstream(name, "ok")
            return _stamp_fallback(result, failed)
        extra = {"attempted": failed, "data_type": kind}
        if failed and len(rate_limited) == len(failed):
            raise UpstreamRateLimited(f"Every market data provider is rate limited for {kind} {subject}", provider=failed[-1], extra=extra)
        raise MarketDataUnavailable(f"No market data provider could answer {kind} for {subject}", provider=failed[-1] if failed else None, extra=extra)

    def _batch_fetch_shared(self, symbols: list[str]) -> set[str]:
        """``_batch_fetch`` deduplicated among concurrent identical batches; returns the symbols it priced."""
        digest = hashlib.sha1(",".join(sorted(symbols)).encode()).hexdigest()[:16]
        key = self._cache.key("market", "quote_batch", digest)
        return set(self._sf.do(key, lambda: sorted(self._batch_fetch(symbols))))

    def _batch_fetch(self, symbols: list[str]) -> dict[str, Quote]:
        """One batched upstream call through the quote providers that support it; stores what it got."""
        if not symbols:
            return {}
        failed: list[str] = []
        for name in self._names("quote"):
            provider = self._provider(name)
            if provider is None:
                continue
            if not callable(getattr(provider, "get_quotes_batch", None)):
                # The preferred provider cannot batch: keep the configured order, go symbol by symbol.
                return {}
            breaker = self._breaker(name)
            if not breaker.allow():
                self._count_upstream(name, "breaker_open")
                failed.append(name)
                continue
            try:
                got = provider.get_quotes_batch(list(symbols))
            except UpstreamRateLimited:
                breaker.record_failure(rate_limited=True, error="rate limited")
                self._count_upstream(name, "rate_limited")
                failed.append(name)
                continue
            except Exception as exc:  # noqa: BLE001
                breaker.record_failure(error=type(exc).__name__)
                self._count_upstream(name, "error")
                failed.append(name)
                continue
            breaker.record_success()
            self._count_upstream(name, "ok")
            out = {}
            fresh = self._price_fresh()
            for sym, quote in (got or {}).items():
                sym = sym.upper()
                if sym not in symbols:
                    continue
                quote = _stamp_fallback(quote, failed)
                self._write(self._quote_req(sym).key, self._envelope(quote.model_dump(mode="json"), fresh, "price_data"), "price_data")
                self._sink_call("save_snapshot", quote)
                out[sym] = quote
            return out
        return {}

    def _sink_call(self, method: str, *args: Any) -> None:
        if self._sink is None:
            return
        try:
            getattr(self._sink, method)(*args)
        except Exception:  # noqa: BLE001 - persistence is best effort, never fails a request
            logger.warning("snapshot sink failed", extra={"method": method}, exc_info=True)


def _stamp_fallback(result: Any, failed: list[str]) -> Any:
    if failed and hasattr(result, "provenance"):
        prov = result.provenance.model_copy(update={"fallback_from": list(failed)})
        return result.model_copy(update={"provenance": prov})
    return result


def _error_entry(symbol: str, exc: ApiError) -> QuoteError:
    return QuoteError(symbol=symbol, status=exc.status, type=exc.type, title=exc.title, detail=exc.detail)


def _check_limit(limit: Any, maximum: int) -> int:
    try:
        n = int(limit)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= maximum:
        raise ValidationFailed("Invalid limit", errors={"limit": [f"Must be between 1 and {maximum}"]})
    return n
