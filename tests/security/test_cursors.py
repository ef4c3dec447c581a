"""Pagination cursors cannot be forged, edited or replayed: anything but a cursor this API issued for
this list and this caller is 422 "Invalid pagination cursor", and no cursor value ever reaches a
query as an operator."""

from __future__ import annotations

import base64
import json

import pytest

from tests.api.test_pipeline import assert_problem

# Every list that pages with a cursor and needs no path parameter (positions are walked below).
LISTS = ["/api/v1/workspaces", "/api/v1/watchlists", "/api/v1/portfolios", "/api/v1/notes", "/api/v1/ideas",
         "/api/v1/chats", "/api/v1/users/me/api-keys", "/api/v1/users", "/api/v1/symbols"]


def forged(sort, values) -> str:
    """A cursor in the data layer's format (base64url of canonical Extended JSON), as the issue's attacker built it."""
    raw = json.dumps({"s": sort, "v": values})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


OPERATORS = [{"$where": "sleep(100) || true"}, {"$ne": None}, {"$regex": ".*"}, {"$gt": ""}, {"$gt": {"$date": 0}}]


def assert_invalid_cursor(r):
    body = assert_problem(r, 422, "validation-error")
    assert body["detail"] == "Invalid pagination cursor" and "cursor" in body["errors"]


@pytest.fixture(scope="module")
def populated(client, admin_headers):
    """The admin owns three of everything, so every list has a second page."""
    h = admin_headers
    for i in range(3):
        client.post("/api/v1/workspaces", json={"name": f"cursor ws {i}"}, headers=h)
        client.post("/api/v1/watchlists", json={"name": f"cursor wl {i}"}, headers=h)
        client.post("/api/v1/portfolios", json={"name": f"cursor pf {i}"}, headers=h)
        client.post("/api/v1/notes", json={"body": f"note {i}"}, headers=h)
        client.post("/api/v1/ideas", json={"title": f"idea {i}"}, headers=h)
        client.post("/api/v1/chat", json={"message": f"Quote AAPL {i}"}, headers=h)
        client.post("/api/v1/users/me/api-keys", json={"name": f"k{i}"}, headers=h)
        client.post("/api/v1/users", json={"email": f"cursor{i}-{id(client)}@example.com"}, headers=h)
    return h


@pytest.mark.parametrize("url", LISTS)
def test_an_issued_cursor_pages_and_an_edited_one_is_refused(client, populated, url):
    first = client.get(url, params={"limit": 1}, headers=populated)
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    assert cursor
    second = client.get(url, params={"limit": 1, "cursor": cursor}, headers=populated)
    assert second.status_code == 200 and second.json()["items"] != first.json()["items"]
    flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    for bad in (flipped, cursor[:-3], cursor[5:], "A" + cursor, cursor[:40]):
        assert_invalid_cursor(client.get(url, params={"limit": 1, "cursor": bad}, headers=populated))


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("operator", OPERATORS)
def test_forged_cursors_with_operators_are_422_never_a_filtered_page(client, populated, url, operator):
    for sort, values in ([["created_at", -1], ["_id", -1]], [operator, {"$oid": "0" * 24}]), \
                        ([["updated_at", -1], ["_id", -1]], [operator, operator]), \
                        ([["symbol", 1], ["_id", 1]], [operator, {"$oid": "f" * 24}]):
        assert_invalid_cursor(client.get(url, params={"cursor": forged(sort, values)}, headers=populated))


def test_positions_cursor_is_checked_too(client, populated):
    portfolio = client.post("/api/v1/portfolios", json={"name": "cursor positions"}, headers=populated).json()
    url = f"/api/v1/portfolios/{portfolio['id']}/positions"
    for symbol in ("AAPL", "MSFT"):
        client.post(url, json={"symbol": symbol, "quantity": 1, "cost_basis": 1}, headers=populated)
    cursor = client.get(url, params={"limit": 1}, headers=populated).json()["next_cursor"]
    assert client.get(url, params={"limit": 1, "cursor": cursor}, headers=populated).json()["items"][0]["symbol"] == "MSFT"
    for operator in OPERATORS:
        assert_invalid_cursor(client.get(url, params={"cursor": forged([["symbol", 1], ["_id", 1]],
                                                                         [operator, {"$oid": "0" * 24}])},
                                         headers=populated))


def test_a_cursor_is_bound_to_its_list_and_its_caller(client, populated, make_user):
    cursor = client.get("/api/v1/workspaces", params={"limit": 1}, headers=populated).json()["next_cursor"]
    # Same sort order, another list: refused.
    assert_invalid_cursor(client.get("/api/v1/watchlists", params={"cursor": cursor}, headers=populated))
    # Same list, another caller: refused.
    _, bob = make_user()
    assert_invalid_cursor(client.get("/api/v1/workspaces", params={"cursor": cursor}, headers=bob))


def test_a_cursor_of_one_conversation_or_portfolio_is_refused_on_another(client, populated):
    """Lists under a path parameter are one list per parent: a cursor of chat A's messages (or portfolio A's
    positions) on chat B's is a position in another list, not a page of this one."""
    chats = [client.post("/api/v1/chat", json={"message": f"Quote MSFT {i}"}, headers=populated).json()["conversation_id"]
             for i in range(2)]
    portfolios = [client.post("/api/v1/portfolios", json={"name": f"cursor parent {i}"}, headers=populated).json()["id"]
                  for i in range(2)]
    for p in portfolios:
        for symbol in ("AAPL", "MSFT"):
            client.post(f"/api/v1/portfolios/{p}/positions", json={"symbol": symbol, "quantity": 1, "cost_basis": 1},
                        headers=populated)
    for a, b in ((f"/api/v1/chats/{chats[0]}/messages", f"/api/v1/chats/{chats[1]}/messages"),
                 (f"/api/v1/portfolios/{portfolios[0]}/positions", f"/api/v1/portfolios/{portfolios[1]}/positions")):
        cursor = client.get(a, params={"limit": 1}, headers=populated).json()["next_cursor"]
        assert client.get(a, params={"limit": 1, "cursor": cursor}, headers=populated).status_code == 200
        assert_invalid_cursor(client.get(b, params={"limit": 1, "cursor": cursor}, headers=populated))


def test_local_cursors_survive_a_restart_and_need_the_same_data_directory(tmp_path):
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from starlette.testclient import TestClient
    from tests.conftest import ADMIN_KEY, make_settings

    def first_cursor_then(data_dir, cursor=None):
        core = build_core(make_settings(data_dir))
        core.services.auth.seed_local_admin()
        previous = set_core(core)
        try:
            with TestClient(build_asgi_app()) as c:
                h = {"X-API-Key": ADMIN_KEY}
                if cursor is None:
                    for i in range(2):
                        c.post("/api/v1/notes", json={"body": str(i)}, headers=h)
                    return c.get("/api/v1/notes", params={"limit": 1}, headers=h).json()["next_cursor"]
                return c.get("/api/v1/notes", params={"limit": 1, "cursor": cursor}, headers=h).status_code
        finally:
            set_core(previous)
            core.close()

    cursor = first_cursor_then(tmp_path / "a")
    assert (tmp_path / "a" / "data" / "cursor-signing.key").stat().st_mode & 0o077 == 0  # owner-only
    assert first_cursor_then(tmp_path / "a", cursor) == 200  # a restart keeps the key
    assert first_cursor_then(tmp_path / "b", cursor) == 422  # another installation's key does not open it


def test_a_configured_key_is_used(tmp_path):
    from shared.http.cursors import CursorSeal
    from tests.conftest import make_settings

    one = CursorSeal.from_settings(make_settings(tmp_path, http={"cursor_signing_key": "a" * 32}))
    two = CursorSeal.from_settings(make_settings(tmp_path, http={"cursor_signing_key": "b" * 32}))
    sealed = one.seal("abc", "list_notes:u1")
    assert one.open(sealed, "list_notes:u1") == "abc"
    assert not (tmp_path / "data" / "cursor-signing.key").exists()
    from shared.errors import InvalidCursor

    with pytest.raises(InvalidCursor):
        two.open(sealed, "list_notes:u1")


def test_serving_outside_local_needs_a_key(monkeypatch, caplog):
    """The cold start fails (503, the setting named in the log) without a key, before any client exists."""
    import shared.runtime as runtime
    from shared.config import Settings
    from shared.errors import ServiceUnavailable

    monkeypatch.setattr(runtime, "load_settings", lambda: Settings.model_validate({"app": {"env": "production"}}))
    monkeypatch.setattr(runtime, "build_core", lambda settings: pytest.fail("built a core without a cursor key"))
    previous = runtime.set_core(None)
    try:
        with pytest.raises(ServiceUnavailable):
            runtime.get_core()
    finally:
        runtime.set_core(previous)
    assert "CURSOR_SIGNING_KEY is required when APP_ENV=production" in caplog.text
