"""BaseService: logger, cache, injectable clock, and the health-report contract."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol


class HealthCheckable(Protocol):
    def health_check(self) -> tuple[bool, dict[str, Any]]: ...


class LoggingMixin:
    """`self.logger` named after the concrete class unless one is injected."""

    _logger: logging.Logger | None = None

    @property
    def logger(self) -> logging.Logger:
        if self._logger is None:
            self._logger = logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")
        return self._logger


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class BaseService(LoggingMixin, ABC):
    def __init__(
        self,
        *,
        cache: Any = None,
        time_provider: Callable[[], datetime] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.cache = cache
        self._time_provider = time_provider or utc_now
        self._logger = logger

    def _utc_now(self) -> datetime:
        return self._time_provider()

    @abstractmethod
    def health_check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): healthy is False only when a required dependency is down."""

    def _dependencies_health_report(
        self,
        *,
        required: Mapping[str, HealthCheckable | None],
        optional: Mapping[str, HealthCheckable | None] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Aggregate dependency health: a failed optional dependency degrades, never fails."""
        components: dict[str, Any] = {}
        required_ok = True
        optional_ok = True
        for group, deps in (("required", required), ("optional", optional or {})):
            for name, dep in deps.items():
                if dep is None:
                    if group == "required":
                        required_ok = False
                    components[name] = {"status": "missing", "required": group == "required"}
                    continue
                started = time.perf_counter()
                try:
                    ok, details = dep.health_check()
                except Exception as exc:  # a probe that raises is a failed probe
                    ok, details = False, {"error": type(exc).__name__}
                components[name] = {
                    "status": "healthy" if ok else "unhealthy",
                    "required": group == "required",
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                    **{k: v for k, v in details.items() if k in ("mode", "status_detail", "breaker", "error")},
                }
                if not ok:
                    if group == "required":
                        required_ok = False
                    else:
                        optional_ok = False
        status = "unhealthy" if not required_ok else ("degraded" if not optional_ok else "healthy")
        report: dict[str, Any] = {"status": status, "service": type(self).__name__, "components": components}
        if required_ok and not optional_ok:
            report["optional_status"] = "degraded"
        return required_ok, report
