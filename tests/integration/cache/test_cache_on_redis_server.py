"""CacheBackend, RateLimiter and SingleFlight against a real redis-server."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import redis as redis_lib

from shared.cache import RateLimiter, SingleFlight
from shared.config.models import Settings

pytestmark = pytest.mark.integration


def wait_until(predicate, timeout: float) -> float:
    """Seconds it took; fails the test past ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not reached within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - start


def test_round_trips_on_real_redis(make_backend, redis_server):
    cache = make_backend()
    assert cache.mode == "redis"
    key = cache.key("quote", "AAPL")
    cache.set_json(key, {"at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "p": 1.5}, ttl=cache.ttl_for("price_data"))
    assert cache.get_json(key) == {"at": "2024-01-01T00:00:00+00:00", "p": 1.5}
    raw = redis_lib.Redis.from_url(redis_server.url)
    assert 0 < raw.ttl(key) <= 60
    assert cache.incr("calls", ttl=86400) == 1 and cache.incr("calls", 2) == 3
    assert 0 < raw.ttl("calls") <= 86400
    cache.delete(key)
    assert cache.get(key) is None
    ok, details = cache.health_check()
    assert ok and details["mode"] == "redis" and details["latency_ms"] >= 0
    raw.close()


def test_killed_redis_fails_over_to_memory_and_back(make_backend, redis_server):
    cache = make_backend(breaker_failure_threshold=3)
    cache.set("before", b"1")
    redis_server.kill()

    for i in range(5):
        cache.set(f"k{i}", str(i))
        assert cache.get(f"k{i}") == str(i).encode()
    assert cache.mode == "memory"
    ok, details = cache.health_check()
    assert not ok and details["status"] == "degraded" and details["mode"] == "memory"

    redis_server.start()
    took = wait_until(lambda: cache.mode == "redis", timeout=5)
    assert took < 5
    cache.set("after", b"2")
    assert redis_lib.Redis.from_url(redis_server.url).get("after") == b"2"
    assert cache.is_healthy()


def test_paused_redis_calls_respect_timeouts(make_backend, redis_server):
    # Threshold above the number of calls so every call really goes to the paused server.
    cache = make_backend(breaker_failure_threshold=50)
    cache.set("k", b"v")
    redis_server.pause()
    try:
        durations = []
        for _ in range(3):
            start = time.monotonic()
            assert cache.get("k") is None  # served (empty) from memory
            durations.append(time.monotonic() - start)
        # socket timeout 250 ms, one retry -> ~0.5 s; generous bound for a busy machine.
        assert max(durations) < 0.9, durations
        assert min(durations) >= 0.2, durations  # it did wait for Redis (and retried)
        assert cache.mode == "redis"
    finally:
        redis_server.resume()
    assert cache.get("k") == b"v"


def test_paused_redis_trips_breaker_then_calls_are_fast(make_backend, redis_server):
    cache = make_backend(breaker_failure_threshold=2)
    redis_server.pause()
    try:
        cache.get("a")
        cache.get("a")
        assert cache.mode == "memory"
        start = time.monotonic()
        for _ in range(20):
            cache.set("x", b"1")
            assert cache.get("x") == b"1"
        assert time.monotonic() - start < 0.5
    finally:
        redis_server.resume()
    wait_until(lambda: cache.mode == "redis", timeout=5)


def test_rate_limit_shared_across_instances(make_backend, redis_server):
    settings = Settings.model_validate({"rate_limits": {"groups": {"chat": "4/minute"}}})
    a = RateLimiter(settings, make_backend())
    b = RateLimiter(settings, make_backend())
    results = [(a if i % 2 else b).hit("chat", "user-1") for i in range(5)]
    assert [r.allowed for r in results] == [True, True, True, True, False]
    assert results[-1].retry_after > 0 and results[-1].remaining == 0
    assert a.hit("chat", "user-2").allowed


def test_single_flight_across_instances(make_backend):
    flights = [SingleFlight(make_backend()), SingleFlight(make_backend())]
    release = threading.Event()
    results: list[object] = [None] * 20

    def compute() -> dict:
        release.wait(5)
        return {"symbol": "AAPL", "price": 190.5}

    def worker(i: int) -> None:
        results[i] = flights[i % 2].do("quote:AAPL", compute)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(f.pending("quote:AAPL") for f in flights) == 20, timeout=5)
    # One instance's leader owns the Redis lock, the other's is polling for its result.
    wait_until(lambda: sum(f.remote_waits for f in flights) == 1, timeout=5)
    release.set()
    for t in threads:
        t.join(10)
    assert sum(f.computations for f in flights) == 1
    assert results == [{"symbol": "AAPL", "price": 190.5}] * 20


def test_rate_limiter_keeps_answering_when_redis_dies(make_backend, redis_server):
    settings = Settings.model_validate({"rate_limits": {"groups": {"chat": "3/minute"}, "fail_open": True}})
    cache = make_backend(breaker_failure_threshold=2)
    limiter = RateLimiter(settings, cache)
    assert limiter.hit("chat", "u").remaining == 2
    redis_server.kill()
    start = time.monotonic()
    results = [limiter.hit("chat", "u") for _ in range(6)]
    assert time.monotonic() - start < 3
    assert cache.mode == "memory"
    # Two fail-open answers trip the breaker; then the memory limiter enforces 3/minute.
    assert [r.allowed for r in results] == [True, True, True, True, True, False]
    redis_server.start()
    wait_until(lambda: cache.mode == "redis", timeout=5)
    assert limiter.hit("chat", "u").remaining == 2  # a fresh server: the count starts over
