"""Symbol discovery: the seeded `symbols` catalogue first, the market-data search second."""

from __future__ import annotations

from typing import Any

from shared.errors import NotFound
from shared.market.symbols import normalize_symbol
from shared.schemas.symbols import SymbolPage, SymbolPublic
from shared.services.base import BaseService
from shared.services.protocols import SymbolSearchProvider

class SymbolsService(BaseService):
    SYMBOL_CACHE_TTL = 3600

    def __init__(self, *, symbol_repository: Any, market: SymbolSearchProvider | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._repo = symbol_repository
        self._market = market

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"symbol_repository": self._repo},
                                                optional={"market": self._market})

    def search_symbols(self, q: str | None, *, limit: int = 20, cursor: str | None = None) -> SymbolPage:
        """Without `q`: the catalogue page by page. With `q`: catalogue matches, else the market search."""
        if not q or not q.strip():
            items, next_cursor = self._repo.find_many(limit=limit, cursor=cursor)
            return SymbolPage(items=[SymbolPublic.model_validate(d) for d in items], next_cursor=next_cursor)
        found = [SymbolPublic.model_validate(d) for d in self._repo.search(q, limit=limit)]
        if not found and self._market is not None:
            found = [SymbolPublic.model_validate({**m.model_dump(), "source": "market"})
                     for m in self._market.search_symbols(q.strip(), limit)]
        return SymbolPage(items=found[:limit], next_cursor=None)

    def find_symbol(self, symbol: str) -> SymbolPublic | None:
        """The symbol's metadata or None when neither the catalogue nor the market knows it.

        ValidationFailed for a malformed symbol; an upstream failure propagates (502), it is not "unknown".
        """
        sym = normalize_symbol(symbol)
        cache_key = self.cache.key("catalogue", sym) if hasattr(self.cache, "key") else f"catalogue:{sym}"
        if self.cache is not None:
            cached = self._cache_get(cache_key)
            if cached is not None:
                return SymbolPublic.model_validate(cached)
        doc = self._repo.get_by_symbol(sym)
        if doc is not None:
            result = SymbolPublic.model_validate(doc)
        elif self._market is not None:
            try:
                match = self._market.get_symbol(sym)
            except NotFound:
                return None
            result = SymbolPublic.model_validate({**match.model_dump(), "source": "market"})
        else:
            return None
        if self.cache is not None:
            self._cache_set(cache_key, result.model_dump(mode="json"))
        return result

    def get_symbol(self, symbol: str) -> SymbolPublic:
        found = self.find_symbol(symbol)
        if found is None:
            sym = normalize_symbol(symbol)
            raise NotFound(f"Unknown symbol {sym}", extra={"symbol": sym})
        return found

    def _cache_get(self, key: str) -> Any:
        try:
            return self.cache.get_json(key)
        except Exception:  # the cache is an optimisation: a failing cache must not fail the lookup
            self.logger.warning("symbol cache read failed", exc_info=True)
            return None

    def _cache_set(self, key: str, value: Any) -> None:
        try:
            self.cache.set_json(key, value, ttl=self.SYMBOL_CACHE_TTL)
        except Exception:  # see _cache_get
            self.logger.warning("symbol cache write failed", exc_info=True)
