"""The redis-server helper itself: skip/fail rule, pause, kill and restart on the same port."""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.redis_server import _ping, require_redis_server

pytestmark = pytest.mark.integration


def test_missing_binary_skips_locally(monkeypatch):
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_redis_server()


def test_missing_binary_fails_under_ci(monkeypatch):
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_redis_server()


def test_pause_resume_kill_restart_same_port(redis_server):
    port = redis_server.port
    assert _ping(redis_server.host, port)
    redis_server.pause()
    start = time.monotonic()
    assert not _ping(redis_server.host, port, timeout=0.2)  # accepted by the kernel, never answered
    assert time.monotonic() - start < 1
    redis_server.resume()
    assert _ping(redis_server.host, port)
    redis_server.kill()
    assert not redis_server.running
    with pytest.raises(OSError):
        socket.create_connection((redis_server.host, port), timeout=0.5).close()
    redis_server.start()
    assert redis_server.port == port and _ping(redis_server.host, port)


def test_flush_empties_the_server(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.set("a", "1")
    redis_server.flush()
    assert client.dbsize() == 0
    client.close()
