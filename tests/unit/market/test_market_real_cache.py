"""DataManager against the real shared.cache CacheBackend + SingleFlight (memory mode and fakeredis).

Skipped while shared.cache is not importable (it is built in parallel by another engineer).
"""

from __future__ import annotations

import threading

import pytest

cache_mod = pytest.importorskip("shared.cache")

from shared.market.factory import build_data_manager  # noqa: E402

from tests.unit.market.market_fakes import FakeClock, FakeProvider, SyncExecutor, make_settings  # noqa: E402


def make_cache(mode):
    if mode == "memory":
        return cache_mod.CacheBackend(None)
    fakeredis = pytest.importorskip("fakeredis")
    return cache_mod.CacheBackend(fakeredis.FakeRedis())


@pytest.mark.parametrize("mode", ["memory", "redis"])
def test_manager_with_real_cache_and_singleflight(mode):
    cache = make_cache(mode)
    clock = FakeClock()
    sf = cache_mod.SingleFlight(cache)
    primary = FakeProvider("primary", clock, delay_s=0.05)
    dm = build_data_manager(make_settings(), cache, sf, clock=clock, providers={"primary": primary}, executor=SyncExecutor())
    barrier = threading.Barrier(20)
    out = []

    def worker():
        barrier.wait()
        out.append(dm.get_quote("AAPL").price)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == [100.0] * 20 and primary.calls == {"get_quote": 1}
    clock.advance(61)
    assert dm.get_quote("AAPL").provenance.stale is True  # SWR envelope survives the real codec
    assert dm.get_quote("AAPL").provenance.stale is False  # refreshed by the (synchronous) background job
    assert primary.calls == {"get_quote": 2}
    assert cache.incr(cache.key("market", "av_quota", "x"), 1, ttl=60) == 1
