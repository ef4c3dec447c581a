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

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared.errors import ApiError, ValidationFailed
from shared.market import indicators as ind
from shared.market.args import MAX_BATCH, HistoryArgs, NewsArgs, QuotesArgs, SearchArgs, SymbolArgs
from shared.market.chain import ProviderChain
from shared.market.hours import NEW_YORK
from shared.market.loaders import Loaders
from shared.market.models import Fundamentals, History, IndicatorSeries, News, Quote, QuoteError, SymbolMatch
from shared.market.protocols import CacheLike, SingleFlightLike, SnapshotSink
from shared.market.swr import SwrCache
from shared.market.symbols import normalize_symbol
from shared.resilience import BreakerBoard, BreakerPolicy, outcome_of

if TYPE_CHECKING:  # pragma: no cover
    from shared.config.models import Settings


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
        self._clock = clock
        policy = BreakerPolicy(failure_threshold=self._market.breaker_failure_threshold, cooldown_s=self._market.breaker_cooldown_s)
        self.chain = ProviderChain(self._market.providers, BreakerBoard(policy, clock=self._now),
                                   providers=providers, factory=provider_factory)
        self.swr = SwrCache(cache, singleflight, self._now, submit=executor.submit if executor is not None else None,
                            swr_factor=swr_factor, stale_if_error_s=stale_if_error_s)
        self._load = Loaders(self.chain, cache, self.swr, singleflight, clock, snapshot_sink)

    # ------------------------------------------------------------------ public API
    def get_quote(self, symbol: str) -> Quote:
        """Latest quote for one symbol."""
        return self.swr.serve(self._load.quote(SymbolArgs.parse(symbol=symbol).symbol))

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
        missing = [s for s in order if s not in invalid and not self.swr.servable(self._load.key("quote", s))]
        settled = self._load.quotes(missing) if len(missing) > 1 else {}
        out: list[Quote | QuoteError] = []
        for s in order:
            try:
                out.append(invalid.get(s) or self.swr.serve(self._load.quote(s, settled.get(s))))
            except ApiError as exc:
                out.append(QuoteError.of(s, exc))
        return out

    def get_history(self, symbol: str, period: str = "1mo", interval: str = "1d", start: Any = None, end: Any = None) -> History:
        """OHLCV bars from one provider; falls back to persisted bars (snapshot sink) when nothing else answers."""
        today = self._clock().astimezone(NEW_YORK).date()
        a = HistoryArgs.parse(symbol=symbol, period=period, interval=interval, start=start, end=end, context={"today": today})
        return self.swr.serve(self._load.history(a))

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        """Company profile and key ratios (cached as fundamental_data)."""
        return self.swr.serve(self._load.fundamentals(SymbolArgs.parse(symbol=symbol).symbol))

    def get_news(self, symbol: str, limit: int = 10) -> News:
        """Up to ``limit`` (1-50) recent items, newest first; an empty list is a valid answer for news."""
        a = NewsArgs.parse(symbol=symbol, limit=limit)
        return self.swr.serve(self._load.news(a.symbol, a.limit))

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
            reqs = [self._load.indicator(sym, spec, period, history) for spec in specs]
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
        return self.swr.serve(self._load.search(a.q, a.limit))

    def get_symbol(self, symbol: str) -> SymbolMatch:
        """Metadata for one symbol (an exact match from the search providers) or NotFound."""
        return self.swr.serve(self._load.symbol(SymbolArgs.parse(symbol=symbol).symbol))

    def refresh_quotes(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        """Warm the quote cache (timer): symbols not fresh are fetched in batches of ``refresh_batch_size``.

        Returns a summary: symbols, batches, upstream_calls, refreshed, skipped_fresh, failures (symbol -> "<status>
        <title>"), outcomes (symbol -> outcome class of each upstream failure, ``shared.resilience.outcome_of``),
        duration_ms.
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
        stale = [s for s in wanted if not self.swr.fresh(self._load.key("quote", s))]
        size = max(1, min(MAX_BATCH, int(self._market.refresh_batch_size)))
        batches = [stale[i : i + size] for i in range(0, len(stale), size)]
        outcomes: dict[str, str] = {}
        for batch in batches:
            for s, e in self._load.quotes(batch).items():
                failures[s] = f"{e.status} {e.title}"
                outcomes[s] = outcome_of(e)
        return {
            "symbols": len(wanted),
            "batches": len(batches),
            "upstream_calls": self.chain.upstream_calls() - calls_before,
            "refreshed": len(stale) - sum(1 for s in stale if s in failures),
            "skipped_fresh": len(wanted) - len(stale),
            "failures": failures,
            "outcomes": outcomes,
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

    def _now(self) -> float:
        return self._clock().timestamp()
