from userdata_helpers import create

BASE = "/api/v1/watchlists"


def test_watchlist_crud_and_symbols(client, alice):
    _, h = alice
    ws = create(client, h, "/api/v1/workspaces", {"name": "for-watchlists"})
    wl = create(client, h, BASE, {"name": "Tech", "symbols": ["aapl", "MSFT"], "workspace_id": ws["id"]})
    assert wl["symbols"] == ["AAPL", "MSFT"] and wl["workspace_id"] == ws["id"]
    r = client.post(f"{BASE}/{wl['id']}/symbols", json={"symbol": "nvda"}, headers=h)
    assert r.status_code == 201 and r.json()["symbols"] == ["AAPL", "MSFT", "NVDA"]
    assert r.headers["location"] == f"{BASE}/{wl['id']}"  # the watchlist that changed (GET-able)
    r = client.delete(f"{BASE}/{wl['id']}/symbols/msft", headers=h)
    assert r.status_code == 204
    r = client.get(f"{BASE}/{wl['id']}", headers=h)
    assert r.json()["symbols"] == ["AAPL", "NVDA"] and r.headers["etag"].startswith('"')
    assert client.delete(f"{BASE}/{wl['id']}/symbols/MSFT", headers=h).status_code == 404
    r = client.patch(f"{BASE}/{wl['id']}", json={"symbols": ["GOOGL"]}, headers={**h, "If-Match": r.headers["etag"]})
    assert r.status_code == 200 and r.json()["symbols"] == ["GOOGL"]
    page = client.get(BASE, headers=h).json()
    assert [w["id"] for w in page["items"]] == [wl["id"]]
    assert client.delete(f"{BASE}/{wl['id']}", headers=h).status_code == 204


def test_unknown_or_malformed_symbols_are_422(client, alice):
    _, h = alice
    r = client.post(BASE, json={"name": "Bad", "symbols": ["AAPL", "QQQQQQQ"]}, headers=h)
    assert r.status_code == 422 and "QQQQQQQ" in r.json()["detail"]
    wl = create(client, h, BASE, {"name": "Good"})
    assert client.post(f"{BASE}/{wl['id']}/symbols", json={"symbol": "QQQQQQQ"}, headers=h).status_code == 422
    assert client.post(f"{BASE}/{wl['id']}/symbols", json={"symbol": "no spaces"}, headers=h).status_code == 422
    assert client.post(BASE, json={"name": "Big", "symbols": ["AAPL"] * 201}, headers=h).status_code == 422
    assert client.post(BASE, json={"name": "Foreign ws", "workspace_id": "000000000000000000000000"},
                       headers=h).status_code == 422


def test_watchlist_duplicate_name_and_412(client, alice):
    _, h = alice
    wl = create(client, h, BASE, {"name": "Dup"})
    assert client.post(BASE, json={"name": "DUP"}, headers=h).status_code == 409
    client.post(f"{BASE}/{wl['id']}/symbols", json={"symbol": "AAPL"}, headers=h)  # version 2
    r = client.patch(f"{BASE}/{wl['id']}", json={"name": "New"}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 412


def test_symbol_lookup_and_search(client, alice):
    _, h = alice
    r = client.get("/api/v1/symbols/aapl", headers=h)
    assert r.status_code == 200 and r.json()["symbol"] == "AAPL" and r.json()["source"] == "catalogue"
    r = client.get("/api/v1/symbols/A B", headers=h)
    assert r.status_code == 422
    assert client.get("/api/v1/symbols/" + "X" * 16, headers=h).status_code == 422
    r = client.get("/api/v1/symbols", params={"q": "micro"}, headers=h)
    assert r.status_code == 200 and "MSFT" in [s["symbol"] for s in r.json()["items"]]
    r = client.get("/api/v1/symbols", params={"limit": 2}, headers=h)
    body = r.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    assert client.get("/api/v1/symbols", params={"q": "x" * 65}, headers=h).status_code == 422


def test_unknown_symbol_is_404_problem(client, alice, use_market):
    from userdata_helpers import FakeMarket

    _, h = alice
    use_market(FakeMarket({}))  # the market search does not know it either
    r = client.get("/api/v1/symbols/ZZZZQ", headers=h)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["symbol"] == "ZZZZQ"
