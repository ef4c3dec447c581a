import itertools

_n = itertools.count(1)


def _email() -> str:
    return f"created{next(_n)}-{id(_n)}@example.com"


def test_admin_creates_user_whose_key_works(client, admin_headers):
    email = _email()
    r = client.post("/api/v1/users", json={"email": email, "name": "New"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["email"] == email and body["user"]["roles"] == ["user"]
    assert r.headers["location"] == f"/api/v1/users/{body['user']['id']}"
    secret = body["api_key"]["secret"]
    me = client.get("/api/v1/users/me", headers={"X-API-Key": secret})
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]
    assert client.get(f"/api/v1/users/{body['user']['id']}", headers=admin_headers).json()["email"] == email
    # The secret is never shown again.
    keys = client.get("/api/v1/users/me/api-keys", headers={"X-API-Key": secret}).json()["items"]
    assert [k["id"] for k in keys] == [body["api_key"]["id"]] and "secret" not in keys[0]


def test_duplicate_email_and_bad_bodies(client, admin_headers):
    email = _email()
    assert client.post("/api/v1/users", json={"email": email}, headers=admin_headers).status_code == 201
    assert client.post("/api/v1/users", json={"email": email.upper()}, headers=admin_headers).status_code == 409
    assert client.post("/api/v1/users", json={"email": "not-an-email"}, headers=admin_headers).status_code == 422
    assert client.post("/api/v1/users", json={"email": _email(), "role": "admin"}, headers=admin_headers).status_code == 422
    assert client.post("/api/v1/users", json={"email": _email(), "roles": ["root"]}, headers=admin_headers).status_code == 422


def test_admin_lists_users_paginated(client, admin_headers):
    for _ in range(3):
        client.post("/api/v1/users", json={"email": _email()}, headers=admin_headers)
    first = client.get("/api/v1/users", params={"limit": 2}, headers=admin_headers).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = client.get("/api/v1/users", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin_headers).json()
    assert not {u["id"] for u in first["items"]} & {u["id"] for u in second["items"]}


def test_users_get_403_on_admin_routes(client, user):
    _, h = user
    assert client.get("/api/v1/users", headers=h).status_code == 403
    assert client.post("/api/v1/users", json={"email": _email()}, headers=h).status_code == 403
    assert client.get(f"/api/v1/users/{user[0]['id']}", headers=h).status_code == 403
    assert client.get("/api/v1/users").status_code == 401


def test_openapi_documents_user_data_routes(client):
    doc = client.get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/v1/users/me", "/api/v1/workspaces/{workspace_id}", "/api/v1/portfolios/{portfolio_id}/valuation",
                 "/api/v1/watchlists/{watchlist_id}/symbols/{symbol}", "/api/v1/ideas", "/api/v1/symbols/{symbol}"):
        assert path in paths, path
    patch = paths["/api/v1/workspaces/{workspace_id}"]["patch"]
    assert {"404", "409", "412", "422"} <= set(patch["responses"])
    assert "application/x-ndjson" in paths["/api/v1/workspaces"]["get"]["responses"]["200"]["content"]
