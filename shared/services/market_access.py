"""DeferredMarket: the market DataManager as a QuoteProvider / SymbolSearchProvider, built on first use.

User-data services hold this instead of the DataManager so that building them never
builds the market stack, and a market stack that cannot be built degrades the callers
(MarketDataUnavailable, 502) instead of failing them with an unexpected error.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from shared.errors import ApiError, MarketDataUnavailable

log = logging.getLogger(__name__)


class DeferredMarket:
    def __init__(self, resolve: Callable[[], Any]) -> None:
        self._resolve = resolve

    def _market(self) -> Any:
        try:
            return self._resolve()
        except ApiError:
            raise
        except Exception:  # an adapter boundary: whatever broke, callers see our error class
            log.exception("market data layer could not be built")
            raise MarketDataUnavailable("Market data is not available right now") from None

    def get_quote(self, symbol: str) -> Any:
        return self._market().get_quote(symbol)

    def get_quotes(self, symbols: Sequence[str]) -> Any:
        return self._market().get_quotes(list(symbols))

    def search_symbols(self, q: str, limit: int = 10) -> Any:
        return self._market().search_symbols(q, limit)

    def get_symbol(self, symbol: str) -> Any:
        return self._market().get_symbol(symbol)

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        try:
            return self._market().health_check()
        except ApiError as exc:
            return False, {"error": type(exc).__name__}
