"""RepositoryFactory: the one place that wires a Database into repositories (singletons per factory)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shared.data import repositories as r
from shared.data.errors import database_breaker_policy
from shared.data.jobs import MongoJobReceiptRepository, MongoPoisonMessageRepository
from shared.data.repository import MongoGenericRepository, ping_database
from shared.resilience import CircuitBreaker

if TYPE_CHECKING:
    from pymongo.database import Database

    from shared.config.models import Settings

R = TypeVar("R", bound=MongoGenericRepository)


class RepositoryFactory:
    """Creates each repository once (thread-safe) and reports database health.

    `settings` is kept for repositories that need configuration; `description` is the
    log-safe backend label from `build_database` (shown by `health_check`).
    """

    def __init__(self, db: Database, settings: Settings | None = None, *, description: str | None = None,
                 logger: logging.Logger | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._settings = settings
        self._description = description
        self._repos: dict[type, MongoGenericRepository] = {}
        self._lock = threading.Lock()
        self.logger = logger or logging.getLogger(f"{__name__}.RepositoryFactory")
        #: One breaker for the database, shared by every repository of this factory (see shared.data.errors).
        self.breaker = CircuitBreaker("database", database_breaker_policy(settings), clock=clock)

    @property
    def db(self) -> Database:
        return self._db

    def _get(self, cls: type[R]) -> R:
        repo = self._repos.get(cls)
        if repo is None:
            with self._lock:
                repo = self._repos.get(cls)
                if repo is None:
                    repo = cls(self._db, logger=self.logger.getChild(cls.collection_name), breaker=self.breaker)
                    self._repos[cls] = repo
        return repo  # type: ignore[return-value]

    def get_user_repository(self) -> r.MongoUserRepository:
        return self._get(r.MongoUserRepository)

    def get_api_key_repository(self) -> r.MongoApiKeyRepository:
        return self._get(r.MongoApiKeyRepository)

    def get_user_profile_repository(self) -> r.MongoUserProfileRepository:
        return self._get(r.MongoUserProfileRepository)

    def get_user_preferences_repository(self) -> r.MongoUserPreferencesRepository:
        return self._get(r.MongoUserPreferencesRepository)

    def get_workspace_repository(self) -> r.MongoWorkspaceRepository:
        return self._get(r.MongoWorkspaceRepository)

    def get_watchlist_repository(self) -> r.MongoWatchlistRepository:
        return self._get(r.MongoWatchlistRepository)

    def get_portfolio_repository(self) -> r.MongoPortfolioRepository:
        return self._get(r.MongoPortfolioRepository)

    def get_position_repository(self) -> r.MongoPositionRepository:
        return self._get(r.MongoPositionRepository)

    def get_note_repository(self) -> r.MongoNoteRepository:
        return self._get(r.MongoNoteRepository)

    def get_investment_idea_repository(self) -> r.MongoInvestmentIdeaRepository:
        return self._get(r.MongoInvestmentIdeaRepository)

    def get_symbol_repository(self) -> r.MongoSymbolRepository:
        return self._get(r.MongoSymbolRepository)

    def get_chat_repository(self) -> r.MongoChatRepository:
        return self._get(r.MongoChatRepository)

    def get_market_data_repository(self) -> r.MongoMarketDataRepository:
        return self._get(r.MongoMarketDataRepository)

    def get_market_snapshot_repository(self) -> r.MongoMarketSnapshotRepository:
        return self._get(r.MongoMarketSnapshotRepository)

    def get_job_receipt_repository(self) -> MongoJobReceiptRepository:
        return self._get(MongoJobReceiptRepository)

    def get_poison_message_repository(self) -> MongoPoisonMessageRepository:
        return self._get(MongoPoisonMessageRepository)

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) from one ping through the breaker: `status`, `breaker`, `latency_ms` or
        `error`, `backend`; never raises, and answers at once while the breaker is open."""
        ok, details = ping_database(self._db, self.breaker)
        return ok, {"component": "database", **({"backend": self._description} if self._description else {}), **details}
