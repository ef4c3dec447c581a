"""Wires the AI core (shared/ai) to our storage: conversations in `chats`, the daily token
budget in the cache, and the caller's own data for the agent's personal tools."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from shared import errors
from shared.ai.tools.personal import NoteItem, WatchlistItem
from shared.schemas.valuations import PortfolioValuation

#: Messages a turn stores: the question and the answer.
TURN_MESSAGES = 2
#: Messages `detail` returns: the newest ones (the conversation's messages page through `messages`).
DETAIL_MESSAGES = 200


class MongoChatStore:
    """ChatStore over the owner-scoped chats repository (records in `chats`, messages in `chat_messages`).

    A turn reads the record and the last `context_messages` messages and appends two, so its cost does not
    grow with the conversation; a conversation holds at most `max_messages` messages.
    """

    def __init__(self, chats: Any, *, max_messages: int, context_messages: int) -> None:
        self._chats = chats
        self._max = max_messages
        self._context = context_messages

    def create(self, user_id: str, title: str) -> dict[str, Any]:
        return self._chats.insert_one(user_id, {"title": title})

    def get(self, user_id: str, chat_id: str) -> dict[str, Any]:
        """The conversation to continue: its record and its last `context_messages` messages (oldest first).

        NotFound for unknown or another user's; ConversationFull (422) when one more turn would take it past
        `max_messages`: the client starts a new conversation."""
        chat = self._chats.get(user_id, chat_id)
        if int(chat.get("message_count") or 0) + TURN_MESSAGES > self._max:
            raise errors.ConversationFull(
                f"This conversation has reached its limit of {self._max} messages; start a new conversation "
                "(send the message without conversation_id)",
                errors={"conversation_id": ["Conversation is full; start a new one"]})
        return {**chat, "messages": self._chats.recent_messages(user_id, chat_id, self._context)}

    def record(self, user_id: str, chat_id: str) -> dict[str, Any]:
        """The conversation's record (version, title, message_count), no messages; NotFound for unknown or another
        user's. What a precondition (If-Match) compares with: a full conversation can still be deleted."""
        return self._chats.get(user_id, chat_id)

    def detail(self, user_id: str, chat_id: str) -> dict[str, Any]:
        """The conversation with its newest `DETAIL_MESSAGES` messages, oldest first."""
        chat = self._chats.get(user_id, chat_id)
        return {**chat, "messages": self._chats.recent_messages(user_id, chat_id, DETAIL_MESSAGES)}

    def messages(self, user_id: str, chat_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the conversation's messages in order; NotFound for unknown or another user's."""
        return self._chats.page_messages(user_id, chat_id, limit=limit, cursor=cursor)

    def append_messages(self, user_id: str, chat_id: str, messages: list[dict[str, Any]]) -> None:
        self._chats.append_messages(user_id, chat_id, messages)

    def list(self, user_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        # Chats not yet moved to chat_messages still embed theirs: never list them.
        return self._chats.find_many(user_id, limit=limit, cursor=cursor, projection={"messages": 0})

    def delete(self, user_id: str, chat_id: str, expected_version: int | None = None) -> None:
        self._chats.delete_one(user_id, chat_id, expected_version)


class DailyTokenBudget:
    """Per-user tokens per UTC day, counted with the cache's atomic counter (shared by instances)."""

    def __init__(self, cache: Any, limit: int, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._cache = cache
        self._limit = limit
        self._clock = clock

    def _key(self, user_id: str) -> tuple[str, int]:
        now = self._clock()
        midnight = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
        return self._cache.key("tokens", now.strftime("%Y%m%d"), user_id), max(1, int((midnight - now).total_seconds()))

    def check(self, user_id: str) -> None:
        key, until_midnight = self._key(user_id)
        if self._cache.incr(key, 0, ttl=until_midnight) >= self._limit:
            raise errors.RateLimited(
                f"Daily token budget of {self._limit} tokens is used up; it resets at 00:00 UTC",
                retry_after=until_midnight,
            )

    def add(self, user_id: str, tokens: int) -> None:
        if tokens <= 0:
            return
        key, until_midnight = self._key(user_id)
        self._cache.incr(key, tokens, ttl=until_midnight)


class AgentUserData:
    """The caller's own data for the agent's personal tools, through the same owner-scoped services
    as the API (so the agent can never see more than the user could)."""

    MAX_ITEMS = 50

    def __init__(self, services: Any) -> None:
        self._services = services

    def list_watchlists(self, user_id: str) -> list[WatchlistItem]:
        page = self._services.watchlists.list_watchlists(user_id, limit=self.MAX_ITEMS)
        return [WatchlistItem.model_validate(w) for w in page.items]

    def portfolio_summary(self, user_id: str) -> list[PortfolioValuation]:
        valuations, _ = self._services.portfolios.value_portfolios(user_id, limit=10)
        return valuations

    def list_notes(self, user_id: str, symbol: str | None = None) -> list[NoteItem]:
        page = self._services.notes.list_notes(user_id, symbol=symbol, limit=20)
        return [NoteItem.model_validate(n) for n in page.items]


def build_chat_service(services: Any) -> Any:
    from shared.ai import ChatService, StockAgent

    settings = services.settings
    agent = StockAgent(market=services.market, user_data=services.agent_user_data, factory=services.models, settings=settings)
    users = services.users

    def preference(user_id: str) -> str | None:
        # The typed reader of preferences, not the stored document: its layout is the users service's.
        provider: str | None = users.get_preferences(user_id).preferred_model_provider
        return provider

    metrics = services.metrics

    def count_turn(done: dict) -> None:
        provider = done.get("provider") or "unknown"
        metrics.incr("llm_calls", provider)
        metrics.incr("llm_tokens", provider, int((done.get("usage") or {}).get("total_tokens") or 0))
        if done.get("ungrounded_numbers"):
            metrics.incr("llm_ungrounded_numbers", provider, len(done["ungrounded_numbers"]))
        for fallback in done.get("fallback_trace") or []:
            metrics.incr("llm_fallbacks", str(fallback.get("provider")))

    return ChatService(
        agent,
        MongoChatStore(services.repos.get_chat_repository(), max_messages=settings.chat.max_conversation_messages,
                       context_messages=settings.chat.context_messages),
        DailyTokenBudget(services.cache, settings.chat.daily_token_budget),
        settings,
        preference=preference,
        on_turn=count_turn,
    )
