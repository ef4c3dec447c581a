"""Roles the market-data core depends on. Implementations live elsewhere (cache, providers, persistence)."""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

from shared.market.models import Bar, Fundamentals, History, News, Quote, SymbolMatch

T = TypeVar("T")


@runtime_checkable
class CacheLike(Protocol):
    """What DataManager needs from ``shared.cache.CacheBackend``."""

    def get_json(self, key: str) -> Any | None: ...
    def set_json(self, key: str, value: Any, ttl: int | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def ttl_for(self, data_type: str) -> int: ...
    def key(self, *parts: str) -> str: ...
    def incr(self, key: str, amount: int = 1, ttl: int | None = None) -> int: ...


@runtime_checkable
class SingleFlightLike(Protocol):
    """What DataManager needs from ``shared.cache.SingleFlight``: one computation per key among concurrent callers.

    Remote waiters may receive the JSON round-trip of the result, so ``fn`` returns plain JSON data.
    """

    def do(self, key: str, fn: Callable[[], T], *, lock_ttl_s: float = 30, wait_s: float = 10) -> T: ...


@runtime_checkable
class QuoteProvider(Protocol):
    name: str

    def get_quote(self, symbol: str) -> Quote: ...


@runtime_checkable
class BatchQuoteProvider(Protocol):
    """One upstream call for many quotes; symbols it could not price are absent from the result."""

    name: str

    def get_quotes_batch(self, symbols: Sequence[str]) -> dict[str, Quote]: ...


@runtime_checkable
class HistoryProvider(Protocol):
    name: str

    def get_history(
        self, symbol: str, *, period: str = "1mo", interval: str = "1d", start: date | None = None, end: date | None = None
    ) -> History: ...


@runtime_checkable
class FundamentalsProvider(Protocol):
    name: str

    def get_fundamentals(self, symbol: str) -> Fundamentals: ...


@runtime_checkable
class NewsProvider(Protocol):
    name: str

    def get_news(self, symbol: str, limit: int = 10) -> News: ...


@runtime_checkable
class SymbolSearchProvider(Protocol):
    name: str

    def search_symbols(self, query: str, limit: int = 10) -> list[SymbolMatch]: ...


# A provider implements any subset of the roles above; DataManager skips one that lacks the method
# a data type needs. Contract for every method: return a normalised model whose provenance.source is
# the provider's name, or raise a shared.errors class (NotFound for an unknown symbol,
# UpstreamRateLimited when throttled, MarketDataUnavailable/UpstreamError for anything else).
Provider = Any


@runtime_checkable
class SnapshotSink(Protocol):
    """Optional persistence of market data (daily bars -> ``market_data``, quotes -> ``market_snapshots``).

    DataManager calls it best-effort: its exceptions are logged and swallowed.
    """

    def save_bars(self, symbol: str, interval: str, bars: Sequence[Bar]) -> None: ...
    def save_snapshot(self, quote: Quote) -> None: ...
    def load_bars(self, symbol: str, interval: str, start: date, end: date) -> Sequence[Bar]: ...


class ProviderUnsupported(Exception):
    """Raised by a provider that cannot serve this kind of request (e.g. intraday bars on a daily-only API).

    DataManager moves on to the next provider without counting a failure against the breaker.
    """
