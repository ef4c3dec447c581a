from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from shared.cache import CacheBackend, SingleFlight


def run_concurrently(n: int, target) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.fixture(params=["memory", "redis"])
def flight_cache(request, make_cache) -> CacheBackend:
    return CacheBackend(None) if request.param == "memory" else make_cache()


def test_fifty_threads_share_one_computation(flight_cache):
    sf = SingleFlight(flight_cache)
    release = threading.Event()
    results: list[object] = [None] * 50

    def compute() -> dict:
        release.wait(5)
        return {"price": 42}

    def worker(i: int) -> None:
        results[i] = sf.do("quote:AAPL", compute)

    threads = run_concurrently(50, worker)
    wait_until(lambda: sf.pending("quote:AAPL") == 50)
    release.set()
    for t in threads:
        t.join(5)
    assert sf.computations == 1
    assert results == [{"price": 42}] * 50
    assert sf.pending("quote:AAPL") == 0


def test_exception_propagates_to_every_waiter(flight_cache):
    sf = SingleFlight(flight_cache)
    release = threading.Event()
    errors: list[BaseException | None] = [None] * 20

    def compute() -> None:
        release.wait(5)
        raise LookupError("upstream down")

    def worker(i: int) -> None:
        try:
            sf.do("k", compute)
        except LookupError as exc:
            errors[i] = exc

    threads = run_concurrently(20, worker)
    wait_until(lambda: sf.pending("k") == 20)
    release.set()
    for t in threads:
        t.join(5)
    assert sf.computations == 1
    assert all(isinstance(e, LookupError) for e in errors)
    # The key is free again and the lock was released: the next call computes.
    assert sf.do("k", lambda: 7) == 7
    assert sf.computations == 2


def test_sequential_calls_compute_each_time(flight_cache):
    sf = SingleFlight(flight_cache)
    assert [sf.do("k", lambda i=i: i) for i in range(3)] == [0, 1, 2]
    assert sf.computations == 3


def test_cross_instance_waiter_uses_the_owners_published_result(make_cache, fake_redis):
    owner_cache, waiter_cache = make_cache(), make_cache()
    owner, waiter = SingleFlight(owner_cache), SingleFlight(waiter_cache)
    release = threading.Event()
    got: dict[str, object] = {}

    def slow() -> dict:
        release.wait(5)
        return {"v": 1}

    t1 = threading.Thread(target=lambda: got.setdefault("owner", owner.do("k", slow)))
    t1.start()
    wait_until(lambda: fake_redis.exists("stockagent:v1:sf:k:lock"))
    t2 = threading.Thread(target=lambda: got.setdefault("waiter", waiter.do("k", lambda: {"v": "mine"})))
    t2.start()
    wait_until(lambda: waiter.remote_waits == 1)  # the waiter found the owner's lock
    release.set()
    t1.join(5)
    t2.join(5)
    assert got == {"owner": {"v": 1}, "waiter": {"v": 1}}
    assert owner.computations + waiter.computations == 1
    assert not fake_redis.exists("stockagent:v1:sf:k:lock")


def test_waiter_returns_result_already_published_without_computing(cache, fake_redis):
    fake_redis.set("stockagent:v1:sf:k:lock", "other-instance", px=5000)
    fake_redis.set("stockagent:v1:sf:k:result", b'{"from":"other"}', px=5000)
    sf = SingleFlight(cache)
    assert sf.do("k", lambda: "mine") == {"from": "other"}
    assert sf.computations == 0


def test_waiter_computes_when_foreign_lock_expires(cache, fake_redis):
    fake_redis.set("stockagent:v1:sf:k:lock", "crashed-instance", px=300)
    sf = SingleFlight(cache)
    start = time.monotonic()
    assert sf.do("k", lambda: "mine", wait_s=5) == "mine"
    assert sf.computations == 1 and sf.remote_waits == 1
    assert time.monotonic() - start >= 0.1


def test_waiter_computes_after_wait_s(cache, fake_redis):
    fake_redis.set("stockagent:v1:sf:k:lock", "slow-instance", px=60_000)
    sf = SingleFlight(cache)
    start = time.monotonic()
    assert sf.do("k", lambda: "mine", wait_s=0.15) == "mine"
    elapsed = time.monotonic() - start
    assert 0.1 <= elapsed < 2
    assert fake_redis.get("stockagent:v1:sf:k:lock") == b"slow-instance"  # not ours to release


def test_redis_down_degrades_to_local_dedup(make_cache, fake_server):
    cache = make_cache(breaker_failure_threshold=100)
    fake_server.connected = False
    sf = SingleFlight(cache)
    assert sf.do("k", lambda: 5) == 5
    assert sf.computations == 1


def test_custom_codec_for_typed_results(cache, fake_redis):
    fake_redis.set("stockagent:v1:sf:k:lock", "other", px=5000)
    fake_redis.set("stockagent:v1:sf:k:result", b"41", px=5000)
    sf = SingleFlight(cache)
    assert sf.do("k", lambda: 0, loads=lambda raw: int(raw) + 1) == 42


def test_owner_publishes_result_with_short_ttl(make_cache, fake_redis):
    sf = SingleFlight(make_cache(), result_ttl_s=3)
    sf.do("k", lambda: [1, 2])
    assert fake_redis.get("stockagent:v1:sf:k:result") == b"[1,2]"
    assert 0 < fake_redis.pttl("stockagent:v1:sf:k:result") <= 3000


def test_result_of_a_previous_flight_is_not_served(cache, fake_redis):
    fake_redis.set("stockagent:v1:sf:k:result", b'"old"', px=5000)
    sf = SingleFlight(cache)
    assert sf.do("k", lambda: "new") == "new"
    assert fake_redis.get("stockagent:v1:sf:k:result") == b'"new"'


def test_lock_scripts_run_by_sha_not_by_resending_the_body(fake_server):
    class CountingRedis(fakeredis.FakeRedis):
        evals = 0
        evalshas = 0

        def eval(self, *args, **kwargs):
            CountingRedis.evals += 1
            return super().eval(*args, **kwargs)

        def evalsha(self, *args, **kwargs):
            CountingRedis.evalshas += 1
            return super().evalsha(*args, **kwargs)

    cache = CacheBackend(CountingRedis(server=fake_server))
    sf = SingleFlight(cache)
    assert sf.do("a", lambda: 1) == 1
    assert sf.do("b", lambda: 2) == 2
    assert CountingRedis.evals == 0
    assert CountingRedis.evalshas >= 4  # acquire + release, twice
    cache.close()


def test_in_process_waiter_stops_waiting_for_a_hung_leader_after_wait_s(flight_cache):
    sf = SingleFlight(flight_cache)
    release = threading.Event()
    leader = threading.Thread(target=lambda: sf.do("k", lambda: release.wait(5) and "leader"))
    leader.start()
    wait_until(lambda: sf.pending("k") == 1)
    start = time.monotonic()
    try:
        assert sf.do("k", lambda: "local", wait_s=0.1) == "local"
        assert time.monotonic() - start < 2
    finally:
        release.set()
        leader.join(5)
    assert sf.computations == 2
