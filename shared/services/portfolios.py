"""Portfolios, their positions, and valuation from current quotes (with each quote's provenance)."""

from __future__ import annotations

from typing import Any

from shared.data.repository import check_version
from shared.errors import NotFound, ValidationFailed
from shared.market.models import Quote, QuoteError
from shared.schemas.portfolios import (
    PortfolioCreate, PortfolioPage, PortfolioPublic, PortfolioUpdate, PositionCreate, PositionPage, PositionPublic,
    PositionUpdate,
)
from shared.schemas.valuations import PortfolioValuation, PositionValuation
from shared.services._owned import iterate_all, patch
from shared.services.base import BaseService
from shared.services.market_access import fetch_quotes
from shared.services.protocols import QuoteProvider, SymbolProvider



def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class PortfolioService(BaseService):
    """Scoped to `owner_id`. A valuation never invents a price: a failed quote is reported on its position."""

    MAX_POSITIONS_VALUED = 500

    def __init__(self, *, portfolio_repository: Any, position_repository: Any,
                 quote_provider: QuoteProvider | None = None, symbol_provider: SymbolProvider | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self._portfolios = portfolio_repository
        self._positions = position_repository
        self._quotes = quote_provider
        self._symbols = symbol_provider

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(
            required={"portfolio_repository": self._portfolios, "position_repository": self._positions},
            optional={"quotes": self._quotes if hasattr(self._quotes, "health_check") else None},
        )

    # ------------------------------------------------------------ portfolios

    def list_portfolios(self, owner_id: str, *, limit: int = 20, cursor: str | None = None) -> PortfolioPage:
        items, next_cursor = self._portfolios.find_many(owner_id, limit=limit, cursor=cursor)
        return PortfolioPage(items=[PortfolioPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_portfolio(self, owner_id: str, data: PortfolioCreate) -> PortfolioPublic:
        return PortfolioPublic.model_validate(self._portfolios.insert_one(owner_id, data.model_dump()))

    def get_portfolio(self, owner_id: str, portfolio_id: str) -> PortfolioPublic:
        return PortfolioPublic.model_validate(self._portfolios.get(owner_id, portfolio_id))

    def update_portfolio(self, owner_id: str, portfolio_id: str, data: PortfolioUpdate,
                         expected_version: int | None = None) -> PortfolioPublic:
        return PortfolioPublic.model_validate(patch(self._portfolios, owner_id, portfolio_id, data.changes(), expected_version))

    def delete_portfolio(self, owner_id: str, portfolio_id: str, expected_version: int | None = None) -> None:
        """Checks `expected_version` (412) first, then deletes the positions, then the portfolio.

        In that order a failure part-way leaves the portfolio (retry the delete), never positions
        without one; a position created concurrently is unreachable anyway (`_position_doc` needs the portfolio).
        """
        current = self._portfolios.get(owner_id, portfolio_id)  # NotFound for a missing/foreign id
        check_version(current.get("version"), expected_version)
        self._positions.delete_for_portfolio(owner_id, portfolio_id)
        self._portfolios.delete_one(owner_id, portfolio_id, expected_version)

    # ------------------------------------------------------------ positions

    def list_positions(self, owner_id: str, portfolio_id: str, *, limit: int = 20,
                       cursor: str | None = None) -> PositionPage:
        self._portfolios.get(owner_id, portfolio_id)
        items, next_cursor = self._positions.list_for_portfolio(owner_id, portfolio_id, limit=limit, cursor=cursor)
        return PositionPage(items=[PositionPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_position(self, owner_id: str, portfolio_id: str, data: PositionCreate) -> PositionPublic:
        self._portfolios.get(owner_id, portfolio_id)
        if self._symbols is not None and self._symbols.find_symbol(data.symbol) is None:
            raise ValidationFailed(f"Unknown symbol: {data.symbol}", errors={"symbol": [f"Unknown symbol {data.symbol}"]})
        doc = {**data.model_dump(), "portfolio_id": portfolio_id}
        return PositionPublic.model_validate(self._positions.insert_one(owner_id, doc))

    def get_position(self, owner_id: str, portfolio_id: str, position_id: str) -> PositionPublic:
        return PositionPublic.model_validate(self._position_doc(owner_id, portfolio_id, position_id))

    def update_position(self, owner_id: str, portfolio_id: str, position_id: str, data: PositionUpdate,
                        expected_version: int | None = None) -> PositionPublic:
        self._position_doc(owner_id, portfolio_id, position_id)
        return PositionPublic.model_validate(patch(self._positions, owner_id, position_id, data.changes(), expected_version))

    def delete_position(self, owner_id: str, portfolio_id: str, position_id: str,
                        expected_version: int | None = None) -> None:
        self._position_doc(owner_id, portfolio_id, position_id)
        self._positions.delete_one(owner_id, position_id, expected_version)

    def _position_doc(self, owner_id: str, portfolio_id: str, position_id: str) -> dict[str, Any]:
        # A position addressed through another portfolio of the same owner is NotFound too,
        # and so is one whose portfolio is gone (an orphan left by a failed or racing delete).
        self._portfolios.get(owner_id, portfolio_id)
        doc = self._positions.find_one(owner_id, {"id": position_id, "portfolio_id": str(portfolio_id)})
        if doc is None:
            raise NotFound("Position not found")
        return doc

    # ------------------------------------------------------------ valuation

    def value_portfolio(self, owner_id: str, portfolio_id: str) -> PortfolioValuation:
        """Value each position at its current quote.

        Totals sum only positions whose quote is in the portfolio currency; a position
        whose quote failed carries the error and is left out of totals (status `partial`).
        """
        portfolio = self._portfolios.get(owner_id, portfolio_id)
        positions = self._all_positions(owner_id, portfolio_id)
        return self._valuation(portfolio, positions, self._fetch_quotes(sorted({p["symbol"] for p in positions})))

    def value_portfolios(self, owner_id: str, *, limit: int = 10) -> tuple[list[PortfolioValuation], bool]:
        """Value the owner's first `limit` portfolios with ONE quote batch for all their symbols
        (the dashboard and the agent's portfolio tool); the flag says whether more portfolios exist."""
        docs, next_cursor = self._portfolios.find_many(owner_id, limit=limit)
        holdings = [(doc, self._all_positions(owner_id, doc["id"])) for doc in docs]
        quotes = self._fetch_quotes(sorted({p["symbol"] for _, positions in holdings for p in positions}))
        return [self._valuation(doc, positions, quotes) for doc, positions in holdings], next_cursor is not None

    def _all_positions(self, owner_id: str, portfolio_id: str) -> list[dict[str, Any]]:
        return list(iterate_all(
            lambda limit, cursor: self._positions.list_for_portfolio(owner_id, portfolio_id, limit=limit, cursor=cursor),
            max_items=self.MAX_POSITIONS_VALUED,
        ))

    def _valuation(self, portfolio: dict[str, Any], positions: list[dict[str, Any]],
                   quotes: dict[str, Quote | QuoteError]) -> PortfolioValuation:
        currency = portfolio.get("currency") or "USD"
        rows: list[PositionValuation] = []
        totals = {"market_value": 0.0, "cost_value": 0.0, "unrealized_pl": 0.0, "day_change": 0.0}
        priced = failed = 0
        for pos in positions:
            row = self._value_position(pos, quotes.get(pos["symbol"]), currency)
            if row.error is not None:
                failed += 1
            else:
                priced += 1
            if row.included_in_totals:
                totals["market_value"] += row.market_value or 0.0
                totals["cost_value"] += row.cost_value or 0.0
                totals["unrealized_pl"] += row.unrealized_pl or 0.0
                totals["day_change"] += row.day_change or 0.0
            rows.append(row)
        has_totals = any(r.included_in_totals for r in rows) or not positions
        if not positions:
            status = "empty"
        elif priced == 0:
            status = "unavailable"
        elif failed or not all(r.included_in_totals for r in rows):
            status = "partial"
        else:
            status = "complete"
        return PortfolioValuation(
            portfolio_id=portfolio["id"], name=portfolio["name"], currency=currency, status=status,
            as_of=self._utc_now(),
            market_value=_round(totals["market_value"]) if has_totals else None,
            cost_value=_round(totals["cost_value"]) if has_totals else None,
            unrealized_pl=_round(totals["unrealized_pl"]) if has_totals else None,
            day_change=_round(totals["day_change"]) if has_totals else None,
            priced_positions=priced, failed_positions=failed, positions=rows,
        )

    def _fetch_quotes(self, symbols: list[str]) -> dict[str, Quote | QuoteError]:
        return fetch_quotes(self._quotes, symbols)[0]

    @staticmethod
    def _value_position(pos: dict[str, Any], quote: Quote | QuoteError | None, currency: str) -> PositionValuation:
        qty = float(pos["quantity"])
        cost_basis = pos.get("cost_basis")
        base = {"position_id": pos["id"], "symbol": pos["symbol"], "quantity": qty, "cost_basis": cost_basis,
                "currency": pos.get("currency") or currency}
        if quote is None:
            quote = QuoteError(symbol=pos["symbol"], status=502, type="/problems/market-data-unavailable",
                               title="Market data unavailable", detail=f"No quote returned for {pos['symbol']}")
        if isinstance(quote, QuoteError):
            return PositionValuation(**base, error=quote)
        market_value = qty * quote.price
        cost_value = qty * float(cost_basis) if cost_basis is not None and base["currency"] == quote.currency else None
        included = quote.currency == currency
        return PositionValuation(
            **base, price=quote.price, quote_currency=quote.currency, market_value=_round(market_value),
            cost_value=_round(cost_value), unrealized_pl=_round(market_value - cost_value) if cost_value is not None else None,
            day_change=_round(qty * quote.change) if quote.change is not None else None,
            included_in_totals=included,
            note=None if included else (
                f"Quoted in {quote.currency}, portfolio in {currency}: not in totals" if quote.currency
                else f"Quote currency unknown, portfolio in {currency}: not in totals"),
            provenance=quote.provenance,
        )

