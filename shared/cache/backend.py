"""CacheBackend: Redis when configured and answering, a bounded in-memory LRU otherwise.

redis-py is imported only when a Redis client is built (`from_config` with Redis configured).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from shared.cache import codec
from shared.cache.broadcast import Subscription
from shared.cache.memory import MemoryStore
from shared.config.models import DEFAULT_TTLS

if TYPE_CHECKING:  # pragma: no cover
    import redis

    from shared.config.models import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Sets the TTL only when the counter is created, atomically with the increment, so a
# quota window never slides and a crash between two commands cannot leave a key
# without expiry. Works on every Redis version (no EXPIRE NX, which needs 7.0).
_INCR_SCRIPT = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return v
"""


# Azure endpoints accept TLS only, each on its own port.
_AZURE_TLS_PORTS = {".redis.azure.net": 10000, ".redis.cache.windows.net": 6380}

_POOLS: dict[tuple, Any] = {}
_POOLS_LOCK = threading.Lock()


def _ttl_ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, int(round(ttl * 1000)))


def resolve_endpoint(host: str, port: int, ssl: bool) -> tuple[int, bool]:
    """(port, ssl) to use: Azure hosts get TLS and their TLS port when the port is left at 6379."""
    for suffix, tls_port in _AZURE_TLS_PORTS.items():
        if host.lower().endswith(suffix):
            return (tls_port if port == 6379 else port), True
    return port, ssl


def build_redis_client(
    settings: "Settings", *, username: str | None = None, credential: Any = None
) -> "redis.Redis":
    """A redis.Redis on this process's single connection pool for these settings.

    Guarantees: connect and socket timeouts from settings, at most ONE retry without
    backoff (redis-py's default of 3 retries with exponential backoff is replaced),
    bytes responses, Entra ID tokens when `redis.use_entra_id`.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    cfg = settings.redis
    if not cfg.configured:
        raise ValueError("Redis is not configured (set REDIS_URL or REDIS_HOST)")
    url = cfg.url.get_secret_value() if cfg.url else None
    host = cfg.host or ""
    port, ssl = resolve_endpoint(host, cfg.port, cfg.ssl) if not url else (cfg.port, cfg.ssl)
    password = cfg.password.get_secret_value() if cfg.password else None
    pool_key = (url, host, port, cfg.db, ssl, password, username, cfg.use_entra_id,
                cfg.socket_timeout_ms, cfg.connect_timeout_ms, cfg.max_connections)
    with _POOLS_LOCK:
        pool = _POOLS.get(pool_key)
        if pool is None:
            kwargs: dict[str, Any] = {
                "socket_timeout": cfg.socket_timeout_ms / 1000,
                "socket_connect_timeout": cfg.connect_timeout_ms / 1000,
                "retry": Retry(NoBackoff(), 1),
                "max_connections": cfg.max_connections,
                "health_check_interval": 30,
            }
            if cfg.use_entra_id:
                from shared.cache.entra import EntraIdCredentialProvider

                kwargs["credential_provider"] = EntraIdCredentialProvider(username=username, credential=credential)
            elif password and not (url and "@" in url):  # credentials in the URL win
                kwargs["password"] = password
                if username:
                    kwargs["username"] = username
            if url:
                if ssl and url.startswith("redis://"):
                    url = "rediss://" + url[len("redis://"):]
                pool = redis.ConnectionPool.from_url(url, **kwargs)
            else:
                conn_kwargs: dict[str, Any] = {"host": host, "port": port, "db": cfg.db, **kwargs}
                if ssl:
                    conn_kwargs["connection_class"] = redis.SSLConnection
                pool = redis.ConnectionPool(**conn_kwargs)
            _POOLS[pool_key] = pool
    return redis.Redis(connection_pool=pool)


def _is_command_error(exc: BaseException) -> bool:
    """True for an error reply from a Redis that is up (as opposed to an unreachable one)."""
    from redis.exceptions import ResponseError

    return isinstance(exc, ResponseError)


def reset_pools() -> None:
    """Disconnect and forget every process-wide pool (tests and shutdown only)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        try:
            pool.disconnect()
        except Exception:  # noqa: BLE001 - shutdown is best effort
            pass


class CacheBackend:
    """Key/value cache that never raises because of the cache's own failures.

    Modes:
    - ``redis``: a Redis client is configured and answering.
    - ``memory``: Redis is not configured (by design, healthy), or the circuit breaker
      tripped after ``breaker_failure_threshold`` consecutive Redis errors (degraded). A
      daemon thread then PINGs Redis every ``breaker_probe_interval_s`` and switches back
      when it answers.

    A call that hits a Redis error is served from memory. Values come back as bytes.

    Keys set or deleted without reaching Redis (failed over, or the call failed) are
    remembered (at most ``dirty_max_keys``; beyond that the whole namespace) and deleted
    from Redis before it is used again, so Redis never serves a value older than one
    written or deleted during the outage.
    """

    def __init__(
        self,
        client: "redis.Redis | None" = None,
        *,
        namespace: str = "stockagent",
        key_version: str = "v1",
        ttl: Mapping[str, int] | None = None,
        memory_max_entries: int = 10_000,
        breaker_failure_threshold: int = 3,
        breaker_probe_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        dirty_max_keys: int = 10_000,
    ) -> None:
        self._client = client
        self._prefix = f"{namespace}:{key_version}"
        self._ttl = dict(DEFAULT_TTLS if ttl is None else ttl)
        self._memory = MemoryStore(memory_max_entries, clock=clock)
        self._threshold = max(1, breaker_failure_threshold)
        self._probe_interval = breaker_probe_interval_s
        self._state_lock = threading.Lock()
        self._failures = 0
        self._failed_over = False
        self._last_error: str | None = None
        self._failed_over_at: float | None = None
        self._probe_thread: threading.Thread | None = None
        # Set and cleared under _state_lock together with _failed_over: a probe thread that
        # already flipped back but is still alive must not stop the next failover's probe.
        self._probing = False
        self._dirty: set[str] = set()
        self._dirty_overflow = False
        self._dirty_max = max(1, dirty_max_keys)
        self._closed = threading.Event()
        self._incr_script: Any = None
        self._subscriptions: list[Subscription] = []

    @classmethod
    def from_config(cls, settings: "Settings", *, username: str | None = None, credential: Any = None) -> "CacheBackend":
        """Build from settings.redis and settings.cache; memory mode when Redis is not configured.

        ``username`` (Redis ACL user) and ``credential`` (an azure-identity credential for
        Entra ID auth) are optional extras not present in Settings.
        """
        client = build_redis_client(settings, username=username, credential=credential) if settings.redis.configured else None
        c = settings.cache
        return cls(
            client,
            namespace=c.namespace,
            key_version=c.key_version,
            ttl=c.ttl,
            memory_max_entries=c.memory_max_entries,
            breaker_failure_threshold=c.breaker_failure_threshold,
            breaker_probe_interval_s=c.breaker_probe_interval_s,
        )

    # ----- state ---------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``redis`` or ``memory``."""
        return "redis" if self._client is not None and not self._failed_over else "memory"

    @property
    def redis_configured(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> "redis.Redis | None":
        """The configured Redis client whatever its state (None when not configured)."""
        return self._client

    @property
    def live_client(self) -> "redis.Redis | None":
        """The Redis client while in redis mode, else None (for the rate limiter and locks)."""
        return self._client if not self._failed_over else None

    @property
    def memory(self) -> MemoryStore:
        """The in-process store serving memory mode and the calls Redis failed."""
        return self._memory

    def record_success(self) -> None:
        """Tell the breaker Redis answered (collaborators that use `live_client` call this)."""
        if (self._dirty or self._dirty_overflow) and self._client is not None:
            try:
                self._flush_dirty(self._client)
            except Exception as exc:  # noqa: BLE001 - the keys stay remembered for the next success
                logger.debug("cache: could not delete keys written during failures (%s)", type(exc).__name__)
                return
        if self._failures:
            with self._state_lock:
                recovered, self._failures = self._failures > 0, 0
            if recovered:
                # Writes made while Redis was failing went to memory; once Redis answers
                # they are stale copies that a later failure must not serve.
                self._memory.clear()

    def record_failure(self, exc: BaseException) -> None:
        """Tell the breaker a Redis call failed; trips to memory mode after the threshold."""
        with self._state_lock:
            self._failures += 1
            self._last_error = type(exc).__name__
            if self._failed_over or self._client is None or self._failures < self._threshold:
                logger.debug("cache: redis call failed (%s), %d/%d", self._last_error, self._failures, self._threshold)
                return
            self._failed_over = True
            self._failed_over_at = time.time()
            logger.warning(
                "cache: redis failed %d times in a row (%s); serving from memory, probing every %.1fs",
                self._failures, self._last_error, self._probe_interval,
            )
            if not self._probing and not self._closed.is_set():
                self._probing = True
                self._probe_thread = threading.Thread(target=self._probe_loop, name="cache-redis-probe", daemon=True)
                self._probe_thread.start()

    def _mark_dirty(self, key: str) -> None:
        with self._state_lock:
            if self._dirty_overflow:
                return
            self._dirty.add(key)
            if len(self._dirty) > self._dirty_max:
                self._dirty.clear()
                self._dirty_overflow = True

    def _flush_dirty(self, client: Any) -> None:
        """DEL in Redis the keys remembered as written/deleted elsewhere (the namespace on overflow).

        Raises the Redis error; the keys not yet deleted stay remembered.
        """
        with self._state_lock:
            keys, overflow = list(self._dirty), self._dirty_overflow
        if overflow:
            batch: list[Any] = []
            for k in client.scan_iter(match=f"{self._prefix}:*", count=1000):
                batch.append(k)
                if len(batch) >= 500:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
        else:
            for i in range(0, len(keys), 500):
                client.delete(*keys[i:i + 500])
        with self._state_lock:
            # A key re-added meanwhile was only written to memory: its Redis copy is gone.
            self._dirty.difference_update(keys)
            if overflow:
                self._dirty_overflow = False

    def _probe_loop(self) -> None:
        while not self._closed.wait(self._probe_interval):
            try:
                self._client.ping()  # type: ignore[union-attr]
                self._flush_dirty(self._client)
            except Exception as exc:  # noqa: BLE001 - any failure means "still down"
                logger.debug("cache: redis probe failed (%s)", type(exc).__name__)
                continue
            with self._state_lock:
                if self._dirty or self._dirty_overflow:
                    continue  # written during the flush: delete those too before switching
                self._failed_over = False
                self._failures = 0
                self._failed_over_at = None
                self._probing = False
            # Entries written while failed over may be older than what Redis now holds;
            # dropping them keeps the next failover from serving them.
            self._memory.clear()
            logger.warning("cache: redis answers again; back to redis mode")
            return
        with self._state_lock:
            self._probing = False

    def close(self) -> None:
        """Stop the probe and subscriber threads (the process-wide pool stays; see `reset_pools`)."""
        self._closed.set()
        for subscription in self._subscriptions:
            subscription.close()
        thread = self._probe_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def _run(self, redis_op: Callable[[Any], T], memory_op: Callable[[], T], *, writes: str | None = None) -> T:
        """``writes``: the key a set/delete changes; remembered when Redis does not take the change."""
        client = self.live_client
        if client is not None:
            try:
                if self._dirty or self._dirty_overflow:
                    self._flush_dirty(client)  # before reading: Redis may hold a stale copy
                result = redis_op(client)
            except Exception as exc:  # noqa: BLE001 - the cache must never fail a request
                if _is_command_error(exc):
                    # Redis answered (e.g. WRONGTYPE, OOM): not an outage, so the breaker
                    # is left alone; this one call is served from memory.
                    logger.warning("cache: redis rejected a command (%s)", exc)
                else:
                    self.record_failure(exc)
            else:
                if writes is not None and self._dirty:
                    with self._state_lock:
                        self._dirty.discard(writes)  # Redis now holds the latest change
                self.record_success()
                return result
        if writes is not None:
            self._mark_dirty(writes)
        return memory_op()

    # ----- keys and TTLs -----------------------------------------------------------------

    def key(self, *parts: object) -> str:
        """Namespaced, versioned key, e.g. ``key("quote", "AAPL") == "stockagent:v1:quote:AAPL"``."""
        return ":".join([self._prefix, *(str(p) for p in parts)])

    def ttl_for(self, data_type: str) -> int:
        """Configured TTL in seconds for a data type (price_data, historical_data, ...)."""
        try:
            return int(self._ttl[data_type])
        except KeyError:
            raise KeyError(f"no cache TTL configured for {data_type!r}; known: {sorted(self._ttl)}") from None

    # ----- operations ---------------------------------------------------------------------

    def get(self, key: str) -> bytes | str | None:
        """The stored value (bytes), or None when missing, expired or unreadable."""
        return self._run(lambda r: r.get(key), lambda: self._memory.get(key))

    def set(self, key: str, value: bytes | str, ttl: float | None = None) -> None:
        """Store a value; ``ttl`` seconds (None: no expiry; <= 0: removes the key)."""
        if isinstance(value, str):
            data = value.encode()
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        else:  # numbers: stored as text, like Redis does (bytes(5) would be five NULs)
            data = str(value).encode()
        if ttl is not None and ttl <= 0:
            self.delete(key)
            return
        self._run(lambda r: r.set(key, data, px=_ttl_ms(ttl)), lambda: self._memory.set(key, data, ttl), writes=key)

    def delete(self, key: str) -> None:
        self._run(lambda r: r.delete(key), lambda: self._memory.delete(key), writes=key)

    def get_json(self, key: str) -> Any:
        """The decoded JSON value, or None when missing/expired/corrupt (a corrupt entry is logged)."""
        data = self.get(key)
        if data is None:
            return None
        try:
            return codec.loads(data)
        except ValueError:
            logger.warning("cache: dropping undecodable JSON at %s", key)
            self.delete(key)
            return None

    def set_json(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` as JSON (ObjectId, datetime, date, Decimal, Pydantic handled).

        Raises TypeError for a value with no JSON form (a caller bug, not a cache failure).
        """
        self.set(key, codec.dumps(value), ttl)

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Atomically add ``amount`` and return the new value; ``ttl`` applies when the counter is created."""

        def on_redis(r: Any) -> int:
            if self._incr_script is None:
                self._incr_script = r.register_script(_INCR_SCRIPT)
            return int(self._incr_script(keys=[key], args=[amount, _ttl_ms(ttl) or 0], client=r))

        return self._run(on_redis, lambda: self._memory.incr(key, amount, ttl))

    # ----- broadcast to every instance -------------------------------------------------------

    def publish(self, channel: str, message: str) -> bool:
        """Send `message` to the subscribers of `channel` on every instance sharing this Redis.

        True when Redis took it. False when Redis is not configured or did not answer: the
        message is lost (pub/sub keeps nothing), so subscribers must bound staleness themselves.
        Tried even while failed over, since an invalidation is worth one short timeout.
        """
        if self._client is None:
            return False
        try:
            self._client.publish(self.key("channel", channel), message.encode())
        except Exception as exc:  # noqa: BLE001 - the cache must never fail a request
            logger.warning("cache: could not publish on %s (%s)", channel, type(exc).__name__)
            return False
        return True

    def subscribe(self, channel: str, on_message: Callable[[str], None], on_gap: Callable[[], None]) -> Subscription | None:
        """Listen on `channel` in a daemon thread until `close()`; None when Redis is not configured.

        `on_gap()` runs whenever the subscription is (re)established (messages may have been
        missed before it); see `shared.cache.broadcast.Subscription`.
        """
        if self._client is None or self._closed.is_set():
            return None
        subscription = Subscription(self._client, self.key("channel", channel), on_message, on_gap,
                                    retry_s=self._probe_interval).start()
        self._subscriptions.append(subscription)
        return subscription

    # ----- health ---------------------------------------------------------------------------

    def is_healthy(self) -> bool:
        """True when serving from the configured store: Redis live, or memory by design."""
        return self.health_check()[0]

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): details has component, status (healthy|degraded), mode, latency_ms.

        Redis configured and failed over to memory -> (False, status "degraded", mode
        "memory"); the cache still serves every call meanwhile.
        """
        details: dict[str, Any] = {"component": "cache"}
        start = time.perf_counter()
        if self._client is None:
            self._memory.get(self.key("__health__"))
            details.update(status="healthy", mode="memory", redis="not_configured")
        elif self._failed_over:
            details.update(status="degraded", mode="memory", redis="unavailable", error=self._last_error)
        else:
            try:
                self._client.ping()
            except Exception as exc:  # noqa: BLE001
                self.record_failure(exc)
                details.update(status="degraded", mode=self.mode, redis="unavailable", error=type(exc).__name__)
            else:
                self.record_success()
                details.update(status="healthy", mode="redis", redis="ok")
        details["latency_ms"] = round((time.perf_counter() - start) * 1000, 3)
        details["memory_entries"] = len(self._memory)
        return details["status"] == "healthy", details
