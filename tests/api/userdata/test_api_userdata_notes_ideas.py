from userdata_helpers import create


def test_notes_crud_and_filters(client, alice):
    _, h = alice
    n1 = create(client, h, "/api/v1/notes", {"title": "AAPL thesis", "body": "# Apple\n\n*services*", "tags": ["tech", "ai"],
                                              "symbol": "aapl"})
    create(client, h, "/api/v1/notes", {"body": "rates", "tags": ["macro"]})
    assert n1["symbol"] == "AAPL"
    by_tag = client.get("/api/v1/notes", params={"tag": "ai"}, headers=h).json()["items"]
    assert [n["id"] for n in by_tag] == [n1["id"]]
    by_symbol = client.get("/api/v1/notes", params={"symbol": "aapl"}, headers=h).json()["items"]
    assert [n["id"] for n in by_symbol] == [n1["id"]]
    r = client.patch(f"/api/v1/notes/{n1['id']}", json={"body": "updated"}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["body"] == "updated" and r.headers["etag"] == '"2"'
    assert client.delete(f"/api/v1/notes/{n1['id']}", headers={**h, "If-Match": '"1"'}).status_code == 412
    assert client.delete(f"/api/v1/notes/{n1['id']}", headers=h).status_code == 204


def test_note_bounds(client, alice):
    _, h = alice
    assert client.post("/api/v1/notes", json={"body": "x" * 20001}, headers=h).status_code == 422
    assert client.post("/api/v1/notes", json={"body": "x", "tags": [f"t{i}" for i in range(21)]}, headers=h).status_code == 422
    assert client.post("/api/v1/notes", json={"body": "x", "tags": ["t" * 41]}, headers=h).status_code == 422
    assert client.post("/api/v1/notes", json={"body": "x", "owner_id": "x"}, headers=h).status_code == 422


def test_ideas_crud(client, alice):
    _, h = alice
    r = client.post("/api/v1/ideas", json={"title": "Long NVDA", "symbol": "nvda", "thesis": "datacenter",
                                            "target_price": 250}, headers=h)
    assert r.status_code == 201 and r.headers["location"] == f"/api/v1/ideas/{r.json()['id']}"
    idea = r.json()
    assert idea["status"] == "draft"
    assert client.get("/api/v1/ideas", params={"status": "draft"}, headers=h).json()["items"][0]["id"] == idea["id"]
    assert client.get("/api/v1/ideas", params={"status": "bogus"}, headers=h).status_code == 422
    r = client.patch(f"/api/v1/ideas/{idea['id']}", json={"status": "active"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert client.patch(f"/api/v1/ideas/{idea['id']}", json={"status": "nope"}, headers=h).status_code == 422
    assert client.get(f"/api/v1/ideas/{idea['id']}", headers=h).headers["etag"] == '"2"'
    assert client.delete(f"/api/v1/ideas/{idea['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/ideas/{idea['id']}", headers=h).status_code == 404
