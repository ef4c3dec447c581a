"""SingleFlight: concurrent callers of one key share one computation, in-process and across instances."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from shared.cache import codec

if TYPE_CHECKING:  # pragma: no cover
    from shared.cache.backend import CacheBackend

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Deletes the lock only if we still own it (a lock that expired and was taken over by
# another instance must not be released by us).
# Takes the lock and clears the previous flight's result in one step, so a waiter that
# sees our lock can never read a result published before our computation began.
_ACQUIRE_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Call:
    __slots__ = ("done", "result", "error", "callers")

    def __init__(self) -> None:
        self.callers = 1
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """Deduplicates concurrent computations of the same key.

    Guarantees:
    - In one process, concurrent ``do(key, fn)`` calls run ``fn`` once; every caller gets
      its result, or its exception re-raised.
    - While the cache is in redis mode, instances sharing that Redis coordinate with a
      lock (``SET NX PX lock_ttl_s``): the owner computes and publishes the result under a
      short-lived key (``result_ttl_s``); the others poll for it and compute themselves when
      the lock disappears without a result (owner failed or lock expired) or after
      ``wait_s``. Remote waiters get the value decoded by ``loads`` (default: JSON, so
      plain dicts/lists); exceptions are not shipped across instances.
    - Redis errors never fail the call: it degrades to in-process deduplication.
    - An in-process waiter waits at most ``wait_s`` for its leader, then computes itself.

    ``computations`` counts how many times this object actually ran a ``fn``;
    ``remote_waits`` how many times it found another instance's lock and waited on it.
    """

    def __init__(
        self,
        cache: "CacheBackend",
        *,
        result_ttl_s: float = 5.0,
        poll_interval_s: float = 0.02,
        max_poll_interval_s: float = 0.1,
    ) -> None:
        self._cache = cache
        self._result_ttl_ms = max(1, int(result_ttl_s * 1000))
        self._poll = poll_interval_s
        self._max_poll = max_poll_interval_s
        self._calls: dict[str, _Call] = {}
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.computations = 0
        self.remote_waits = 0
        # redis-py Scripts: EVALSHA, and the script body is sent again only on NOSCRIPT.
        self._acquire_script: Any = None
        self._release_script: Any = None

    def do(
        self,
        key: str,
        fn: Callable[[], T],
        *,
        lock_ttl_s: float = 30,
        wait_s: float = 10,
        dumps: Callable[[Any], bytes] = codec.dumps,
        loads: Callable[[bytes], Any] = codec.loads,
    ) -> T:
        """Run ``fn`` at most once among the concurrent callers of ``key`` and return its result."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
            else:
                call.callers += 1
        if not leader:
            if not call.done.wait(wait_s):
                # A hung leader must not hold every waiter: compute here after wait_s.
                logger.info("singleflight: in-process leader of %s still running after %.1fs; computing", key, wait_s)
                return self._compute(fn)
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[no-any-return]
        try:
            call.result = self._lead(key, fn, lock_ttl_s, wait_s, dumps, loads)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                self._calls.pop(key, None)
            call.done.set()
        return call.result  # type: ignore[no-any-return]

    def pending(self, key: str) -> int:
        """How many callers currently share the in-flight call of ``key`` in this process (0: none)."""
        with self._lock:
            call = self._calls.get(key)
            return call.callers if call is not None else 0

    def _compute(self, fn: Callable[[], T]) -> T:
        with self._count_lock:
            self.computations += 1
        return fn()

    def _lead(self, key: str, fn: Callable[[], T], lock_ttl_s: float, wait_s: float,
              dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]) -> T:
        client = self._cache.live_client
        if client is None:
            return self._compute(fn)
        lock_key = self._cache.key("sf", key, "lock")
        result_key = self._cache.key("sf", key, "result")
        token = uuid.uuid4().hex
        lock_px = max(1, int(lock_ttl_s * 1000))
        deadline = time.monotonic() + wait_s
        delay = self._poll
        while True:
            try:
                if self._acquire_script is None:
                    self._acquire_script = client.register_script(_ACQUIRE_SCRIPT)
                acquired = bool(self._acquire_script(keys=[lock_key, result_key], args=[token, lock_px], client=client))
            except Exception as exc:  # noqa: BLE001 - coordination is best effort
                self._cache.record_failure(exc)
                return self._compute(fn)
            if acquired:
                self._cache.record_success()
                return self._own(client, fn, lock_key, result_key, token, dumps)
            # Someone else computes: wait for its result, the lock to go, or our deadline.
            with self._count_lock:
                self.remote_waits += 1
            while True:
                try:
                    pipe = client.pipeline(transaction=False)
                    pipe.get(result_key)
                    pipe.exists(lock_key)
                    raw, locked = pipe.execute()
                    if raw is None and not locked:
                        # The owner writes the result before releasing; read once more to close the race.
                        raw = client.get(result_key)
                except Exception as exc:  # noqa: BLE001
                    self._cache.record_failure(exc)
                    return self._compute(fn)
                if raw is not None:
                    try:
                        return loads(raw)  # type: ignore[no-any-return]
                    except Exception:  # noqa: BLE001 - an unreadable result is a miss
                        logger.warning("singleflight: undecodable result for %s; computing", key)
                        return self._compute(fn)
                if time.monotonic() >= deadline:
                    logger.info("singleflight: waited %.1fs for %s; computing", wait_s, key)
                    return self._compute(fn)
                if not locked:
                    break  # owner gone without a result: try to take the lock
                time.sleep(delay)
                delay = min(delay * 1.5, self._max_poll)

    def _own(self, client: Any, fn: Callable[[], T], lock_key: str, result_key: str, token: str,
             dumps: Callable[[Any], bytes]) -> T:
        try:
            result = self._compute(fn)
            try:
                payload = dumps(result)
            except Exception as exc:  # noqa: BLE001 - waiters will compute themselves
                logger.warning("singleflight: result for %s not serializable (%s)", result_key, type(exc).__name__)
            else:
                try:
                    client.set(result_key, payload, px=self._result_ttl_ms)
                except Exception as exc:  # noqa: BLE001
                    self._cache.record_failure(exc)
            return result
        finally:
            try:
                if self._release_script is None:
                    self._release_script = client.register_script(_RELEASE_SCRIPT)
                self._release_script(keys=[lock_key], args=[token], client=client)
            except Exception as exc:  # noqa: BLE001 - the lock expires by itself
                self._cache.record_failure(exc)
