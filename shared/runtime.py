"""Composition root: builds the Core lazily, once per worker process.

`import function_app` must stay cheap, so nothing here runs at import. The first request
calls `get_core_async()`, which builds config -> secrets -> clients -> repositories ->
services exactly once (thread-safe). Tests build the same Core from fakes with
`build_core(settings, mongo=..., cache=..., ...)` and install it with `set_core()`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from shared.config import Settings, load_settings
from shared.errors import ConfigError, DatabaseUnavailable, ServiceUnavailable
from shared.http.cursors import CursorSeal
from shared.http.metrics import Metrics
from shared.http.stream_slots import StreamSlots
from shared.logging import configure_logging, register_secrets
from shared.queues.connection import queue_description

log = logging.getLogger("stockagent.runtime")


@dataclass
class Core:
    """Every long-lived object of one worker process."""

    settings: Settings
    metrics: Metrics
    executor: ThreadPoolExecutor
    cache: Any
    limiter: Any
    database: Any  # shared.data handle: .db, .description, .close()
    repos: Any
    services: Any
    stream_slots: StreamSlots
    # One thread per admitted chat turn (streamed or JSON): the instance cap is the pool size, so a turn never
    # queues for one and never takes one of `executor`'s threads from short calls.
    stream_executor: ThreadPoolExecutor
    backends: dict[str, str] = field(default_factory=dict)
    last_health: Any = None  # (monotonic time, probe results), reused briefly by shared.services.health
    closers: list[Callable[[], None]] = field(default_factory=list)

    @functools.cached_property
    def cursors(self) -> CursorSeal:
        """Seals pagination cursors; built on first use (command-line tools page nothing, servers check
        the key at start: `get_core`)."""
        return CursorSeal.from_settings(self.settings)

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a synchronous call in the worker pool, with this request's context (request id, user id)."""
        return await _run_in(self.executor, fn, *args, **kwargs)

    async def run_turn(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a whole chat turn (it waits for a model, for minutes at worst) on the stream pool, like a stream:
        its size is the cap on turns, so an admitted turn never queues and never holds a thread short calls need."""
        return await _run_in(self.stream_executor, fn, *args, **kwargs)

    async def authenticate(self, request: Any) -> Any:
        """The caller's Principal, None without credentials; raises Unauthorized for bad ones."""
        auth = self.services.auth
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not auth.has_credentials(headers):
            return None
        # A key seen in the last seconds resolves in-process; only a miss pays the thread hop and the lookup.
        return auth.cached_principal(headers) or await self.run(auth.authenticate, headers)

    async def rate_limit(self, group: str, key: str) -> Any:
        if self.limiter is None or not self.settings.rate_limits.enabled:
            return None
        if getattr(self.cache, "mode", "memory") == "redis":
            return await self.run(self.limiter.hit, group, key)  # network I/O: keep it off the event loop
        return self.limiter.hit(group, key)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:  # closing is best effort at shutdown
                log.warning("error while closing a core resource", exc_info=True)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.stream_executor.shutdown(wait=False, cancel_futures=True)


async def _run_in(executor: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(executor, call)


def _configure_telemetry(settings: Settings, metrics: Metrics) -> None:
    """Send traces and counters to Azure Monitor when a connection string is configured; never logs.

    Logs reach Application Insights through the Functions host, which receives every record from the
    worker (correlated with its invocation, sampled as host.json says). Exporting them here as well
    would send each record twice, so the distro's log exporter is off (docs/operations.md). It
    authenticates with APPLICATIONINSIGHTS_AUTHENTICATION_STRING (the app's identity), as the host does.
    """
    secret = settings.telemetry.applicationinsights_connection_string
    if secret is None or not secret.get_secret_value():
        return
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry import metrics as otel_metrics

        # The distro takes this switch from the environment only (a disable_logging keyword is overwritten).
        os.environ["OTEL_LOGS_EXPORTER"] = "none"
        # Describe the app as a Function App (as Microsoft's worker does); the distro's default list also
        # probes the VM metadata endpoint, a network call at every cold start that finds nothing here.
        os.environ.setdefault("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "azure_functions")
        # Live Metrics come from the host; a second stream from the worker would double its counts.
        configure_azure_monitor(connection_string=secret.get_secret_value(), enable_live_metrics=False)
        metrics.attach_otel(otel_metrics.get_meter("stockagent"))
    except Exception:  # telemetry must never stop the app from serving
        log.warning("Azure Monitor telemetry could not be configured", exc_info=True)


def _secret_values(settings: Settings) -> list[str]:
    values: list[str] = []

    def walk(node: Any) -> None:
        from pydantic import BaseModel, SecretStr

        if isinstance(node, SecretStr):
            values.append(node.get_secret_value())
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))

    walk(settings)
    return values


def build_core(
    settings: Settings | None = None,
    *,
    database: Any = None,
    cache: Any = None,
    market_providers: dict[str, Any] | None = None,
    model_clients: dict[str, Any] | None = None,
    queues: Any = None,
    clock: Callable[[], float] | None = None,
) -> Core:
    """Build the Core. Every argument left out is built from `settings` (real clients); `clock` is the
    monotonic clock of the database breaker (tests move it instead of sleeping)."""
    settings = settings or load_settings()
    register_secrets(_secret_values(settings))
    started = time.perf_counter()
    metrics = Metrics()
    _configure_telemetry(settings, metrics)
    executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="core")
    closers: list[Callable[[], None]] = []

    from shared.cache import CacheBackend, RateLimiter

    if cache is None:
        cache = CacheBackend.from_config(settings)
        if hasattr(cache, "close"):
            closers.append(cache.close)
    limiter = RateLimiter(settings, cache)

    from shared.data.client import build_database
    from shared.data.factory import RepositoryFactory

    if database is None:
        database = build_database(settings)
        closers.append(database.close)
    repos = RepositoryFactory(database.db, settings, description=database.description, clock=clock or time.monotonic)

    from shared.services.factory import ServiceFactory

    services = ServiceFactory(
        settings,
        repos=repos,
        cache=cache,
        metrics=metrics,
        executor=executor,
        market_providers=market_providers,
        model_clients=model_clients,
        queue_backend=queues,
    )
    core = Core(
        settings=settings,
        metrics=metrics,
        executor=executor,
        cache=cache,
        limiter=limiter,
        database=database,
        repos=repos,
        services=services,
        stream_slots=StreamSlots(settings.chat.max_streams_per_user, settings.chat.max_streams_per_instance),
        stream_executor=ThreadPoolExecutor(max_workers=settings.chat.max_streams_per_instance,
                                           thread_name_prefix="stream"),
        closers=closers,
    )
    core.backends = {
        "database": database.description,
        "cache": f"redis ({settings.redis.host or 'url'})" if getattr(cache, "mode", "memory") == "redis" else "memory",
        "market": ", ".join(sorted({p for order in settings.market.providers.values() for p in order})),
        "model": settings.models.provider,
        "queues": queues.description if queues is not None else queue_description(),
    }
    try:
        services.startup()
    except DatabaseUnavailable:
        # Serve anyway: health reports the database, data routes answer 503 until it is back.
        log.warning("database unavailable at start-up; local migrations and seeding skipped for this process")
    log.info("core built in %.0f ms", (time.perf_counter() - started) * 1000, extra={"backends": core.backends})
    return core


_core: Core | None = None
_lock = threading.Lock()
_failed_at: float | None = None
RETRY_BUILD_AFTER_S = 10.0  # a failed cold start (bad config, vault down) is retried at most this often


def get_core() -> Core:
    """The process-wide Core, built on first use.

    When the build fails, requests answer 503 with Retry-After and the build is retried at most
    every RETRY_BUILD_AFTER_S, so a misconfigured instance does not reload config and call Key
    Vault on every request; the cause is logged once per attempt.
    """
    global _core, _failed_at
    if _core is None:
        with _lock:
            if _core is None:
                if _failed_at is not None and time.monotonic() - _failed_at < RETRY_BUILD_AFTER_S:
                    raise ServiceUnavailable("The service could not start; retry shortly",
                                             retry_after=int(RETRY_BUILD_AFTER_S))
                try:
                    settings = load_settings()
                    configure_logging(settings.app.log_level)
                    CursorSeal.from_settings(settings)  # a server pages: no start without its cursor key, before any client
                    _core = build_core(settings)
                except Exception as exc:
                    _failed_at = time.monotonic()
                    log.error("the core could not be built: %s", exc if isinstance(exc, ConfigError) else type(exc).__name__,
                              exc_info=not isinstance(exc, ConfigError))
                    raise ServiceUnavailable("The service could not start; retry shortly",
                                             retry_after=int(RETRY_BUILD_AFTER_S)) from None
                _failed_at = None
    return _core


async def get_core_async() -> Core:
    if _core is not None:
        return _core
    return await asyncio.to_thread(get_core)


def set_core(core: Core | None) -> Core | None:
    """Install a Core (tests, the local host); returns the previous one."""
    global _core, _failed_at
    with _lock:
        previous, _core, _failed_at = _core, core, None
    return previous
