"""Helpers for the user-data API tests (imported by name; conftest modules are not importable reliably)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from shared.errors import ApiError, NotFound
from shared.market.models import Provenance, Quote, QuoteError


class FakeMarket:
    """Stands in for the DataManager behind the services' DeferredMarket (quotes only)."""

    def __init__(self, prices: dict[str, float], *, failing: Sequence[str] = (), down: ApiError | None = None) -> None:
        self.prices, self.failing, self.down = prices, set(failing), down

    def get_quotes(self, symbols: Sequence[str]) -> list[Quote | QuoteError]:
        if self.down is not None:
            raise self.down
        now = datetime.now(timezone.utc)
        out: list[Quote | QuoteError] = []
        for s in symbols:
            if s in self.failing or s not in self.prices:
                out.append(QuoteError(symbol=s, status=502, type="upstream-error", title="Upstream service failed",
                                      detail=f"provider failed for {s}"))
            else:
                # Quote.currency has no default (providers that do not say are not assumed USD).
                out.append(Quote(symbol=s, price=self.prices[s], currency="USD", change=0.5, change_percent=0.25,
                                 provenance=Provenance(source="fake", fetched_at=now, as_of=now)))
        return out

    def get_quote(self, symbol: str) -> Quote:
        return self.get_quotes([symbol])[0]  # type: ignore[return-value]

    def get_symbol(self, symbol: str) -> Any:
        raise NotFound(f"Unknown symbol {symbol}")

    def search_symbols(self, q: str, limit: int = 10) -> list[Any]:
        return []

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return True, {}


def create(client, headers, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()
