"""Roles one service plays for another. Services depend on these, never on each other's classes,
so tests pass small fakes and there are no import cycles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from shared.market.models import Quote, QuoteError, SymbolMatch
    from shared.schemas.portfolios import PortfolioPage
    from shared.schemas.valuations import PortfolioValuation
    from shared.schemas.symbols import SymbolPublic
    from shared.schemas.watchlists import WatchlistPage
    from shared.schemas.workspaces import WorkspacePage, WorkspacePublic


@runtime_checkable
class QuoteProvider(Protocol):
    """Latest quotes (the market DataManager). Unknown symbol -> NotFound; provider failure -> UpstreamError."""

    def get_quote(self, symbol: str) -> "Quote": ...

    def get_quotes(self, symbols: Sequence[str]) -> "list[Quote | QuoteError]": ...


@runtime_checkable
class SymbolSearchProvider(Protocol):
    """Symbol lookup from market-data providers (the DataManager's search)."""

    def search_symbols(self, q: str, limit: int = 10) -> "list[SymbolMatch]": ...

    def get_symbol(self, symbol: str) -> "SymbolMatch": ...


@runtime_checkable
class SymbolProvider(Protocol):
    """Known symbols (catalogue first, market search second)."""

    def find_symbol(self, symbol: str) -> "SymbolPublic | None": ...


@runtime_checkable
class WorkspaceProvider(Protocol):
    def list_workspaces(self, owner_id: str, *, limit: int = 20, cursor: str | None = None) -> "WorkspacePage": ...

    def get_workspace(self, owner_id: str, workspace_id: str) -> "WorkspacePublic": ...


@runtime_checkable
class WatchlistProvider(Protocol):
    def list_watchlists(self, owner_id: str, *, limit: int = 20, cursor: str | None = None) -> "WatchlistPage": ...

    def get_watchlist(self, owner_id: str, watchlist_id: str) -> Any: ...


@runtime_checkable
class PortfolioProvider(Protocol):
    def list_portfolios(self, owner_id: str, *, limit: int = 20, cursor: str | None = None) -> "PortfolioPage": ...

    def value_portfolio(self, owner_id: str, portfolio_id: str) -> "PortfolioValuation": ...

    def value_portfolios(self, owner_id: str, *, limit: int = 10) -> "tuple[list[PortfolioValuation], bool]": ...


@runtime_checkable
class ApiKeyIssuer(Protocol):
    """Key management (AuthService)."""

    def create_api_key(self, user_id: str, name: str) -> tuple[dict[str, Any], str]: ...

    def list_api_keys(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]: ...

    def get_api_key(self, user_id: str, key_id: str) -> dict[str, Any]: ...

    def revoke_api_key(self, user_id: str, key_id: str) -> None: ...

    def forget_user(self, user_id: str) -> None:
        """Drop the user's cached sign-ins on every instance (their roles or status changed)."""
