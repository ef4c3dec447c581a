from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from bson import ObjectId

from shared.cache import CacheBackend
from shared.config.models import Settings


def wait_until(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture(params=["redis", "memory"])
def any_cache(request, make_cache) -> CacheBackend:
    return make_cache() if request.param == "redis" else CacheBackend(None)


def test_json_round_trip_handles_datetime_date_objectid_decimal(any_cache):
    oid = ObjectId()
    value = {
        "_id": oid,
        "at": dt.datetime(2024, 5, 1, 13, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "price": Decimal("187.25"),
        "tags": ("a", "b"),
        "nested": [{"id": oid}],
    }
    key = any_cache.key("quote", "AAPL")
    any_cache.set_json(key, value, ttl=60)
    assert any_cache.get_json(key) == {
        "_id": str(oid),
        "at": "2024-05-01T13:30:00+00:00",
        "day": "2024-05-01",
        "price": 187.25,
        "tags": ["a", "b"],
        "nested": [{"id": str(oid)}],
    }


def test_json_handles_pydantic_models(any_cache):
    from pydantic import BaseModel

    class Point(BaseModel):
        at: dt.datetime
        value: float

    any_cache.set_json("p", [Point(at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), value=1.5)])
    assert any_cache.get_json("p") == [{"at": "2024-01-02T00:00:00Z", "value": 1.5}]


def test_unserializable_value_raises_type_error(any_cache):
    with pytest.raises(TypeError):
        any_cache.set_json("k", {"x": object()})


def test_get_set_delete_and_missing(any_cache):
    assert any_cache.get("nope") is None
    assert any_cache.get_json("nope") is None
    any_cache.set("k", "v")
    assert any_cache.get("k") == b"v"
    any_cache.delete("k")
    assert any_cache.get("k") is None


def test_corrupt_json_is_a_miss(any_cache):
    any_cache.set("k", b"{not json")
    assert any_cache.get_json("k") is None
    assert any_cache.get("k") is None  # dropped


def test_ttl_expiry(any_cache):
    any_cache.set("short", b"1", ttl=0.3)
    any_cache.set("long", b"2", ttl=60)
    assert any_cache.get("short") == b"1"
    time.sleep(0.4)
    assert any_cache.get("short") is None
    assert any_cache.get("long") == b"2"


def test_ttl_is_passed_to_redis(cache, fake_redis):
    cache.set_json(cache.key("x"), {"a": 1}, ttl=cache.ttl_for("price_data"))
    assert 59_000 < fake_redis.pttl("stockagent:v1:x") <= 60_000
    cache.set("forever", b"1")
    assert fake_redis.pttl("forever") == -1


def test_incr_counts_atomically_with_expiry_set_once(any_cache):
    assert any_cache.incr("quota", ttl=60) == 1
    assert any_cache.incr("quota", 5, ttl=60) == 6
    assert any_cache.get("quota") == b"6"


def test_incr_sets_ttl_in_redis_only_on_creation(cache, fake_redis):
    cache.incr("q", ttl=100)
    fake_redis.pexpire("q", 5000)
    cache.incr("q", ttl=100)
    assert fake_redis.pttl("q") <= 5000  # not reset by the second increment
    assert fake_redis.get("q") == b"2"


def test_key_and_ttl_for_follow_settings():
    settings = Settings.model_validate({"cache": {"namespace": "sa", "key_version": "v9", "ttl": {"price_data": 7}}})
    cache = CacheBackend.from_config(settings)
    assert cache.key("quote", "AAPL") == "sa:v9:quote:AAPL"
    assert cache.ttl_for("price_data") == 7
    with pytest.raises(KeyError, match="reports"):
        cache.ttl_for("reports")


def test_default_ttls():
    cache = CacheBackend.from_config(Settings())
    assert cache.key("quote", "AAPL") == "stockagent:v1:quote:AAPL"
    expected = {"price_data": 60, "historical_data": 3600, "fundamental_data": 86400,
                "technical_data": 900, "reports": 43200}
    assert {k: cache.ttl_for(k) for k in expected} == expected


def test_not_configured_is_memory_and_healthy():
    cache = CacheBackend.from_config(Settings())
    assert cache.mode == "memory"
    assert cache.live_client is None and cache.client is None
    ok, details = cache.health_check()
    assert ok is True and cache.is_healthy()
    assert details["status"] == "healthy" and details["mode"] == "memory"
    assert isinstance(details["latency_ms"], float)


def test_memory_fallback_is_bounded_by_settings():
    cache = CacheBackend.from_config(Settings.model_validate({"cache": {"memory_max_entries": 5}}))
    for i in range(20):
        cache.set(f"k{i}", b"x")
    assert len(cache.memory) == 5
    assert cache.get("k0") is None and cache.get("k19") == b"x"


def test_healthy_redis(cache):
    ok, details = cache.health_check()
    assert ok and details["status"] == "healthy" and details["mode"] == "redis"


def test_breaker_trips_after_threshold_and_recovers(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=3, breaker_probe_interval_s=0.02)
    cache.set("k", b"from-redis")
    fake_server.connected = False

    # Below the threshold: each call is served from memory but the mode stays redis.
    assert cache.get("k") is None
    cache.set("m", b"mem")
    assert cache.mode == "redis"
    assert cache.get("m") == b"mem"  # third consecutive failure trips the breaker
    assert cache.mode == "memory"
    assert cache.live_client is None
    ok, details = cache.health_check()
    assert not ok and details["status"] == "degraded" and details["mode"] == "memory"
    assert details["error"] == "ConnectionError"
    cache.set("m2", b"still works")
    assert cache.get("m2") == b"still works"

    fake_server.connected = True
    assert wait_until(lambda: cache.mode == "redis")
    assert cache.get("k") == b"from-redis"
    assert cache.is_healthy()


def test_success_resets_the_failure_count(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=3)
    for _ in range(5):
        fake_server.connected = False
        cache.get("a")
        cache.get("a")
        fake_server.connected = True
        cache.get("a")
    assert cache.mode == "redis"


def test_health_check_ping_failure_reports_degraded(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=3)
    fake_server.connected = False
    ok, details = cache.health_check()
    assert not ok and details["status"] == "degraded" and details["redis"] == "unavailable"


def test_importing_package_loads_no_sdk():
    import subprocess

    code = (
        "import sys, shared.cache; "
        "bad = [m for m in ('redis', 'limits', 'azure.identity', 'openai', 'pandas', 'bson') if m in sys.modules]; "
        "print(bad)"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_command_error_does_not_trip_the_breaker(make_cache, fake_redis):
    cache = make_cache(breaker_failure_threshold=1)
    fake_redis.lpush("list", "x")
    assert cache.incr("list") == 1  # WRONGTYPE from Redis: served from memory for this call
    assert cache.mode == "redis"


def test_numbers_are_stored_as_text(any_cache):
    any_cache.set("n", 5)
    assert any_cache.get("n") == b"5"


def test_recovery_drops_values_written_to_memory_during_failures(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=5)
    fake_server.connected = False
    cache.set("k", b"written-while-down")
    fake_server.connected = True
    assert cache.get("other") is None  # Redis answers: failure count reset
    fake_server.connected = False
    assert cache.get("k") is None  # the stale memory copy is gone


def test_writes_and_deletes_during_failover_are_not_served_stale_from_redis(make_cache, fake_server, fake_redis):
    cache = make_cache(breaker_failure_threshold=1, breaker_probe_interval_s=0.01)
    cache.set("k", b"old")
    cache.set("gone", b"old")
    fake_server.connected = False
    assert cache.get("x") is None  # trips the breaker
    assert cache.mode == "memory"
    cache.set("k", b"new")
    cache.delete("gone")
    fake_server.connected = True
    assert wait_until(lambda: cache.mode == "redis")
    assert cache.get("k") != b"old"
    assert cache.get("gone") is None
    assert fake_redis.get("k") is None and fake_redis.get("gone") is None


def test_a_single_failed_delete_does_not_leave_the_stale_key(make_cache, fake_server, fake_redis):
    cache = make_cache(breaker_failure_threshold=3)
    cache.set("k", b"old")
    fake_server.connected = False
    cache.delete("k")  # fails below the threshold: mode stays redis
    assert cache.mode == "redis"
    fake_server.connected = True
    assert cache.get("k") is None
    assert fake_redis.get("k") is None


def test_successful_write_after_a_failed_one_is_kept(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=3)
    fake_server.connected = False
    cache.set("k", b"1")
    fake_server.connected = True
    cache.set("k", b"2")
    assert cache.get("k") == b"2"


def test_too_many_failed_writes_clear_the_whole_namespace_on_recovery(make_cache, fake_server, fake_redis):
    cache = make_cache(breaker_failure_threshold=1, breaker_probe_interval_s=0.01, dirty_max_keys=2)
    for name in ("a", "b", "c"):
        cache.set(cache.key(name), b"old")
    fake_redis.set("elsewhere:key", b"kept")
    fake_server.connected = False
    cache.get("x")
    for name in ("a", "b", "c"):
        cache.set(cache.key(name), b"new")
    fake_server.connected = True
    assert wait_until(lambda: cache.mode == "redis")
    assert [cache.get(cache.key(n)) for n in ("a", "b", "c")] == [None, None, None]
    assert fake_redis.get("elsewhere:key") == b"kept"


def test_failover_while_the_previous_probe_thread_is_exiting_still_recovers(make_cache, fake_server):
    import threading

    cache = make_cache(breaker_failure_threshold=1, breaker_probe_interval_s=0.01)
    in_clear, release = threading.Event(), threading.Event()
    real_clear = cache.memory.clear

    def slow_clear() -> None:
        # Holds the first probe thread alive right after it switched back to redis.
        if threading.current_thread().name == "cache-redis-probe" and not release.is_set():
            in_clear.set()
            release.wait(5)
        real_clear()

    cache.memory.clear = slow_clear  # type: ignore[method-assign]
    fake_server.connected = False
    cache.get("x")
    fake_server.connected = True
    assert in_clear.wait(3)
    assert cache.mode == "redis"
    fake_server.connected = False
    cache.get("x")  # trips again while the old probe thread is still alive
    assert cache.mode == "memory"
    fake_server.connected = True
    release.set()
    assert wait_until(lambda: cache.mode == "redis")
