"""A small per-provider circuit breaker (closed -> open -> half-open -> closed)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Stops calling a provider that keeps failing.

    Guarantees:
    - Opens after ``failure_threshold`` consecutive failures, or at once on a rate-limit failure.
    - While open, ``allow()`` is False until ``cooldown_s`` has passed; then the breaker is
      half-open and lets exactly one probe through at a time.
    - A probe's success closes it; a probe's failure re-opens it for another cool-down.
    Thread-safe; state is per process.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = max(1, int(failure_threshold))
        self._cooldown = float(cooldown_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._last_error: str | None = None
        self._opens = 0

    @property
    def state(self) -> str:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _maybe_half_open(self) -> None:
        if self._state == OPEN and self._opened_at is not None and self._clock() - self._opened_at >= self._cooldown:
            self._state = HALF_OPEN
            self._probe_in_flight = False

    def allow(self) -> bool:
        """Whether a call may go to the provider now (reserves the probe slot when half-open)."""
        with self._lock:
            self._maybe_half_open()
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._opened_at = None
            self._probe_in_flight = False

    def release(self) -> None:
        """Give back a slot taken by ``allow()`` without a verdict (the call never really reached the
        provider, e.g. it does not serve that request): frees the half-open probe slot, state unchanged."""
        with self._lock:
            self._probe_in_flight = False

    def record_failure(self, *, rate_limited: bool = False, error: str | None = None) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = error
            if self._state == HALF_OPEN or rate_limited or self._failures >= self._threshold:
                if self._state != OPEN:
                    self._opens += 1
                self._state = OPEN
                self._opened_at = self._clock()
                self._probe_in_flight = False

    def snapshot(self) -> dict[str, Any]:
        """State for health checks and stats."""
        with self._lock:
            self._maybe_half_open()
            retry_in = None
            if self._state == OPEN and self._opened_at is not None:
                retry_in = max(0.0, round(self._cooldown - (self._clock() - self._opened_at), 3))
            return {
                "state": self._state,
                "consecutive_failures": self._failures,
                "opens": self._opens,
                "retry_in_s": retry_in,
                "last_error": self._last_error,
            }
