"""BOLA walk: every route of the user-data domains with an object id in its template, called with
another user's credentials on the first user's objects, answers 404 (403 on admin routes) and
changes nothing."""

import re

from userdata_helpers import create

OWNED_MODULES = {"functions.users", "functions.workspaces", "functions.watchlists", "functions.portfolios",
                 "functions.notes", "functions.ideas", "functions.symbols"}

BODIES = {
    ("v1/workspaces/{workspace_id}", "PATCH"): {"name": "hijacked"},
    ("v1/watchlists/{watchlist_id}", "PATCH"): {"name": "hijacked"},
    ("v1/watchlists/{watchlist_id}/symbols", "POST"): {"symbol": "NVDA"},
    ("v1/portfolios/{portfolio_id}", "PATCH"): {"name": "hijacked"},
    ("v1/portfolios/{portfolio_id}/positions", "POST"): {"symbol": "AAPL", "quantity": 1, "cost_basis": 1},
    ("v1/portfolios/{portfolio_id}/positions/{position_id}", "PATCH"): {"quantity": 99},
    ("v1/notes/{note_id}", "PATCH"): {"body": "hijacked"},
    ("v1/ideas/{idea_id}", "PATCH"): {"title": "hijacked"},
}


def _object_routes():
    import function_app  # noqa: F401  (registers every route)
    from shared.http import registry

    return [spec for spec in registry.routes
            if spec.handler.__module__ in OWNED_MODULES and re.search(r"\{\w+_id\}", spec.template)]


def test_other_users_objects_are_404_on_every_route(client, alice, bob, core):
    _, ha = alice
    _, hb = bob
    ws = create(client, ha, "/api/v1/workspaces", {"name": "private"})
    wl = create(client, ha, "/api/v1/watchlists", {"name": "private", "symbols": ["AAPL"]})
    pf = create(client, ha, "/api/v1/portfolios", {"name": "private"})
    pos = create(client, ha, f"/api/v1/portfolios/{pf['id']}/positions", {"symbol": "AAPL", "quantity": 1, "cost_basis": 1})
    note = create(client, ha, "/api/v1/notes", {"body": "private"})
    idea = create(client, ha, "/api/v1/ideas", {"title": "private"})
    key = create(client, ha, "/api/v1/users/me/api-keys", {"name": "private"})
    ids = {"workspace_id": ws["id"], "watchlist_id": wl["id"], "portfolio_id": pf["id"], "position_id": pos["id"],
           "note_id": note["id"], "idea_id": idea["id"], "key_id": key["id"], "user_id": alice[0]["id"], "symbol": "AAPL"}

    routes = _object_routes()
    assert len(routes) >= 15  # the walk really covers the domains
    called = []
    for spec in routes:
        path = "/api/" + re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], spec.template)
        for method in spec.methods:
            body = BODIES.get((spec.template, method))
            if method in ("POST", "PUT", "PATCH"):
                assert body is not None, f"no BOLA body for {method} {spec.template}"
            r = client.request(method, path, json=body, headers=hb)
            expected = 403 if spec.auth == "admin" else 404
            assert r.status_code == expected, f"{method} {spec.template}: {r.status_code} {r.text}"
            called.append((method, spec.template))
    assert ("DELETE", "v1/users/me/api-keys/{key_id}") in called

    # Nothing of Alice's changed.
    assert client.get(f"/api/v1/workspaces/{ws['id']}", headers=ha).json()["version"] == 1
    assert client.get(f"/api/v1/watchlists/{wl['id']}", headers=ha).json()["symbols"] == ["AAPL"]
    assert client.get(f"/api/v1/portfolios/{pf['id']}/positions/{pos['id']}", headers=ha).json()["quantity"] == 1
    assert client.get(f"/api/v1/notes/{note['id']}", headers=ha).json()["body"] == "private"
    assert client.get(f"/api/v1/ideas/{idea['id']}", headers=ha).json()["title"] == "private"
    assert client.get("/api/v1/users/me", headers={"X-API-Key": key["secret"]}).status_code == 200
    # Bob's own listings do not show Alice's objects.
    for path in ("/api/v1/workspaces", "/api/v1/watchlists", "/api/v1/portfolios", "/api/v1/notes", "/api/v1/ideas",
                 "/api/v1/users/me/api-keys"):
        items = client.get(path, headers=hb).json()["items"]
        assert not {item["id"] for item in items} & set(ids.values()), path
