"""Watchlist models."""

from __future__ import annotations

from pydantic import Field

from shared.http.schemas import Page, StrictModel
from shared.schemas.common import Name, PatchModel, ResourcePublic, Symbol, SymbolList


class WatchlistCreate(StrictModel):
    name: Name
    symbols: SymbolList = Field(default_factory=list)
    workspace_id: str | None = Field(None, max_length=64)


class WatchlistUpdate(PatchModel):
    non_nullable = ("name", "symbols")

    name: Name | None = None
    symbols: SymbolList | None = None
    workspace_id: str | None = Field(None, max_length=64)


class WatchlistSymbolAdd(StrictModel):
    symbol: Symbol


class WatchlistPublic(ResourcePublic):
    name: str
    symbols: list[str] = Field(default_factory=list)
    workspace_id: str | None = None


WatchlistPage = Page[WatchlistPublic]
