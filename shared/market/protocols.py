"""Roles the market-data core depends on. Implementations live elsewhere (cache, providers, persistence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from shared.market.models import Bar, Quote

if TYPE_CHECKING:  # pragma: no cover
    from shared.errors import ApiError

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
class BatchQuoteProvider(Protocol):
    """A provider that prices many symbols in one upstream call (the chain prefers it for batches).

    Every requested symbol maps to its Quote or to the error it met (NotFound only when the upstream
    positively says so; otherwise the outcome class of the failure)."""

    name: str

    def get_quotes_batch(self, symbols: Sequence[str]) -> "Mapping[str, Quote | ApiError]": ...


# A provider implements any subset of get_quote, get_history, get_fundamentals, get_news and search_symbols
# (the chain skips one that lacks the method a data type needs; see ``shared.market.chain.METHODS``).
# Contract for every method: return a normalised model whose provenance.source is the provider's name, or
# raise a shared.errors outcome class: NotFound only when the upstream positively says the symbol does not
# exist; UpstreamRateLimited, UpstreamUnavailable (MarketDataUnavailable), UpstreamMisconfigured or
# UpstreamUnsupported otherwise.


@runtime_checkable
class SnapshotSink(Protocol):
    """Optional persistence of market data (daily bars -> ``market_data``, quotes -> ``market_snapshots``).

    DataManager calls it best-effort: its exceptions are logged and swallowed.
    """

    def save_bars(self, symbol: str, interval: str, bars: Sequence[Bar]) -> None: ...
    def save_snapshot(self, quote: Quote) -> None: ...
    def load_bars(self, symbol: str, interval: str, start: date, end: date) -> Sequence[Bar]: ...
