from __future__ import annotations

import logging
import time

import pytest

from shared.cache import CacheBackend, RateLimiter, RateLimitResult
from shared.config.models import Settings
from shared.errors import ServiceUnavailable


def settings(**rate_limits) -> Settings:
    base = {"groups": {"chat": "3/minute", "read": "5/minute"}, "default": "2/minute"}
    return Settings.model_validate({"rate_limits": {**base, **rate_limits}})


@pytest.fixture(params=["redis", "memory"])
def limiter_cache(request, make_cache) -> CacheBackend:
    return make_cache() if request.param == "redis" else CacheBackend(None)


@pytest.fixture(autouse=True)
def away_from_window_edge():
    """Aligned windows reset on the clock's minute: don't start a sequence of hits in its last second."""
    left = 60 - time.time() % 60
    if left < 1.5:
        time.sleep(left + 0.05)


@pytest.mark.parametrize("strategy", ["aligned-window", "moving-window"])
def test_each_strategy_allows_n_then_denies(limiter_cache, strategy):
    rl = RateLimiter(settings(strategy=strategy), limiter_cache)
    results = [rl.hit("chat", f"user-{strategy}") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert 0 < results[-1].retry_after <= 60


@pytest.mark.parametrize("strategy,round_trips", [("aligned-window", 1), ("moving-window", 2)])
def test_redis_round_trips_per_check(make_cache, monkeypatch, strategy, round_trips):
    import redis

    rl = RateLimiter(settings(strategy=strategy), make_cache())
    rl.hit("chat", "warm")  # scripts loaded, storage built
    calls = []
    original = redis.Redis.execute_command

    def counting(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    rl.hit("chat", "counted")
    assert len(calls) == round_trips, calls


def test_aligned_window_resets_at_the_window_end(limiter_cache):
    rl = RateLimiter(settings(), limiter_cache)
    result = rl.hit("chat", "edge")
    assert result.reset_at == (int(time.time() // 60) + 1) * 60


def test_allows_n_then_denies_with_retry_after(limiter_cache):
    rl = RateLimiter(settings(), limiter_cache)
    results = [rl.hit("chat", "user-1") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert all(r.limit == 3 for r in results)
    denied = results[-1]
    assert isinstance(denied, RateLimitResult)
    assert 0 < denied.retry_after <= 60
    assert time.time() < denied.reset_at <= time.time() + 61
    assert results[0].retry_after == 0


def test_keys_and_groups_are_independent(limiter_cache):
    rl = RateLimiter(settings(), limiter_cache)
    for _ in range(3):
        rl.hit("chat", "user-1")
    assert not rl.hit("chat", "user-1").allowed
    assert rl.hit("chat", "user-2").allowed
    assert rl.hit("read", "user-1").allowed


def test_unknown_group_uses_default(limiter_cache):
    rl = RateLimiter(settings(), limiter_cache)
    assert [rl.hit("other", "u").allowed for _ in range(3)] == [True, True, False]
    assert rl.hit("other", "u").limit == 2


def test_peek_does_not_count(limiter_cache):
    rl = RateLimiter(settings(), limiter_cache)
    rl.hit("chat", "u")
    assert rl.peek("chat", "u").remaining == 2
    assert rl.peek("chat", "u").remaining == 2


def test_shared_across_instances_on_one_redis(make_cache):
    a = RateLimiter(settings(), make_cache())
    b = RateLimiter(settings(), make_cache())
    assert [a.hit("chat", "u").allowed, b.hit("chat", "u").allowed, a.hit("chat", "u").allowed] == [True] * 3
    assert not b.hit("chat", "u").allowed


def test_redis_storage_uses_namespaced_keys(cache, fake_redis):
    RateLimiter(settings(), cache).hit("chat", "u")
    assert [k for k in fake_redis.keys("*") if k.startswith(b"stockagent:v1:rl:")]


def test_disabled_always_allows(limiter_cache):
    rl = RateLimiter(settings(enabled=False), limiter_cache)
    assert all(rl.hit("chat", "u").allowed for _ in range(10))


def test_fails_open_with_warning_when_storage_errors(make_cache, fake_server, caplog):
    cache = make_cache(breaker_failure_threshold=100)
    rl = RateLimiter(settings(fail_open=True), cache)
    fake_server.connected = False
    with caplog.at_level(logging.WARNING, logger="shared.cache.ratelimit"):
        results = [rl.hit("chat", "u") for _ in range(5)]
    assert all(r.allowed for r in results)
    assert "failing open" in caplog.text


def test_fails_closed_when_configured(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=100)
    rl = RateLimiter(settings(fail_open=False), cache)
    fake_server.connected = False
    with pytest.raises(ServiceUnavailable):
        rl.hit("chat", "u")


def test_switches_to_memory_when_breaker_trips_and_back(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=2, breaker_probe_interval_s=0.02)
    rl = RateLimiter(settings(fail_open=False), cache)
    assert rl.hit("chat", "u").remaining == 2
    fake_server.connected = False
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            rl.hit("chat", "u")
    assert cache.mode == "memory"
    # Memory storage now: counts start afresh in this process and enforce the limit.
    assert [rl.hit("chat", "u").allowed for _ in range(4)] == [True, True, True, False]
    fake_server.connected = True
    deadline = time.monotonic() + 3
    while cache.mode != "redis" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.mode == "redis"
    assert rl.hit("chat", "u").remaining == 1  # Redis still holds the earlier hit


def test_multiple_limits_in_one_group(limiter_cache):
    rl = RateLimiter(settings(groups={"burst": "2/second;10/minute"}), limiter_cache)
    results = [rl.hit("burst", "u") for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert results[-1].limit == 2


def test_malformed_limit_fails_at_construction():
    with pytest.raises(ValueError):
        RateLimiter(settings(groups={"x": "lots"}), CacheBackend(None))


def test_memory_windows_expire_and_start_no_threads():
    import threading

    from shared.cache.ratelimit import _MemoryCounters

    counters = _MemoryCounters()
    assert [counters.incr("k", 0.05) for _ in range(3)] == [1, 2, 3]
    time.sleep(0.06)
    assert counters.get("k") == 0 and counters.incr("k", 0.05) == 1
    rl = RateLimiter(settings(groups={"read": "1000/minute"}), CacheBackend(None))
    before = threading.active_count()
    for i in range(200):
        rl.hit("read", f"user-{i % 7}")
    assert threading.active_count() == before
