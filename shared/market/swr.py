"""A stale-while-revalidate cache over the shared cache backend: ``serve(request)``.

Guarantees:
- A value is served fresh until its ``fresh_s``; then, for ``swr_factor * TTL`` more, it is served flagged
  ``stale`` (reason: refreshing) while one background refresh per key runs; past that it is reloaded in the
  request. The value is kept ``stale_if_error_s`` longer still: when a load fails with anything but NotFound or
  ValidationFailed, that value is served flagged ``stale`` with the failure as its reason instead of the error.
- Concurrent loads of one key share one upstream call (single-flight).
- Only NotFound (the upstream positively says it does not exist) becomes a negative entry, and only when a
  background refresh meets it (a delisted symbol stops being served stale); it lives at most 300 s.
- A failing cache never fails a request: reads miss, writes are skipped.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Generic, TypeVar

from shared.errors import ApiError, NotFound, ValidationFailed
from shared.market.protocols import CacheLike, SingleFlightLike

logger = logging.getLogger(__name__)

T = TypeVar("T")
Envelope = dict[str, Any]  # {"v": JSON value, "fetched_at", "fresh_until", "swr_until"} (+ "not_found": detail)
REFRESHING = "refreshing in the background"
NEGATIVE_TTL_CAP_S = 300.0


@dataclass(frozen=True)
class Request(Generic[T]):
    """One cacheable answer: where it lives, how to load it (JSON value, fresh seconds) and parse it back."""

    data_type: str  # names the TTL (``cache.ttl_for``) and the stats bucket
    key: str
    load: Callable[[], tuple[Any, float]]
    parse: Callable[[Any], T]
    describe: str
    last_resort: Callable[[ApiError], T | None] | None = None  # asked when the load failed and nothing is cached


class SwrCache:
    """See the module docstring. ``now`` returns epoch seconds; ``submit`` runs a background job (None: a
    2-thread pool is created on first use and shut down by ``close``)."""

    def __init__(self, cache: CacheLike, singleflight: SingleFlightLike, now: Callable[[], float], *,
                 submit: Callable[[Callable[[], None]], Any] | None = None, swr_factor: float = 24.0,
                 stale_if_error_s: float = 86400.0) -> None:
        self._cache = cache
        self._sf = singleflight
        self._now = now
        self._submit = submit
        self._pool: Any = None
        self._swr_factor = swr_factor
        self._stale_if_error_s = stale_if_error_s
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._bg: dict[str, int] = defaultdict(int)

    # -- serving ----------------------------------------------------------------------------
    def serve(self, req: Request[T]) -> T:
        """The request's value, fresh, stale (flagged, with the reason) or just loaded; else its load's error."""
        now = self._now()
        env = self._read(req.key)
        if env is not None and "not_found" in env:
            if now < env["fresh_until"]:
                self._count(req.data_type, "hit")
                raise NotFound(env["not_found"], extra={"what": req.describe})
            env = None  # an expired negative entry: ask upstream again
        if env is not None:
            if now < env["fresh_until"]:
                self._count(req.data_type, "hit")
                return self.render(req, env)
            if now < env["swr_until"]:
                self._count(req.data_type, "stale")
                self._refresh_in_background(req)
                return self.render(req, env, stale_reason=REFRESHING)
        self._count(req.data_type, "miss")
        try:
            fresh = self._sf.do(req.key, lambda: self._load(req))
        except (NotFound, ValidationFailed):
            raise
        except ApiError as exc:
            if env is not None:
                logger.warning("serving stale market data after upstream failure",
                               extra={"what": req.describe, "outcome": exc.extra.get("outcome")})
                self._count(req.data_type, "stale_on_error")
                return self.render(req, env, stale_reason=f"{exc.title}: {exc.detail}")
            if req.last_resort is not None:
                fallback = req.last_resort(exc)
                if fallback is not None:
                    return fallback
            raise
        return self.render(req, fresh)

    def render(self, req: Request[T], env: Envelope, *, stale_reason: str | None = None) -> T:
        """The cached value with its provenance aged (``cache_age_s``) and flagged when stale."""
        value = req.parse(env["v"])
        prov = getattr(value, "provenance", None)
        if prov is None:
            return value
        now = self._now()
        age = max(0.0, now - float(env["fetched_at"]))
        fetched = prov.fetched_at
        if fetched is not None:  # data derived from an earlier fetch (indicators from cached bars) is that old
            if fetched.tzinfo is None:
                fetched = fetched.replace(tzinfo=timezone.utc)
            age = max(age, now - fetched.timestamp())
        update: dict[str, Any] = {"cache_age_s": round(age, 3)}
        if stale_reason is not None:
            update.update(stale=True, stale_reason=stale_reason)
        return value.model_copy(update={"provenance": prov.model_copy(update=update)})  # type: ignore[no-any-return,attr-defined]

    # -- state ------------------------------------------------------------------------------
    def fresh(self, key: str) -> bool:
        env = self._read(key)
        return env is not None and "not_found" not in env and self._now() < env["fresh_until"]

    def servable(self, key: str) -> bool:
        """Fresh or within its stale-while-revalidate window (served without asking upstream)."""
        env = self._read(key)
        return env is not None and "not_found" not in env and self._now() < env["swr_until"]

    def store(self, key: str, value: Any, fresh_s: float, data_type: str) -> Envelope:
        """Write a value loaded elsewhere (a batch call) as if ``serve`` had loaded it."""
        env = self._envelope(value, fresh_s, data_type)
        self._write(key, env, data_type)
        return env

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"cache": {t: dict(v) for t, v in self._stats.items()}, "background_refresh": dict(self._bg)}

    def close(self) -> None:
        """Stop the background pool this cache created (if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals --------------------------------------------------------------------------
    def _count(self, data_type: str, outcome: str) -> None:
        with self._lock:
            self._stats[data_type][outcome] += 1

    def _read(self, key: str) -> Envelope | None:
        try:
            env = self._cache.get_json(key)
        except Exception:  # noqa: BLE001 - a cache outage must not fail market data
            logger.warning("market cache read failed", exc_info=True)
            return None
        if isinstance(env, dict) and {"v", "fetched_at", "fresh_until", "swr_until"} <= env.keys():
            return env
        return None

    def _write(self, key: str, env: Envelope, data_type: str) -> None:
        base = self._cache.ttl_for(data_type)
        # Physically keep the value well past its TTL: it is what we serve while revalidating,
        # and what we serve when every provider fails.
        keep = max(env["swr_until"] - env["fetched_at"] + self._stale_if_error_s, base)
        try:
            self._cache.set_json(key, env, ttl=int(math.ceil(keep)))
        except Exception:  # noqa: BLE001
            logger.warning("market cache write failed", exc_info=True)

    def _envelope(self, value: Any, fresh_s: float, data_type: str) -> Envelope:
        now = self._now()
        swr = self._cache.ttl_for(data_type) * self._swr_factor
        return {"v": value, "fetched_at": now, "fresh_until": now + fresh_s, "swr_until": now + fresh_s + swr}

    def _load(self, req: Request[Any]) -> Envelope:
        """Runs once per key among concurrent callers: re-check the cache, then load."""
        env = self._read(req.key)
        if env is not None and self._now() < env["fresh_until"]:
            if "not_found" in env:
                raise NotFound(env["not_found"], extra={"what": req.describe})
            return env  # another caller (or instance) refreshed it meanwhile
        value, fresh_s = req.load()
        return self.store(req.key, value, fresh_s, req.data_type)

    def _refresh_in_background(self, req: Request[Any]) -> None:
        with self._lock:
            if req.key in self._refreshing:
                return
            self._refreshing.add(req.key)
            self._bg["scheduled"] += 1

        def job() -> None:
            try:
                self._sf.do(req.key, lambda: self._load(req))
                outcome = "ok"
            except NotFound as exc:
                # Authoritative (e.g. delisted): replace the stale value with a short negative entry, so
                # requests answer 404 at once instead of serving stale data and asking upstream each time.
                outcome = "not_found"
                now = self._now()
                neg_s = min(float(self._cache.ttl_for(req.data_type)), NEGATIVE_TTL_CAP_S)
                try:
                    self._cache.set_json(req.key, {"v": None, "not_found": exc.detail, "fetched_at": now,
                                                   "fresh_until": now + neg_s, "swr_until": now + neg_s},
                                         ttl=int(math.ceil(neg_s)))
                except Exception:  # noqa: BLE001
                    logger.warning("market cache write failed", exc_info=True)
            except Exception as exc:  # noqa: BLE001 - the stale value stays in place
                outcome = "failed"
                logger.info("background market refresh failed", extra={"what": req.describe, "error": type(exc).__name__})
            finally:
                with self._lock:
                    self._refreshing.discard(req.key)
            with self._lock:
                self._bg[outcome] += 1

        try:
            self._executor_submit(job)
        except Exception:  # noqa: BLE001 - e.g. executor shut down: just don't refresh now
            with self._lock:
                self._refreshing.discard(req.key)
                self._bg["not_scheduled"] += 1

    def _executor_submit(self, job: Callable[[], None]) -> None:
        if self._submit is None:
            with self._lock:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="market-refresh")
                self._submit = self._pool.submit
        assert self._submit is not None
        self._submit(job)
