"""Hand-written fakes implementing the service Protocols, and builders for services under test.

Repositories are the real Mongo repositories over mongomock (in memory, no validators):
the services' own logic is what these tests check.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from shared.errors import ApiError, DatabaseUnavailable, MarketDataUnavailable, NotFound
from shared.market.models import Provenance, Quote, QuoteError, SymbolMatch

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)


def clock() -> datetime:
    return NOW


def quote(symbol: str, price: float, change: float | None = 1.0, currency: str = "USD") -> Quote:
    return Quote(symbol=symbol, price=price, change=change, change_percent=None if change is None else 1.0,
                 currency=currency, provenance=Provenance(source="fake", fetched_at=NOW, as_of=NOW))


class FakeQuotes:
    """QuoteProvider: fixed prices; symbols in `failing` come back as QuoteError; `down` fails every call."""

    def __init__(self, prices: dict[str, float] | None = None, *, failing: Sequence[str] = (), down: ApiError | None = None,
                 currencies: dict[str, str] | None = None, healthy: bool = True) -> None:
        self.prices = dict(prices or {})
        self.failing = set(failing)
        self.down = down
        self.currencies = currencies or {}
        self.healthy = healthy
        self.calls: list[list[str]] = []

    def get_quote(self, symbol: str) -> Quote:
        result = self.get_quotes([symbol])[0]
        if isinstance(result, QuoteError):
            raise MarketDataUnavailable(result.detail)
        return result

    def get_quotes(self, symbols: Sequence[str]) -> list[Quote | QuoteError]:
        self.calls.append(list(symbols))
        if self.down is not None:
            raise self.down
        out: list[Quote | QuoteError] = []
        for s in symbols:
            if s in self.failing or s not in self.prices:
                out.append(QuoteError(symbol=s, status=502, type="/problems/market-data-unavailable",
                                      title="Market data unavailable", detail=f"no quote for {s}"))
            else:
                out.append(quote(s, self.prices[s], currency=self.currencies.get(s, "USD")))
        return out

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return (True, {"status": "healthy"}) if self.healthy else (False, {"error": "provider down"})


class FakeMarketSearch:
    """SymbolSearchProvider over a fixed list of matches."""

    def __init__(self, matches: Sequence[SymbolMatch] = (), *, down: ApiError | None = None) -> None:
        self.matches = list(matches)
        self.down = down
        self.calls = 0

    def search_symbols(self, q: str, limit: int = 10) -> list[SymbolMatch]:
        self.calls += 1
        if self.down:
            raise self.down
        return [m for m in self.matches if m.symbol.startswith(q.upper()) or q.lower() in m.name.lower()][:limit]

    def get_symbol(self, symbol: str) -> SymbolMatch:
        self.calls += 1
        if self.down:
            raise self.down
        for m in self.matches:
            if m.symbol == symbol:
                return m
        raise NotFound(f"Unknown symbol {symbol}")


class FakeSymbols:
    """SymbolProvider: knows exactly `known`."""

    def __init__(self, known: Sequence[str] = ("AAPL", "MSFT", "NVDA")) -> None:
        self.known = set(known)

    def find_symbol(self, symbol: str) -> Any:
        from shared.schemas.symbols import SymbolPublic

        sym = symbol.upper()
        return SymbolPublic(symbol=sym, name=f"{sym} Inc.") if sym in self.known else None


class Broken:
    """A dependency that is down: every method raises DatabaseUnavailable; health fails."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise DatabaseUnavailable("down")

        return fail

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return False, {"error": "connection failed"}


class FakeKeyIssuer:
    """ApiKeyIssuer in memory."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.forgotten: list[str] = []

    def forget_user(self, user_id: str) -> None:
        self.forgotten.append(user_id)

    def create_api_key(self, user_id: str, name: str) -> tuple[dict[str, Any], str]:
        kid = f"{len(self.keys) + 1:024x}"
        record = {"id": kid, "owner_id": user_id, "name": name, "prefix": "sak_test", "key_hash": "h" * 64,
                  "version": 1, "created_at": NOW.isoformat(), "revoked_at": None}
        self.keys[kid] = record
        return record, f"sak_secret_{kid}"

    def list_api_keys(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        return [k for k in self.keys.values() if k["owner_id"] == user_id and not k["revoked_at"]][:limit], None

    def get_api_key(self, user_id: str, key_id: str) -> dict[str, Any]:
        key = self.keys.get(key_id)
        if key is None or key["owner_id"] != user_id or key["revoked_at"]:
            raise NotFound("API key not found")
        return key

    def revoke_api_key(self, user_id: str, key_id: str) -> None:
        self.get_api_key(user_id, key_id)["revoked_at"] = NOW.isoformat()
