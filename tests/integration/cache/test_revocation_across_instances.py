"""Two app instances (two `python -m devhost` processes, started as the benchmark starts them) sharing one database and one real
redis-server: a key revoked on one is refused by the other at once, through Redis pub/sub, and
not only when the other's 30 s principal cache expires; after a Redis outage the other instance
drops what it may have missed as soon as it listens again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from shared.services.auth import PRINCIPAL_TTL_S
from tests.integration.redis_server import RedisServer

ADMIN = {"X-API-Key": "two-instances-admin-key"}


def refused_soon(client: httpx.Client, headers: dict[str, str], *, within_s: float = 10.0) -> bool:
    """True when `client` answers 401 for `headers` within `within_s` (a third of the principal TTL).

    Delivery through pub/sub is asynchronous (another thread of the other process applies it), so
    the first request may in principle still see the key; the TTL would take 30 s.
    """
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if client.get("/api/v1/users/me", headers=headers).status_code == 401:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def instances(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    from bench.util import LocalHost
    from shared.data.embedded import EmbeddedMongoServer

    database = EmbeddedMongoServer(tmp_path / "db")
    shared = {"LOCAL_DEV_API_KEY": ADMIN["X-API-Key"], "MONGODB_URI": database.start(), "MONGODB_RETRY_WRITES": "false",
              "REDIS_URL": redis_server.url, "USE_AZURE_KEYVAULT": "false", "CONFIG_ENV_OVERRIDE_MODE": "all"}
    hosts = [LocalHost(tmp_path / name / "data", shared) for name in ("a", "b")]
    clients = [httpx.Client(base_url=host.base_url, timeout=10) for host in hosts]
    try:
        for host in hosts:
            host.wait_ready(timeout=90)
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for host in hosts:
            host.close()
        database.close()


def new_key(a: httpx.Client, email: str) -> tuple[dict[str, str], str]:
    created = a.post("/api/v1/users", json={"email": email}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["api_key"]["secret"]}, created.json()["api_key"]["id"]


def test_a_key_revoked_on_one_instance_is_refused_by_the_other(instances, redis_server):
    a, b = instances
    headers, key_id = new_key(a, "two-instances@example.com")
    assert a.get("/api/v1/users/me", headers=headers).status_code == 200
    assert b.get("/api/v1/users/me", headers=headers).status_code == 200  # now cached on b
    cached_at = time.monotonic()

    assert a.delete(f"/api/v1/users/me/api-keys/{key_id}", headers=headers).status_code == 204
    assert a.get("/api/v1/users/me", headers=headers).status_code == 401
    assert refused_soon(b, headers)
    assert time.monotonic() - cached_at < PRINCIPAL_TTL_S, "refused by pub/sub, not by the cache TTL"


def test_after_a_redis_outage_the_other_instance_drops_what_it_missed(instances, redis_server):
    a, b = instances
    headers, key_id = new_key(a, "outage@example.com")
    assert b.get("/api/v1/users/me", headers=headers).status_code == 200  # cached on b, b listening
    cached_at = time.monotonic()

    redis_server.kill()  # the revocation below cannot be published
    assert a.delete(f"/api/v1/users/me/api-keys/{key_id}", headers=headers).status_code == 204
    assert a.get("/api/v1/users/me", headers=headers).status_code == 401
    redis_server.start()
    # b resubscribes (every breaker probe interval) and, having missed messages, drops its cache.
    assert refused_soon(b, headers, within_s=15.0)
    assert time.monotonic() - cached_at < PRINCIPAL_TTL_S, "refused on resubscription, not by the cache TTL"
