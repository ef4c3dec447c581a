"""The caller's dashboard: each section reports its own status so one failing dependency degrades only its part."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.market.models import Provenance, QuoteError
from shared.schemas.workspaces import WorkspacePublic

SectionStatus = Literal["ok", "degraded", "unavailable"]


class DashboardQuote(BaseModel):
    symbol: str
    price: float | None = None
    currency: str | None = None
    change: float | None = None
    change_percent: float | None = None
    provenance: Provenance | None = None
    error: QuoteError | None = None


class DashboardWatchlist(BaseModel):
    id: str
    name: str
    symbols: list[str]
    quotes: list[DashboardQuote] = Field(default_factory=list)


class DashboardPortfolio(BaseModel):
    id: str
    name: str
    currency: str
    status: str
    market_value: float | None = None
    day_change: float | None = None
    priced_positions: int = 0
    failed_positions: int = 0


class CurrencyTotal(BaseModel):
    market_value: float
    day_change: float


class WorkspacesSection(BaseModel):
    status: SectionStatus = "ok"
    error: str | None = None
    items: list[WorkspacePublic] = Field(default_factory=list)
    has_more: bool = False


class WatchlistsSection(BaseModel):
    status: SectionStatus = "ok"
    error: str | None = None
    items: list[DashboardWatchlist] = Field(default_factory=list)
    has_more: bool = False


class PortfoliosSection(BaseModel):
    status: SectionStatus = "ok"
    error: str | None = None
    items: list[DashboardPortfolio] = Field(default_factory=list)
    totals: dict[str, CurrencyTotal] = Field(default_factory=dict, description="Value and day change per currency")
    has_more: bool = False


class DashboardPublic(BaseModel):
    status: SectionStatus
    generated_at: datetime
    workspaces: WorkspacesSection
    watchlists: WatchlistsSection
    portfolios: PortfoliosSection
