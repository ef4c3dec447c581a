"""MongoDB faults through HTTP: refused and hung servers answer 503 `database-unavailable` quickly,
health says the database is unhealthy, and a write that fails leaves no document behind; once the
database breaker is open requests fail fast without reaching pymongo, and a probe closes it again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from tests.integration.faults.fault_support import (
    ADMIN, HungServer, assert_problem, closed_port, make_settings, serve, timed,
)

pytestmark = pytest.mark.integration

BOUND_S = 2.5


def mongo_settings(tmp_path, port: int, timeout_ms: int = 500, env: str = "production"):
    # Outside local/test the core build does no start-up database work (migrations run on a timer),
    # so the worker comes up while the database is down, as it would in Azure.
    return make_settings(tmp_path, app={"env": env}, mongodb={
        "uri": f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS={timeout_ms}&directConnection=true",
        "server_selection_timeout_ms": timeout_ms, "timeout_ms": timeout_ms,
    })


def _assert_database_down(client) -> None:
    for method, path, body in (("GET", "/api/v1/workspaces", None),
                               ("POST", "/api/v1/workspaces", {"name": "never stored"}),
                               ("GET", "/api/v1/users/me", None)):
        r, took = timed(client.request, method, path, json=body, headers=ADMIN)
        assert took < BOUND_S, (path, took)
        assert_problem(r, 503, "database-unavailable")
        assert int(r.headers["retry-after"]) > 0
    health, took = timed(client.get, "/api/health")
    assert took < BOUND_S, took
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "unhealthy"
    assert body["components"]["database"]["required"] is True
    # An operator (or a probe) that sends its key still gets the report: who it is cannot be checked
    # while the database is down, so the answer is the public report, not a 503 problem from sign-in.
    keyed = client.get("/api/health", headers=ADMIN)
    assert keyed.status_code == 503 and keyed.json()["components"]["database"]["status"] == "unhealthy", keyed.text
    # Data that does not need the database still works? Market data needs auth, which needs the
    # database: it answers the same 503, not a 500.
    r = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
    assert_problem(r, 503, "database-unavailable")


def test_closed_mongodb_port_answers_503_quickly(tmp_path):
    with serve(mongo_settings(tmp_path, closed_port()), seed=False) as client:
        _assert_database_down(client)


def test_hung_mongodb_server_answers_503_within_bound(tmp_path):
    with HungServer() as hung:
        with serve(mongo_settings(tmp_path, hung.port), seed=False) as client:
            _assert_database_down(client)


def test_database_down_during_create_leaves_no_document(tmp_path):
    """The store goes away between requests: the POST fails 503, and after recovery nothing half-written exists."""
    from shared.data.embedded import EmbeddedMongoServer

    port = closed_port()
    data_dir = tmp_path / "store"
    server = EmbeddedMongoServer(data_dir, port=port)
    server.start()
    try:
        with serve(mongo_settings(tmp_path, port, timeout_ms=800, env="test")) as client:
            created = client.post("/api/v1/workspaces", json={"name": "kept"}, headers=ADMIN)
            assert created.status_code == 201, created.text
            server.close()
            r, took = timed(client.post, "/api/v1/workspaces", json={"name": "lost-in-outage"}, headers=ADMIN)
            assert took < BOUND_S
            assert_problem(r, 503, "database-unavailable")
            server = EmbeddedMongoServer(data_dir, port=port)
            server.start()
            names = sorted(d["name"] for d in client.core.database.db["workspaces"].find({}, {"name": 1}))
            assert names == ["kept"]
            listed = client.get("/api/v1/workspaces", headers=ADMIN)
            assert listed.status_code == 200
            assert [w["name"] for w in listed.json()["items"]] == ["kept"]
    finally:
        server.close()


def test_rejected_create_writes_nothing(client, admin_headers, core):
    """Validation rejections (unknown field, too long, wrong type) happen before any write."""
    collection = core.database.db["workspaces"]
    before = collection.count_documents({})
    for body in ({"name": "x", "owner_id": "someone"}, {"name": "x" * 10_000}, {"name": 5}, {}):
        r = client.post("/api/v1/workspaces", json=body, headers=admin_headers)
        assert_problem(r, 422, "validation-error")
    assert collection.count_documents({}) == before


def test_local_cold_start_with_database_down_answers_503_not_500(tmp_path, monkeypatch):
    """APP_ENV=local runs migrations while building the core: with MONGODB_URI down the core is still built
    (start-up work is skipped with a warning), health reports the database unhealthy and data routes answer
    503 problems within the bound."""
    from starlette.testclient import TestClient

    from devhost.app import build_asgi_app
    from shared.runtime import set_core

    for name in ("REDIS_HOST", "REDIS_URL", "USE_AZURE_KEYVAULT", "MONGODB_PASSWORD", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "local")
    monkeypatch.setenv("MONGODB_URI", f"mongodb://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("LOCAL_DEV_API_KEY", "local-cold-start-key")
    previous = set_core(None)
    try:
        with TestClient(build_asgi_app()) as client:
            # The first request builds the core, which pays one failed migration attempt (1.5 s timeout).
            r, took = timed(client.get, "/api/health")
            assert took < 2 * BOUND_S, took
            assert r.status_code == 503 and r.json()["components"]["database"]["status"] == "unhealthy"
            # With a key, health pays two bounded database waits (the sign-in lookup, then the report's
            # ping) and still answers the report; a data route answers the problem after one.
            r, took = timed(client.get, "/api/health", headers={"X-API-Key": "local-cold-start-key"})
            assert took < 2 * BOUND_S, took
            assert r.status_code == 503 and r.json()["components"]["database"]["status"] == "unhealthy"
            r, took = timed(client.get, "/api/v1/workspaces", headers={"X-API-Key": "local-cold-start-key"})
            assert took < BOUND_S, took
            assert_problem(r, 503, "database-unavailable")
            assert int(r.headers["retry-after"]) > 0
    finally:
        set_core(previous)


class CountingDatabase:
    """A pymongo Database that counts every operation handed to it: collection method calls and
    commands. What the repositories do is all that reaches pymongo, so an unchanged count means no
    request reached the driver."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._lock = threading.Lock()
        self.calls = 0

    def count(self) -> None:
        with self._lock:
            self.calls += 1

    def __getitem__(self, name: str) -> "_CountingCollection":
        return _CountingCollection(self._db[name], self)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        self.count()
        return self._db.command(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class _CountingCollection:
    def __init__(self, collection: Any, owner: CountingDatabase) -> None:
        self._collection = collection
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._owner.count()
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def counted_database(request):
    """(settings, handle whose .db counts calls) for a database on a closed port."""
    from shared.data.client import build_database

    tmp_path = request.getfixturevalue("tmp_path")
    port = closed_port()
    settings = mongo_settings(tmp_path, port, timeout_ms=300)
    handle = build_database(settings)
    counting = CountingDatabase(handle.db)
    yield settings, replace(handle, db=counting), port
    handle.close()


def _open_breaker(client) -> None:
    threshold = client.core.settings.mongodb.breaker_failure_threshold
    for _ in range(threshold):
        assert_problem(client.get("/api/v1/workspaces", headers=ADMIN), 503, "database-unavailable")
    assert client.core.repos.breaker.state == "open"


def test_open_breaker_answers_50_concurrent_requests_503_without_reaching_pymongo(counted_database):
    settings, handle, _ = counted_database
    with serve(settings, seed=False, database=handle) as client:
        _open_breaker(client)
        calls_before = handle.db.calls
        requests = [("GET", "/api/v1/workspaces", None), ("POST", "/api/v1/workspaces", {"name": "never"}),
                    ("GET", "/api/v1/users/me", None), ("GET", "/api/v1/chats", None)] * 13
        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(lambda r: client.request(r[0], r[1], json=r[2], headers=ADMIN), requests[:50]))
        for r in responses:
            assert_problem(r, 503, "database-unavailable")
            assert 1 <= int(r.headers["retry-after"]) <= settings.mongodb.breaker_cooldown_s
        assert handle.db.calls == calls_before  # refused by the breaker: nothing reached the driver
        health = client.get("/api/health")
        assert health.status_code == 503
        database = health.json()["components"]["database"]
        assert database["status"] == "unhealthy" and database["details"]["breaker"] == "open"
        assert handle.db.calls == calls_before  # health reports the open breaker without a ping


class ManualClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_half_open_probe_closes_the_breaker_once_the_database_is_back(counted_database, tmp_path):
    """The database comes up on the port while the breaker is open: requests keep failing fast until the
    cool-down ends, then one probe goes through and, once it succeeds, everything is served again."""
    from shared.data.embedded import EmbeddedMongoServer

    settings, handle, port = counted_database
    settings = settings.model_copy(update={"mongodb": settings.mongodb.model_copy(
        update={"timeout_ms": 800, "server_selection_timeout_ms": 800})})
    clock = ManualClock()
    with serve(settings, seed=False, database=handle, clock=clock) as client:
        _open_breaker(client)
        server = EmbeddedMongoServer(tmp_path / "store", port=port)
        server.start()
        try:
            calls_before = handle.db.calls
            r = client.get("/api/v1/workspaces", headers=ADMIN)
            assert_problem(r, 503, "database-unavailable")
            assert int(r.headers["retry-after"]) == settings.mongodb.breaker_cooldown_s
            assert handle.db.calls == calls_before  # still open: not even a probe
            clock.now += settings.mongodb.breaker_cooldown_s
            assert client.core.repos.breaker.state == "half_open"
            states = []
            for _ in range(50):  # the driver may need a moment to see the server: a failed probe re-opens
                client.core.last_health = None  # no reuse of the previous report
                health = client.get("/api/health")
                states.append(health.json()["components"]["database"]["details"]["breaker"])
                if health.status_code == 200:
                    break
                clock.now += settings.mongodb.breaker_cooldown_s
            assert states[-1] == "closed", states
            assert client.core.repos.breaker.state == "closed"
            # Served again (the store is new: it needs a user and a key first).
            user = client.core.repos.get_user_repository().insert_one({"email": "back@example.com", "roles": ["user"]})
            _, key = client.core.services.auth.create_api_key(user["id"], "after the outage")
            assert client.get("/api/v1/workspaces", headers={"X-API-Key": key}).status_code == 200
        finally:
            server.close()
