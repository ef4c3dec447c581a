"""Watchlists: CRUD, names unique per owner, symbols validated against the known symbols."""

from __future__ import annotations

from typing import Any, Iterable

from shared.errors import NotFound, ValidationFailed
from shared.market.symbols import normalize_symbol
from shared.schemas.common import MAX_SYMBOLS
from shared.schemas.watchlists import WatchlistCreate, WatchlistPage, WatchlistPublic, WatchlistUpdate
from shared.services._owned import patch
from shared.services.base import BaseService
from shared.services.protocols import SymbolProvider, WorkspaceProvider


class WatchlistService(BaseService):
    """Scoped to `owner_id`; unknown symbols and foreign workspace ids are 422, never stored."""

    def __init__(self, *, watchlist_repository: Any, symbol_provider: SymbolProvider,
                 workspace_provider: WorkspaceProvider | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._repo = watchlist_repository
        self._symbols = symbol_provider
        self._workspaces = workspace_provider

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(
            required={"watchlist_repository": self._repo},
            optional={"symbols": self._symbols if hasattr(self._symbols, "health_check") else None},
        )

    def list_watchlists(self, owner_id: str, *, limit: int = 20, cursor: str | None = None) -> WatchlistPage:
        items, next_cursor = self._repo.find_many(owner_id, limit=limit, cursor=cursor)
        return WatchlistPage(items=[WatchlistPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_watchlist(self, owner_id: str, data: WatchlistCreate) -> WatchlistPublic:
        """Conflict (409, from the repository's unique name index) when the owner already has that name."""
        doc = data.model_dump()
        doc["symbols"] = self._validated_symbols(data.symbols)
        self._check_workspace(owner_id, data.workspace_id)
        return WatchlistPublic.model_validate(self._repo.insert_one(owner_id, doc))

    def get_watchlist(self, owner_id: str, watchlist_id: str) -> WatchlistPublic:
        return WatchlistPublic.model_validate(self._repo.get(owner_id, watchlist_id))

    def update_watchlist(self, owner_id: str, watchlist_id: str, data: WatchlistUpdate,
                         expected_version: int | None = None) -> WatchlistPublic:
        changes = data.changes()
        if "symbols" in changes:
            changes["symbols"] = self._validated_symbols(changes["symbols"])
        if changes.get("workspace_id") is not None:
            self._check_workspace(owner_id, changes["workspace_id"])
        return WatchlistPublic.model_validate(patch(self._repo, owner_id, watchlist_id, changes, expected_version))

    def delete_watchlist(self, owner_id: str, watchlist_id: str, expected_version: int | None = None) -> None:
        self._repo.delete_one(owner_id, watchlist_id, expected_version)

    def add_symbol(self, owner_id: str, watchlist_id: str, symbol: str) -> WatchlistPublic:
        """Idempotent: adding a symbol already in the list changes nothing but the version.

        422 when the list is full (checked atomically with the write, so racing adds cannot exceed MAX_SYMBOLS).
        """
        self._repo.get(owner_id, watchlist_id)  # 404 before 422: the list must be the caller's
        sym = self._validated_symbols([symbol])[0]
        return WatchlistPublic.model_validate(self._repo.add_symbol(owner_id, watchlist_id, sym, max_symbols=MAX_SYMBOLS))

    def get_symbol_entry(self, owner_id: str, watchlist_id: str, symbol: str) -> WatchlistPublic:
        """The watchlist, when it is the caller's and contains `symbol`; NotFound otherwise."""
        watchlist = self.get_watchlist(owner_id, watchlist_id)
        sym = normalize_symbol(symbol)
        if sym not in watchlist.symbols:
            raise NotFound(f"{sym} is not in this watchlist")
        return watchlist

    def remove_symbol(self, owner_id: str, watchlist_id: str, symbol: str, expected_version: int | None = None) -> None:
        """NotFound when the list is not the caller's or does not contain the symbol; with `expected_version`,
        PreconditionFailed when the list has changed since."""
        self.get_symbol_entry(owner_id, watchlist_id, symbol)
        self._repo.remove_symbol(owner_id, watchlist_id, normalize_symbol(symbol), expected_version)

    # ------------------------------------------------------------ helpers

    def _validated_symbols(self, symbols: Iterable[str]) -> list[str]:
        out: list[str] = []
        unknown: list[str] = []
        for raw in symbols:
            sym = normalize_symbol(raw)
            if sym in out:
                continue
            if self._symbols.find_symbol(sym) is None:
                unknown.append(sym)
            out.append(sym)
        if unknown:
            raise ValidationFailed(f"Unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                                   errors={"symbol": [f"Unknown symbol {s}" for s in unknown]})
        return out

    def _check_workspace(self, owner_id: str, workspace_id: str | None) -> None:
        if workspace_id is None or self._workspaces is None:
            return
        try:
            self._workspaces.get_workspace(owner_id, workspace_id)
        except NotFound:
            raise ValidationFailed("Unknown workspace", errors={"workspace_id": ["No such workspace"]}) from None
