"""Roles the AI core depends on. Implementations live elsewhere (shared.market, shared.data, the cache);
the AI package only talks to these Protocols so it never imports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from shared.ai.models.base import ModelEvent, ModelResult
    from shared.ai.tools.personal import NoteItem, WatchlistItem
    from shared.market.models import Fundamentals, History, IndicatorSeries, News, Quote, QuoteError, SymbolMatch
    from shared.schemas.valuations import PortfolioValuation


@runtime_checkable
class MarketData(Protocol):
    """Market data with provenance (shared.market DataManager implements it)."""

    def get_quote(self, symbol: str) -> "Quote": ...

    def get_quotes(self, symbols: list[str]) -> "list[Quote | QuoteError]": ...

    def get_history(self, symbol: str, period: str = "1mo", interval: str = "1d") -> "History": ...

    def get_fundamentals(self, symbol: str) -> "Fundamentals": ...

    def get_news(self, symbol: str, limit: int = 10) -> "News": ...

    def get_indicators(self, symbol: str, names: list[str]) -> "list[IndicatorSeries]": ...

    def search_symbols(self, q: str, limit: int = 10) -> "list[SymbolMatch]": ...


@runtime_checkable
class UserData(Protocol):
    """Owner-scoped personal data; every method takes the caller's user_id."""

    def list_watchlists(self, user_id: str) -> "list[WatchlistItem]": ...

    def portfolio_summary(self, user_id: str) -> "list[PortfolioValuation]": ...

    def list_notes(self, user_id: str, symbol: str | None = None) -> "list[NoteItem]": ...


@runtime_checkable
class ChatStore(Protocol):
    """Owner-scoped persistence of conversations.

    `get` returns the conversation dict including `messages` (list of {role, content, ...}, oldest first)
    and raises shared.errors.NotFound for an unknown id or another user's conversation.
    """

    def create(self, user_id: str, title: str) -> dict: ...

    def get(self, user_id: str, chat_id: str) -> dict: ...

    def append_messages(self, user_id: str, chat_id: str, messages: list[dict]) -> None: ...


@runtime_checkable
class Budget(Protocol):
    """Per-user daily token budget."""

    def check(self, user_id: str) -> None: ...  # raises shared.errors.RateLimited(retry_after=...)

    def add(self, user_id: str, tokens: int) -> None: ...


@runtime_checkable
class ChatModel(Protocol):
    """A chat-completions model with tools (every BaseModelClient is one)."""

    provider: str
    model: str

    def generate(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> "ModelResult": ...

    def generate_stream(
        self, messages: list[dict], tools: list[dict] | None = None, **opts: Any
    ) -> "Iterator[ModelEvent]": ...
