"""Redis faults through HTTP: refused, paused (SIGSTOP) and slow servers never fail or stall requests."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.integration.faults.fault_support import ADMIN, closed_port, make_settings, serve, timed

pytestmark = pytest.mark.integration

# The requests exercised: market data goes through the cache, a workspace list through rate limiting.
PATHS = ("/api/v1/market/AAPL/quote", "/api/v1/workspaces", "/api/v1/market/MSFT/fundamentals")


def redis_settings(tmp_path, port: int):
    return make_settings(tmp_path, redis={"host": "127.0.0.1", "port": port},
                         cache={"breaker_failure_threshold": 2, "breaker_probe_interval_s": 30.0})


def test_closed_redis_port_serves_from_memory_and_health_says_degraded(tmp_path):
    with serve(redis_settings(tmp_path, closed_port())) as client:
        for path in PATHS:
            r, took = timed(client.get, path, headers=ADMIN)
            assert r.status_code == 200, (path, r.text)
            assert took < 1.5, (path, took)
        assert client.get("/api/v1/market/AAPL/quote", headers=ADMIN).json()["symbol"] == "AAPL"
        health, took = timed(client.get, "/api/health")
        assert took < 2.0
        assert health.status_code == 200, health.text  # the cache is optional: degraded, not down
        body = health.json()
        assert body["status"] == "degraded"
        assert body["components"]["cache"]["status"] == "degraded"
        assert body["components"]["database"]["status"] == "healthy"


def test_paused_redis_answers_within_bound_and_fast_once_breaker_opens(tmp_path, redis_server):
    with serve(redis_settings(tmp_path, redis_server.port)) as client:
        warm = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert warm.status_code == 200 and client.core.cache.mode == "redis"
        redis_server.pause()
        try:
            durations = []
            for i in range(6):
                r, took = timed(client.get, PATHS[i % len(PATHS)], headers=ADMIN)
                assert r.status_code == 200, r.text
                durations.append(took)
            assert max(durations) < 1.5, durations
            assert max(durations[-2:]) < 0.75, durations  # the breaker is open: memory, no socket timeouts
            assert client.core.cache.mode == "memory"
            health, took = timed(client.get, "/api/health")
            assert took < 2.0 and health.status_code == 200
            assert health.json()["components"]["cache"]["status"] != "healthy"
        finally:
            redis_server.resume()


def _debug_sleep(port: int, seconds: float) -> threading.Thread:
    """DEBUG SLEEP on a side connection: the single-threaded server stalls every client meanwhile."""

    def run() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"DEBUG SLEEP {seconds}\r\n".encode())
            s.recv(16)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.05)  # let the command reach the server first
    return thread


def test_slow_redis_still_answers(tmp_path, redis_server):
    with serve(redis_settings(tmp_path, redis_server.port)) as client:
        assert client.get("/api/v1/market/AAPL/quote", headers=ADMIN).status_code == 200
        sleeper = _debug_sleep(redis_server.port, 0.3)
        r, took = timed(client.get, "/api/v1/market/AAPL/quote", headers=ADMIN)
        sleeper.join(5)
        assert r.status_code == 200, r.text
        assert r.json()["symbol"] == "AAPL"
        assert took < 1.5, took
        # Once Redis is responsive again, requests keep succeeding.
        r = client.get("/api/v1/workspaces", headers=ADMIN)
        assert r.status_code == 200, r.text
