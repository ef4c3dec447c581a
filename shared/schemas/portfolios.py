"""Portfolio, position and valuation models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.http.schemas import Page, StrictModel
from shared.market.models import Provenance, QuoteError
from shared.schemas.common import Currency, Description, Name, PatchModel, Price, Quantity, ResourcePublic, Symbol


class PortfolioCreate(StrictModel):
    name: Name
    currency: Currency = "USD"
    description: Description | None = None


class PortfolioUpdate(PatchModel):
    non_nullable = ("name", "currency")

    name: Name | None = None
    currency: Currency | None = None
    description: Description | None = None


class PortfolioPublic(ResourcePublic):
    name: str
    currency: str = "USD"
    description: str | None = None


PortfolioPage = Page[PortfolioPublic]

class PositionCreate(StrictModel):
    symbol: Symbol
    quantity: Quantity = Field(description="Number of units held (at least 1e-9)")
    cost_basis: Price = Field(description="Average cost per unit in `currency` (0, or at least 1e-9)")
    currency: Currency = "USD"


class PositionUpdate(PatchModel):
    non_nullable = ("quantity", "cost_basis", "currency")

    quantity: Quantity | None = None
    cost_basis: Price | None = None
    currency: Currency | None = None


class PositionPublic(ResourcePublic):
    portfolio_id: str
    symbol: str
    quantity: float
    cost_basis: float | None = None
    currency: str = "USD"


PositionPage = Page[PositionPublic]


class PositionValuation(BaseModel):
    position_id: str
    symbol: str
    quantity: float
    cost_basis: float | None = None
    currency: str
    price: float | None = None
    quote_currency: str | None = None
    market_value: float | None = None
    cost_value: float | None = None
    unrealized_pl: float | None = None
    day_change: float | None = None
    included_in_totals: bool = False
    note: str | None = None
    provenance: Provenance | None = None
    error: QuoteError | None = None


class PortfolioValuation(BaseModel):
    """Totals cover only positions priced in the portfolio currency; failed quotes are listed, never defaulted."""

    portfolio_id: str
    name: str
    currency: str
    status: Literal["complete", "partial", "unavailable", "empty"]
    as_of: datetime
    market_value: float | None = None
    cost_value: float | None = None
    unrealized_pl: float | None = None
    day_change: float | None = None
    priced_positions: int = 0
    failed_positions: int = 0
    positions: list[PositionValuation] = Field(default_factory=list)
