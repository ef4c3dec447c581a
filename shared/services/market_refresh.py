"""The cache-warming job: quotes for every watched, held and core symbol, in provider batches."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.services.base import BaseService


class MarketRefreshService(BaseService):
    def __init__(self, *, settings: Settings, repos: Any, market: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._settings = settings
        self._repos = repos
        self._market = market

    def symbols_to_refresh(self) -> list[str]:
        """Core symbols first, then every symbol on any watchlist or in any position (all owners:
        this is a system job, so it reads the collections directly rather than per owner)."""
        symbols: list[str] = list(self._settings.market.core_symbols)
        watched = self._repos.get_watchlist_repository().collection.distinct("symbols")
        held = self._repos.get_position_repository().collection.distinct("symbol")
        for symbol in [*watched, *held]:
            if isinstance(symbol, str) and symbol not in symbols:
                symbols.append(symbol)
        return symbols

    def run(self) -> dict[str, Any]:
        """Refresh quotes not fresh in the cache; one line of summary goes to the log."""
        symbols = self.symbols_to_refresh()
        summary = self._market.refresh_quotes(symbols)
        self.logger.info(
            "market refresh: %d symbols, %d batches, %d upstream calls, %d failures, %.0f ms",
            summary["symbols"], summary["batches"], summary["upstream_calls"], len(summary["failures"]),
            summary["duration_ms"],
        )
        return summary

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"database": self._repos}, optional={"market": self._market})
