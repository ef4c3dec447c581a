"""Persists market data so history survives cache loss and upstream outages.

Implements the DataManager's SnapshotSink: daily bars go to `market_data`, quotes to
`market_snapshots` (expiring). The DataManager calls it best-effort.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any, Sequence

from shared.market.models import Bar, Quote

SNAPSHOT_TTL_S = 7 * 24 * 3600


class MarketStore:
    def __init__(self, repos: Any) -> None:
        self._bars = repos.get_market_data_repository()
        self._snapshots = repos.get_market_snapshot_repository()

    def save_bars(self, symbol: str, interval: str, bars: Sequence[Bar]) -> None:
        self._bars.bulk_upsert_bars(symbol, interval, [b.model_dump() for b in bars])

    def save_snapshot(self, quote: Quote) -> None:
        self._snapshots.save(f"quote:{quote.symbol}", quote.model_dump(mode="json"), ttl_s=SNAPSHOT_TTL_S, symbol=quote.symbol)

    def load_snapshot(self, symbol: str) -> Quote | None:
        doc = self._snapshots.load(f"quote:{symbol}")
        return Quote.model_validate(doc["data"]) if doc else None

    def load_bars(self, symbol: str, interval: str, start: date, end: date) -> Sequence[Bar]:
        lo = datetime.combine(start, time.min, tzinfo=timezone.utc)
        hi = datetime.combine(end, time.max, tzinfo=timezone.utc)
        return [Bar.model_validate(doc) for doc in self._bars.get_bars(symbol, interval, start=lo, end=hi)]

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._bars.health_check()
