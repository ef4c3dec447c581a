"""ServiceFactory: wires repositories, cache and adapters into services, once each (singletons).

Every service is created on first use, so a request that needs only market data never
builds the chat stack, and a cold start pays only for what it serves.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable

from shared.config import Settings

log = logging.getLogger("stockagent.services")


@dataclass(frozen=True)
class HealthProbe:
    name: str
    required: bool
    check: Callable[[], tuple[bool, dict[str, Any]]]


class ServiceFactory:
    def __init__(
        self,
        settings: Settings,
        *,
        repos: Any,
        cache: Any,
        metrics: Any,
        executor: Executor,
        market_providers: dict[str, Any] | None = None,
        model_clients: dict[str, Any] | None = None,
        queue_backend: Any = None,
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.cache = cache
        self.metrics = metrics
        self.executor = executor
        self._market_providers = market_providers
        self._model_clients = model_clients
        self._queue_backend = queue_backend
        self._services: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _get(self, name: str, build: Callable[[], Any]) -> Any:
        service = self._services.get(name)
        if service is None:
            with self._lock:
                service = self._services.get(name)
                if service is None:
                    service = build()
                    self._services[name] = service
        return service

    # ------------------------------------------------------------ services

    @property
    def auth(self) -> Any:
        def build() -> Any:
            from shared.services.auth import AuthService

            return AuthService(
                settings=self.settings,
                user_repository=self.repos.get_user_repository(),
                api_key_repository=self.repos.get_api_key_repository(),
                executor=self.executor,
                cache=self.cache,
            )

        return self._get("auth", build)

    @property
    def singleflight(self) -> Any:
        def build() -> Any:
            from shared.cache import SingleFlight

            return SingleFlight(self.cache)

        return self._get("singleflight", build)

    @property
    def market(self) -> Any:
        def build() -> Any:
            from shared.market import build_data_manager

            return build_data_manager(
                self.settings,
                self.cache,
                self.singleflight,
                providers=self._market_providers,
                executor=self.executor,
                snapshot_sink=self.market_store,
            )

        return self._get("market", build)

    @property
    def market_store(self) -> Any:
        def build() -> Any:
            from shared.services.market_store import MarketStore

            return MarketStore(self.repos)

        return self._get("market_store", build)

    @property
    def market_refresh(self) -> Any:
        def build() -> Any:
            from shared.services.market_refresh import MarketRefreshService

            return MarketRefreshService(settings=self.settings, repos=self.repos, market=self.market, queues=self.queues)

        return self._get("market_refresh", build)

    # ------------------------------------------------------------ background jobs (queues)

    @property
    def queue_backend(self) -> Any:
        """The queue service the Functions host's own AzureWebJobsStorage settings name (in-process locally
        when none is set); the local host polls the same object."""

        def build() -> Any:
            from shared.queues import build_queue_backend

            return self._queue_backend or build_queue_backend(local=self.settings.is_local)

        return self._get("queue_backend", build)

    @property
    def queues(self) -> Any:
        def build() -> Any:
            from shared.queues import QueueProducer, host_queue_options

            return QueueProducer(self.queue_backend, encoding=host_queue_options().message_encoding)

        return self._get("queues", build)

    @property
    def jobs(self) -> Any:
        def build() -> Any:
            from shared.queues import host_queue_options
            from shared.services.jobs import RECEIPT_RETENTION_S, JobRunner

            options = host_queue_options()
            return JobRunner(receipts=self.repos.get_job_receipt_repository(),
                             poison=self.repos.get_poison_message_repository(), metrics=self.metrics,
                             max_dequeue_count=options.max_dequeue_count, lease_s=options.function_timeout_s,
                             retention_s=RECEIPT_RETENTION_S)

        return self._get("jobs", build)

    @property
    def migrations(self) -> Any:
        def build() -> Any:
            from shared.services.migrations import MigrationService

            return MigrationService(settings=self.settings, repos=self.repos)

        return self._get("migrations", build)

    @property
    def models(self) -> Any:
        def build() -> Any:
            from shared.ai import ModelFactory

            return ModelFactory(self.settings, clients=self._model_clients)

        return self._get("models", build)

    @property
    def agent_user_data(self) -> Any:
        """The caller's own data for the agent's personal tools (chat and MCP), through the owner-scoped services."""

        def build() -> Any:
            from shared.services.chat import AgentUserData

            return AgentUserData(self)

        return self._get("agent_user_data", build)

    @property
    def chat(self) -> Any:
        def build() -> Any:
            from shared.services.chat import build_chat_service

            return build_chat_service(self)

        return self._get("chat", build)

    # ------------------------------------------------------------ user data services (issue 6)
    # BEGIN user-domain services
    @property
    def market_access(self) -> Any:
        """The DataManager as QuoteProvider/SymbolSearchProvider, resolved on first call (see DeferredMarket)."""

        def build() -> Any:
            from shared.services.market_access import DeferredMarket

            return DeferredMarket(lambda: self.market)

        return self._get("market_access", build)

    @property
    def symbols(self) -> Any:
        def build() -> Any:
            from shared.services.symbols import SymbolsService

            return SymbolsService(symbol_repository=self.repos.get_symbol_repository(), market=self.market_access,
                                  cache=self.cache)

        return self._get("symbols", build)

    @property
    def workspaces(self) -> Any:
        def build() -> Any:
            from shared.services.workspaces import WorkspaceService

            return WorkspaceService(workspace_repository=self.repos.get_workspace_repository(), cache=self.cache)

        return self._get("workspaces", build)

    @property
    def watchlists(self) -> Any:
        def build() -> Any:
            from shared.services.watchlists import WatchlistService

            return WatchlistService(watchlist_repository=self.repos.get_watchlist_repository(),
                                    symbol_provider=self.symbols, workspace_provider=self.workspaces, cache=self.cache)

        return self._get("watchlists", build)

    @property
    def portfolios(self) -> Any:
        def build() -> Any:
            from shared.services.portfolios import PortfolioService

            return PortfolioService(portfolio_repository=self.repos.get_portfolio_repository(),
                                    position_repository=self.repos.get_position_repository(),
                                    quote_provider=self.market_access, symbol_provider=self.symbols, cache=self.cache)

        return self._get("portfolios", build)

    @property
    def notes(self) -> Any:
        def build() -> Any:
            from shared.services.notes import NoteService

            return NoteService(note_repository=self.repos.get_note_repository(), cache=self.cache)

        return self._get("notes", build)

    @property
    def ideas(self) -> Any:
        def build() -> Any:
            from shared.services.notes import IdeaService

            return IdeaService(idea_repository=self.repos.get_investment_idea_repository(), cache=self.cache)

        return self._get("ideas", build)

    @property
    def users(self) -> Any:
        def build() -> Any:
            from shared.services.users import UserService

            return UserService(user_repository=self.repos.get_user_repository(),
                               profile_repository=self.repos.get_user_profile_repository(),
                               preferences_repository=self.repos.get_user_preferences_repository(),
                               api_keys=self.auth, watchlist_repository=self.repos.get_watchlist_repository(),
                               cache=self.cache)

        return self._get("users", build)

    @property
    def dashboard(self) -> Any:
        def build() -> Any:
            from shared.services.dashboard import DashboardService

            return DashboardService(workspace_provider=self.workspaces, watchlist_provider=self.watchlists,
                                    portfolio_provider=self.portfolios, quote_provider=self.market_access,
                                    cache=self.cache)

        return self._get("dashboard", build)

    # END user-domain services

    # ------------------------------------------------------------ lifecycle and health

    def startup(self) -> None:
        """Work done once per process after the core is built: local seeding, and warming the model
        SDK in the background so the first chat does not wait for `import openai` (~1 s)."""
        if self.settings.models.provider != "offline":
            self.executor.submit(self._warm_models)
        self.market.check_providers()  # a market provider that cannot run as configured is named in the start-up log
        if self.settings.is_local:
            self.migrations.run(wait_s=30)  # workers starting together: the second waits for the first
            self.auth.seed_local_admin()

    def _warm_models(self) -> None:
        try:
            client = self.models.get(self.models.resolve())
            getattr(client, "client", None)  # builds the SDK client (imports openai) once, off the request path
        except Exception:  # warming is an optimisation: the first request reports any real problem
            log.warning("could not warm the model client", exc_info=True)

    def health_probes(self) -> list[HealthProbe]:
        probes = [
            HealthProbe("database", True, self.repos.health_check),
            HealthProbe("cache", False, self._cache_health),
        ]
        probes.append(HealthProbe("market_data", False, lambda: self.market.health_check()))
        if "models" in self._services:
            probes.append(HealthProbe("models", False, lambda: self.models.health()))
        return probes

    def counters(self) -> dict[str, dict[str, int]]:
        """Counters kept by services (cache hits/misses per data type, upstream calls per provider)."""
        out: dict[str, dict[str, int]] = {}
        if "market" in self._services:
            # {"upstream": {"yahoo": {"ok": 3}}} -> {"market_upstream": {"yahoo:ok": 3}}
            for group, values in self.market.stats().items():
                flat: dict[str, int] = {}
                for name, value in (values or {}).items():
                    if isinstance(value, dict):
                        flat.update({f"{name}:{k}": int(v) for k, v in value.items() if isinstance(v, (int, float))})
                    elif isinstance(value, (int, float)):
                        flat[str(name)] = int(value)
                if flat:
                    out[f"market_{group}"] = flat
        return out

    def _cache_health(self) -> tuple[bool, dict[str, Any]]:
        ok, details = self.cache.health_check()
        # Failed over to memory: requests still succeed, so the component is degraded, not down.
        if details.get("status") == "degraded":
            return True, {**details, "status": "degraded"}
        return ok, details
