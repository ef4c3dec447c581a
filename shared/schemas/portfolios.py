"""Portfolio and position models (valuations: shared.schemas.valuations)."""

from __future__ import annotations

from pydantic import Field

from shared.http.schemas import Page, StrictModel
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
