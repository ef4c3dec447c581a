"""MongoDB faults through HTTP: refused and hung servers answer 503 `database-unavailable` quickly,
health says the database is unhealthy, and a write that fails leaves no document behind."""

from __future__ import annotations

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
            for path in ("/api/health", "/api/v1/workspaces"):
                r, took = timed(client.get, path, headers={"X-API-Key": "local-cold-start-key"})
                assert took < BOUND_S, (path, took)
                assert r.status_code == 503
            assert_problem(r, 503, "database-unavailable")
            assert int(r.headers["retry-after"]) > 0
    finally:
        set_core(previous)
