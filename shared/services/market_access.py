"""DeferredMarket: the market DataManager as a QuoteProvider / SymbolSearchProvider, built on first use.

User-data services hold this instead of the DataManager so that building them never
builds the market stack, and a market stack that cannot be built degrades the callers
(MarketDataUnavailable, 502) instead of failing them with an unexpected error.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from shared.errors import ApiError, MarketDataUnavailable
from shared.market.args import MAX_BATCH
from shared.market.models import Quote, QuoteError

log = logging.getLogger(__name__)
NO_PROVIDER = {"status": 503, "type": "/problems/market-data-unavailable", "title": "Market data unavailable",
               "detail": "No market data provider is configured"}


def fetch_quotes(quotes: Any, symbols: Sequence[str]) -> tuple[dict[str, Quote | QuoteError], bool]:
    """Quote per symbol, fetched in batches; a symbol that failed maps to its QuoteError (never a
    made-up price). The flag is True when a whole batch failed (or there is no provider at all)."""
    if not symbols:
        return {}, False
    if quotes is None:
        return {s: QuoteError(symbol=s, **NO_PROVIDER) for s in symbols}, True
    out: dict[str, Quote | QuoteError] = {}
    batch_failed = False
    for start in range(0, len(symbols), MAX_BATCH):
        chunk = list(symbols[start:start + MAX_BATCH])
        try:
            results = quotes.get_quotes(chunk)
        except ApiError as exc:  # the whole batch failed: each of its symbols reports the error
            out.update({s: QuoteError.of(s, exc) for s in chunk})
            batch_failed = True
            continue
        for item in results:
            key = str(item.symbol).upper()
            out[key] = item if isinstance(item, Quote) else QuoteError.of(key, item)
    return out, batch_failed


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
