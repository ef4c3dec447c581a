"""Integration fixtures: a real redis-server per test (see tests/integration/redis_server.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

try:
    from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401 - fixture re-export
except ImportError:  # run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401

from shared.cache import CacheBackend
from shared.cache.backend import reset_pools
from shared.config.models import Settings


def redis_settings(server: RedisServer, **cache) -> Settings:
    return Settings.model_validate(
        {"redis": {"url": server.url}, "cache": {"breaker_probe_interval_s": 0.1, **cache}}
    )


@pytest.fixture
def make_backend(redis_server: RedisServer) -> Iterator:
    """Factory of CacheBackends built by from_config against the test's redis-server."""
    made: list[CacheBackend] = []

    def make(**cache) -> CacheBackend:
        backend = CacheBackend.from_config(redis_settings(redis_server, **cache))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
    reset_pools()
