"""Valuations of holdings at current quotes: what the portfolio routes answer and what the agent's portfolio tool
returns. Plain data (no HTTP types), so the AI layer can declare them as a tool's output."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.market.models import Provenance, QuoteError


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
