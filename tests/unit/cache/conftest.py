"""Fixtures for cache unit tests: fakeredis servers that can be 'disconnected' to simulate outages."""

from __future__ import annotations

from typing import Iterator

import fakeredis
import pytest

from shared.cache import CacheBackend


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def fake_redis(fake_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fake_server)


@pytest.fixture
def make_cache(fake_server: fakeredis.FakeServer) -> Iterator:
    """Factory of CacheBackends on the shared fake server (closed after the test)."""
    made: list[CacheBackend] = []

    def make(**kw) -> CacheBackend:
        kw.setdefault("breaker_probe_interval_s", 0.02)
        cache = CacheBackend(fakeredis.FakeRedis(server=fake_server), **kw)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


@pytest.fixture
def cache(make_cache) -> CacheBackend:
    return make_cache()
