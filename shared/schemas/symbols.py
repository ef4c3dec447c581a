"""Symbol catalogue models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.http.schemas import Page, QueryModel
from shared.schemas.common import Symbol


class SymbolPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")

    symbol: str
    name: str
    exchange: str | None = None
    type: str | None = None
    currency: str | None = None
    source: str = Field("catalogue", description="'catalogue' (seeded collection) or the market-data provider search")


SymbolPage = Page[SymbolPublic]


class SymbolSearchQuery(QueryModel):
    q: str | None = Field(None, max_length=64, description="Ticker prefix or part of the company name")
    limit: int = Field(20, ge=1, le=50)
    cursor: str | None = Field(None, max_length=512, pattern=r"^[A-Za-z0-9_\-=]*$",
                               description="Browse the catalogue page by page (only without q)")


class SymbolPath(BaseModel):
    symbol: Symbol
