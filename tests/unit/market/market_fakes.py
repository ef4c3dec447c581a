"""Fakes for the market-data tests (imported by conftest and tests): an in-memory cache, a single-flight, a settable clock, counting providers."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from shared.config.models import Settings
from shared.errors import NotFound
from shared.market.models import Bar, Fundamentals, History, News, NewsItem, Provenance, Quote, SymbolMatch


# Wednesday 2025-01-08 15:00 UTC = 10:00 New York: the market is open.
OPEN_NOW = datetime(2025, 1, 8, 15, 0, tzinfo=timezone.utc)
# Saturday 2025-01-11 15:00 UTC: closed until Monday 2025-01-13 09:30 New York (14:30 UTC).
WEEKEND_NOW = datetime(2025, 1, 11, 15, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, now: datetime = OPEN_NOW) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now = self.now + timedelta(seconds=seconds)


class FakeCache:
    """Implements CacheLike in memory; expiry follows the injected clock; values go through JSON like the real one."""

    TTLS = {"price_data": 60, "historical_data": 3600, "fundamental_data": 86400, "technical_data": 900,
            "news_data": 900, "symbols": 86400}

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()
        self.set_calls: list[tuple[str, int | None]] = []

    def _now(self) -> float:
        return self._clock().timestamp()

    def key(self, *parts: str) -> str:
        return "test:v1:" + ":".join(parts)

    def ttl_for(self, data_type: str) -> int:
        return self.TTLS[data_type]

    def get_json(self, key: str) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            raw, exp = item
            if exp is not None and self._now() >= exp:
                del self._data[key]
                return None
            return json.loads(raw)

    def set_json(self, key: str, value: Any, ttl: int | None = None) -> None:
        with self._lock:
            self.set_calls.append((key, ttl))
            self._data[key] = (json.dumps(value), self._now() + ttl if ttl else None)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, amount: int = 1, ttl: int | None = None) -> int:
        with self._lock:
            raw, exp = self._data.get(key, ("0", None))
            n = int(json.loads(raw)) + amount
            if exp is None and ttl:
                exp = self._now() + ttl
            self._data[key] = (json.dumps(n), exp)
            return n

    def physical_ttl(self, key: str) -> float | None:
        _, exp = self._data[key]
        return None if exp is None else exp - self._now()


class FakeSingleFlight:
    """In-process single-flight like shared.cache.SingleFlight: followers wait for the leader's result or error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, dict[str, Any]] = {}
        self.computations = 0

    def do(self, key: str, fn: Callable[[], Any], *, lock_ttl_s: float = 30, wait_s: float = 10) -> Any:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = {"done": threading.Event(), "result": None, "error": None}
        if not leader:
            call["done"].wait(wait_s)
            if call["error"] is not None:
                raise call["error"]
            return call["result"]
        try:
            with self._lock:
                self.computations += 1
            call["result"] = fn()
            return call["result"]
        except BaseException as exc:
            call["error"] = exc
            raise
        finally:
            with self._lock:
                self._calls.pop(key, None)
            call["done"].set()


class SyncExecutor:
    """Runs submitted jobs at once (deterministic background refresh)."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Callable[[], Any]) -> None:
        self.submitted += 1
        fn()


class ManualExecutor:
    """Queues jobs until run_all(): lets tests observe the stale answer before the refresh lands."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[[], Any]) -> None:
        self.jobs.append(fn)

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for j in jobs:
            j()


class FakeProvider:
    """A counting provider. ``fail`` (an exception or None) is raised by every call while set."""

    def __init__(self, name: str, clock: Callable[[], datetime], *, price: float = 100.0, known: Sequence[str] = ("AAPL", "MSFT", "IBM"),
                 delay_s: float = 0.0, batch: bool = False) -> None:
        self.name = name
        self._clock = clock
        self.price = price
        self.known = set(known)
        self.fail: BaseException | None = None
        self.calls: dict[str, int] = {}
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self.bars: list[Bar] | None = None
        if batch:
            self.get_quotes_batch = self._batch  # only some providers batch

    def _enter(self, method: str, symbol: str | None = None) -> None:
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
        if self.delay_s:
            import time

            time.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        if symbol is not None and symbol not in self.known:
            raise NotFound(f"Unknown symbol {symbol}")

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _prov(self) -> Provenance:
        return Provenance(source=self.name, as_of=self._clock(), fetched_at=self._clock())

    def get_quote(self, symbol: str) -> Quote:
        self._enter("get_quote", symbol)
        return Quote(symbol=symbol, price=self.price, provenance=self._prov())

    def _batch(self, symbols: Sequence[str]) -> dict[str, Quote]:
        self._enter("get_quotes_batch")
        return {s: Quote(symbol=s, price=self.price, provenance=self._prov()) for s in symbols if s in self.known}

    def get_history(self, symbol: str, *, period: str = "1mo", interval: str = "1d", start: Any = None, end: Any = None) -> History:
        self._enter("get_history", symbol)
        bars = self.bars or [
            Bar(ts=datetime(2024, 12, 2, tzinfo=timezone.utc) + timedelta(days=i), open=self.price + i, high=self.price + i + 1,
                low=self.price + i - 1, close=self.price + i + 0.5, volume=1000 + i)
            for i in range(30)
        ]
        return History(symbol=symbol, interval=interval, bars=bars, provenance=self._prov())

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        self._enter("get_fundamentals", symbol)
        return Fundamentals(symbol=symbol, name=f"{symbol} Inc.", pe_ratio=20.0, provenance=self._prov())

    def get_news(self, symbol: str, limit: int = 10) -> News:
        self._enter("get_news", symbol)
        item = NewsItem(id="n1", symbol=symbol, title=f"{symbol} news from {self.name}", published_at=self._clock())
        return News(symbol=symbol, items=[item][:limit], provenance=self._prov())

    def search_symbols(self, query: str, limit: int = 10) -> list[SymbolMatch]:
        self._enter("search_symbols")
        return [SymbolMatch(symbol=s, name=f"{s} Inc.") for s in sorted(self.known) if query.upper() in s][:limit]


def make_settings(providers: dict[str, list[str]] | None = None, **market: Any) -> Settings:
    order = providers or {"quote": ["primary", "backup"], "history": ["primary", "backup"], "fundamentals": ["primary", "backup"],
                          "news": ["primary", "backup"], "search": ["primary", "backup"]}
    return Settings.model_validate({"market": {"providers": order, "breaker_failure_threshold": 3, "breaker_cooldown_s": 60, **market}})
