"""Rate limiting on the `limits` library: Redis storage shared by all instances while the
cache is in redis mode, per-process memory storage otherwise.

`limits` is imported when a RateLimiter is built, not when the package is imported.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import ServiceUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from shared.cache.backend import CacheBackend
    from shared.config.models import Settings

logger = logging.getLogger(__name__)

_STRATEGIES = {
    # Clock-aligned fixed windows over the storage's atomic counter: one round trip per limit and the
    # reset time known without asking (a burst across a window boundary can reach twice the limit).
    "aligned-window": "FixedWindowRateLimiter",
    # Exact, but two round trips per limit (`limits` hits, then reads the window for the headers).
    "moving-window": "MovingWindowRateLimiter",
    "fixed-window": "FixedWindowRateLimiter",
    "sliding-window-counter": "SlidingWindowCounterRateLimiter",
}


@dataclass(frozen=True)
class RateLimitResult:
    """Outcome of one hit: enough for RateLimit-* and Retry-After headers.

    ``reset_at`` is epoch seconds when the window frees capacity; ``retry_after`` is whole
    seconds to wait (0 when allowed, >= 1 when denied).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    retry_after: int


class RateLimiter:
    """Per-group limits (settings.rate_limits.groups, else .default) keyed by caller.

    Guarantees: storage follows the cache's mode on every call (Redis while live, memory
    otherwise); a storage error fails open with a warning when ``rate_limits.fail_open``
    (the hit is allowed) and raises ServiceUnavailable otherwise. With
    ``rate_limits.enabled`` false every hit is allowed.
    """

    def __init__(self, settings: "Settings", cache: "CacheBackend", *, strategy: str | None = None) -> None:
        from limits import parse_many, strategies
        from limits.storage import MemoryStorage

        strategy = strategy or settings.rate_limits.strategy
        if strategy not in _STRATEGIES:
            raise ValueError(f"unknown rate-limit strategy {strategy!r}; one of {sorted(_STRATEGIES)}")
        self._cache = cache
        self._cfg = settings.rate_limits
        self._strategy_cls = getattr(strategies, _STRATEGIES[strategy])
        self._aligned = strategy == "aligned-window"
        self._parse_many = parse_many
        self._items: dict[str, list[Any]] = {}
        # limits' MemoryStorage expires keys with a timer thread it restarts every few milliseconds;
        # aligned windows only need counters, so in memory they use a lock-protected dict instead.
        self._memory = _MemoryWindows() if self._aligned else self._strategy_cls(MemoryStorage())
        self._redis: Any = None
        self._redis_client: Any = None
        self._lock = threading.Lock()
        self._prefix = cache.key("rl")
        for group, spec in {"default": self._cfg.default, **self._cfg.groups}.items():
            self._items[group] = parse_many(spec)  # fail fast on a malformed limit at startup

    def limits_for(self, group: str) -> list[Any]:
        """The parsed `limits` items for a group (the default limit for an unknown group)."""
        items = self._items.get(group)
        if items is None:
            items = self._items["default"]
        return items

    def _limiter(self) -> tuple[Any, bool]:
        """(strategy instance, uses_redis) for the cache's current mode."""
        client = self._cache.live_client
        if client is None:
            return self._memory, False
        with self._lock:
            if self._redis is None or self._redis_client is not client:
                from limits.storage import RedisStorage

                # Reuse the cache's pool (and its timeout/one-retry policy) rather than open another.
                storage = RedisStorage("redis://", connection_pool=client.connection_pool, key_prefix=self._prefix)
                self._redis, self._redis_client = self._strategy_cls(storage), client
            return self._redis, True

    def hit(self, group: str, key: str, *, cost: int = 1) -> RateLimitResult:
        """Count one request of ``key`` in ``group`` and say whether it is allowed."""
        return self._apply(group, key, cost, consume=True)

    def peek(self, group: str, key: str) -> RateLimitResult:
        """The current state without counting a request."""
        return self._apply(group, key, 1, consume=False)

    def _apply(self, group: str, key: str, cost: int, *, consume: bool) -> RateLimitResult:
        items = self.limits_for(group)
        if not self._cfg.enabled:
            item = items[0]
            return RateLimitResult(True, item.amount, item.amount, time.time() + item.get_expiry(), 0)
        limiter, uses_redis = self._limiter()
        try:
            evaluate = self._evaluate_aligned if self._aligned else self._evaluate
            result = evaluate(limiter, items, group, key, cost, consume)
        except ServiceUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - storage failure: fail open or closed, never a 500
            if uses_redis:
                self._cache.record_failure(exc)
            if not self._cfg.fail_open:
                logger.error("rate limit storage failed (%s); failing closed", type(exc).__name__)
                raise ServiceUnavailable("Rate limiting is temporarily unavailable") from exc
            logger.warning("rate limit storage failed (%s); failing open for group %s", type(exc).__name__, group)
            item = items[0]
            return RateLimitResult(True, item.amount, item.amount, time.time() + item.get_expiry(), 0)
        if uses_redis:
            self._cache.record_success()
        return result

    @staticmethod
    def _evaluate(limiter: Any, items: list[Any], group: str, key: str, cost: int, consume: bool) -> RateLimitResult:
        now = time.time()
        worst: RateLimitResult | None = None
        for item in items:
            allowed = limiter.hit(item, group, key, cost=cost) if consume else limiter.test(item, group, key, cost=cost)
            stats = limiter.get_window_stats(item, group, key)
            reset_at = float(stats.reset_time)
            remaining = max(0, int(stats.remaining))
            retry_after = 0 if allowed else max(1, math.ceil(reset_at - now))
            current = RateLimitResult(allowed, item.amount, remaining, reset_at, retry_after)
            if worst is None or _worse(current, worst):
                worst = current
        assert worst is not None
        return worst


    @staticmethod
    def _evaluate_aligned(limiter: Any, items: list[Any], group: str, key: str, cost: int, consume: bool) -> RateLimitResult:
        """Windows aligned to the clock (e.g. each whole minute): the counter of the current window
        is incremented atomically (one round trip) and its reset time is the window's end."""
        now = time.time()
        worst: RateLimitResult | None = None
        for item in items:
            expiry = item.get_expiry()
            window = int(now // expiry)
            reset_at = float((window + 1) * expiry)
            counter = f"{item.key_for(group, key)}/{window}"
            if consume:
                count = limiter.storage.incr(counter, expiry, amount=cost)
                allowed = count <= item.amount
            else:
                count = limiter.storage.get(counter)
                allowed = count + cost <= item.amount
            retry_after = 0 if allowed else max(1, math.ceil(reset_at - now))
            current = RateLimitResult(allowed, item.amount, max(0, item.amount - count), reset_at, retry_after)
            if worst is None or _worse(current, worst):
                worst = current
        assert worst is not None
        return worst


class _MemoryCounters:
    """Counters that expire, for one process: thread-safe, no background threads; expired keys are
    dropped on access and by a sweep at most once a second."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.monotonic()
        with self._lock:
            expires, count = self._data.get(key, (0.0, 0))
            if expires <= now:
                expires, count = now + expiry, 0
            count += amount
            self._data[key] = (expires, count)
            if now >= self._next_sweep:
                self._data = {k: v for k, v in self._data.items() if v[0] > now}
                self._next_sweep = now + 1.0
            return count

    def get(self, key: str) -> int:
        with self._lock:
            expires, count = self._data.get(key, (0.0, 0))
            return count if expires > time.monotonic() else 0


class _MemoryWindows:
    """The shape `_evaluate_aligned` needs from a limiter: a `storage` with incr/get."""

    def __init__(self) -> None:
        self.storage = _MemoryCounters()


def _worse(a: RateLimitResult, b: RateLimitResult) -> bool:
    if a.allowed != b.allowed:
        return not a.allowed
    if not a.allowed:
        return a.retry_after > b.retry_after
    return a.remaining < b.remaining
