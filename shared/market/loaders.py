"""What each market answer is (its cache key, how it is loaded through the provider chain, how long it stays
fresh, what is persisted) as ``swr.Request``s the DataManager serves."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

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
from shared.market.args import HistoryArgs
from shared.market.chain import ProviderChain
from shared.market.hours import NEW_YORK, price_fresh_seconds
from shared.market.models import (
    Bar, Fundamentals, History, IndicatorPoint, IndicatorSeries, News, Provenance, Quote, SymbolMatch,
)
from shared.market.periods import INTRADAY, date_range
from shared.market.protocols import CacheLike, SingleFlightLike, SnapshotSink
from shared.market.swr import Request, SwrCache
from shared.resilience import outcome_of

logger = logging.getLogger(__name__)
_UPSTREAM: dict[str, type[UpstreamError]] = {"rate_limited": UpstreamRateLimited, "misconfigured": UpstreamMisconfigured,
                                             "unsupported": UpstreamUnsupported}


class Loaders:
    """Requests per data type over one chain, cache and (optional, best-effort) snapshot sink."""

    def __init__(self, chain: ProviderChain, cache: CacheLike, swr: SwrCache, singleflight: SingleFlightLike,
                 clock: Callable[[], datetime], sink: SnapshotSink | None) -> None:
        self._chain = chain
        self._cache = cache
        self._swr = swr
        self._sf = singleflight
        self._clock = clock
        self._sink = sink

    def key(self, *parts: str) -> str:
        return self._cache.key("market", *parts)

    def _price_fresh(self) -> float:
        return price_fresh_seconds(self._clock(), self._cache.ttl_for("price_data"))

    def _model(self, kind: str, sym: str, call: Callable[[Any], Any], data_type: str, parse: Callable[[Any], Any],
               *key: str) -> Request[Any]:
        def load() -> tuple[Any, float]:
            return self._chain.call(kind, f"{kind} {sym}", call).model_dump(mode="json"), self._cache.ttl_for(data_type)

        return Request(data_type, self.key(kind, sym, *key), load, parse, f"{kind} {sym}")

    def fundamentals(self, sym: str) -> Request[Fundamentals]:
        return self._model("fundamentals", sym, lambda p: p.get_fundamentals(sym), "fundamental_data", Fundamentals.model_validate)

    def news(self, sym: str, limit: int) -> Request[News]:
        return self._model("news", sym, lambda p: p.get_news(sym, limit), "news_data", News.model_validate, str(limit))

    def search(self, q: str, limit: int) -> Request[list[SymbolMatch]]:
        def load() -> tuple[Any, float]:
            matches = self._chain.call("search", f"search {q!r}", lambda p: p.search_symbols(q, limit))
            return [m.model_dump(mode="json") for m in matches], self._cache.ttl_for("symbols")

        return Request("symbols", self.key("search", q.lower(), str(limit)), load,
                       lambda v: [SymbolMatch.model_validate(m) for m in v], f"search {q!r}")

    def symbol(self, sym: str) -> Request[SymbolMatch]:
        def exact(provider: Any) -> SymbolMatch:
            # Per provider, so the chain weighs a provider's "not listed" like any NotFound (a fallback's, after
            # the primary failed, does not make the symbol unknown).
            match = next((m for m in provider.search_symbols(sym, 10) if m.symbol.upper() == sym), None)
            if match is None:
                raise NotFound(f"Unknown symbol {sym}", extra={"symbol": sym})
            return match

        def load() -> tuple[Any, float]:
            return self._chain.call("search", f"symbol {sym}", exact).model_dump(mode="json"), self._cache.ttl_for("symbols")

        return Request("symbols", self.key("symbol", sym), load, SymbolMatch.model_validate, f"symbol {sym}")

    def quote(self, sym: str, settled: ApiError | None = None) -> Request[Quote]:
        """``settled``: the error this symbol's batch already met asking every provider (not asked again)."""
        def load() -> tuple[Any, float]:
            if settled is not None:
                raise settled
            quote = self._chain.call("quote", f"quote {sym}", lambda p: p.get_quote(sym))
            self._sink_call("save_snapshot", quote)
            return quote.model_dump(mode="json"), self._price_fresh()

        return Request("price_data", self.key("quote", sym), load, Quote.model_validate, f"quote {sym}")

    def quotes(self, symbols: list[str]) -> dict[str, ApiError]:
        """Price ``symbols`` together into the cache (one batch call where a provider batches; shared among
        concurrent identical batches, across instances too); the failures per symbol."""
        digest = hashlib.sha1(",".join(sorted(symbols)).encode()).hexdigest()[:16]
        failed = self._sf.do(self.key("quote_batch", digest), lambda: self._price(symbols))
        return {s: _error(s, e) for s, e in failed.items()}

    def _price(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        got = self._chain.call_many("quote", symbols, lambda p, s: p.get_quote(s), "get_quotes_batch",
                                    lambda p, syms: p.get_quotes_batch(syms))
        fresh = self._price_fresh()
        failed: dict[str, dict[str, Any]] = {}
        for sym, item in got.items():
            if isinstance(item, ApiError):  # as JSON: a waiter on another instance gets this too
                failed[sym] = {"outcome": outcome_of(item), "detail": item.detail, "extra": item.extra}
                continue
            self._swr.store(self.key("quote", sym), item.model_dump(mode="json"), fresh, "price_data")
            self._sink_call("save_snapshot", item)
        return failed

    def history(self, a: HistoryArgs) -> Request[History]:
        span = f"{a.start or ''}_{a.end or ''}" if (a.start or a.end) else a.period

        def load() -> tuple[Any, float]:
            hist = self._chain.call("history", f"history {a.symbol}", lambda p: p.get_history(
                a.symbol, period=a.period, interval=a.interval, start=a.start, end=a.end))
            if a.interval == "1d":
                self._sink_call("save_bars", a.symbol, a.interval, hist.bars)
            fresh = self._price_fresh() if a.interval in INTRADAY else self._cache.ttl_for("historical_data")
            return hist.model_dump(mode="json"), fresh

        return Request("historical_data", self.key("history", a.symbol, a.interval, span), load, History.model_validate,
                       f"history {a.symbol} {a.interval} {span}", lambda exc: self._persisted_bars(a, exc))

    def _persisted_bars(self, a: HistoryArgs, exc: ApiError) -> History | None:
        """Bars saved earlier, served flagged stale when no provider answers (never for NotFound)."""
        if self._sink is None or isinstance(exc, (NotFound, ValidationFailed)):
            return None
        first, last = date_range(a.period, self._clock().astimezone(NEW_YORK).date(), a.start, a.end)
        try:
            saved = [b if isinstance(b, Bar) else Bar.model_validate(b) for b in self._sink.load_bars(a.symbol, a.interval, first, last) or []]
        except Exception:  # noqa: BLE001 - best effort
            logger.warning("snapshot sink load_bars failed", extra={"symbol": a.symbol}, exc_info=True)
            return None
        # One bar per slot; a daily bar saved before stamps moved to the exchange's midnight shares its UTC day.
        bars = list({(b.ts.date() if a.interval == "1d" else b.ts): b for b in sorted(saved, key=lambda b: b.ts)}.values())
        if not bars:
            return None
        now = self._clock()
        return History(symbol=a.symbol, interval=a.interval, bars=bars, provenance=Provenance(
            source="snapshot", as_of=bars[-1].ts, fetched_at=now, stale=True, stale_reason=f"{exc.title}: {exc.detail}",
            cache_age_s=max(0.0, (now - bars[-1].ts).total_seconds()),
            fallback_from=[t["provider"] for t in exc.extra.get("attempted", [])]))

    def indicator(self, sym: str, spec: ind.IndicatorSpec, period: str, history: Callable[[], History]) -> Request[IndicatorSeries]:
        def load() -> tuple[Any, float]:
            hist = history()
            rows = ind.compute(spec, [b.high for b in hist.bars], [b.low for b in hist.bars], [b.close for b in hist.bars])
            points = [IndicatorPoint(ts=b.ts, value=v, values=vs) for b, (v, vs) in zip(hist.bars, rows) if v is not None]
            series = IndicatorSeries(symbol=sym, name=spec.name, points=points, provenance=hist.provenance)
            # Computed from stale bars: worth recomputing as soon as fresh bars arrive.
            return series.model_dump(mode="json"), 0.0 if hist.provenance.stale else float(self._cache.ttl_for("technical_data"))

        return Request("technical_data", self.key("indicator", sym, spec.name, period), load, IndicatorSeries.model_validate,
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
    retry_after = extra.pop("retry_after", None)
    cls = _UPSTREAM.get(e["outcome"], MarketDataUnavailable)
    kw: dict[str, Any] = {"retry_after": retry_after} if cls is UpstreamRateLimited else {}
    return cls(e["detail"], provider=extra.pop("provider", None), extra=extra, **kw)
