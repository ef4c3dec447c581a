import orjson

from tests.racing import RacingCollection
from userdata_helpers import create

BASE = "/api/v1/workspaces"


def test_workspace_crud_with_etags(client, alice):
    _, h = alice
    r = client.post(BASE, json={"name": "Research", "description": "AI stocks"}, headers=h)
    assert r.status_code == 201
    ws = r.json()
    assert r.headers["location"] == f"{BASE}/{ws['id']}"
    assert r.headers["etag"] == '"1"'
    r = client.get(f"{BASE}/{ws['id']}", headers=h)
    assert r.status_code == 200 and r.json()["name"] == "Research" and r.headers["etag"] == '"1"'
    r = client.patch(f"{BASE}/{ws['id']}", json={"description": None}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["description"] is None and r.headers["etag"] == '"2"'
    r = client.delete(f"{BASE}/{ws['id']}", headers={**h, "If-Match": '"2"'})
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"{BASE}/{ws['id']}", headers=h).status_code == 404


def test_duplicate_name_is_409(client, alice):
    _, h = alice
    create(client, h, BASE, {"name": "Growth"})
    r = client.post(BASE, json={"name": " growth "}, headers=h)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "Workspace name already exists"


def test_stale_if_match_is_412_and_malformed_if_match_is_400(client, alice):
    _, h = alice
    ws = create(client, h, BASE, {"name": "A"})
    assert client.patch(f"{BASE}/{ws['id']}", json={"name": "B"}, headers=h).status_code == 200  # now version 2
    r = client.patch(f"{BASE}/{ws['id']}", json={"name": "C"}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 412 and r.json()["current_version"] == 2
    r = client.delete(f"{BASE}/{ws['id']}", headers={**h, "If-Match": '"1"'})
    assert r.status_code == 412
    assert client.patch(f"{BASE}/{ws['id']}", json={"name": "C"}, headers={**h, "If-Match": "garbage"}).status_code == 400
    assert client.get(f"{BASE}/{ws['id']}", headers=h).json()["name"] == "B"


def test_unknown_and_malformed_ids_are_404(client, alice):
    _, h = alice
    for wid in ("000000000000000000000000", "not-an-object-id", "zz"):
        assert client.get(f"{BASE}/{wid}", headers=h).status_code == 404
        assert client.patch(f"{BASE}/{wid}", json={"name": "x"}, headers=h).status_code == 404
        assert client.delete(f"{BASE}/{wid}", headers=h).status_code == 404


def test_mass_assignment_fields_are_rejected(client, alice):
    user, h = alice
    for field, value in (("owner_id", "someone-else"), ("role", "admin"), ("id", "x"), ("version", 9)):
        r = client.post(BASE, json={"name": f"M-{field}", field: value}, headers=h)
        assert r.status_code == 422, field
        assert r.json()["errors"][field] == ["Unknown field"]
    ws = create(client, h, BASE, {"name": "Mine"})
    r = client.patch(f"{BASE}/{ws['id']}", json={"owner_id": "x"}, headers=h)
    assert r.status_code == 422


def test_validation_bounds(client, alice):
    _, h = alice
    assert client.post(BASE, json={"name": "x" * 101}, headers=h).status_code == 422
    assert client.post(BASE, json={"name": ""}, headers=h).status_code == 422
    assert client.post(BASE, json={}, headers=h).status_code == 422
    ws = create(client, h, BASE, {"name": "N"})
    assert client.patch(f"{BASE}/{ws['id']}", json={"name": None}, headers=h).status_code == 422


def test_pagination_across_three_pages(client, alice):
    _, h = alice
    created = [create(client, h, BASE, {"name": f"page-{i}"})["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(BASE, params=params, headers=h).json()
        pages += 1
        seen += [w["id"] for w in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert seen == list(reversed(created))  # newest first, no duplicates, nothing missing
    assert client.get(BASE, params={"limit": 101}, headers=h).status_code == 422
    r = client.get(BASE, params={"cursor": "bogus"}, headers=h)
    assert r.status_code == 422 and "cursor" in r.json()["errors"]


def test_stream_ndjson(client, alice, bob):
    _, h = alice
    names = {create(client, h, BASE, {"name": f"s{i}"})["name"] for i in range(3)}
    create(client, bob[1], BASE, {"name": "not yours"})
    r = client.get(BASE, params={"stream": "true"}, headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in r.text.splitlines() if line]
    assert {w["name"] for w in lines} == names


def test_stream_honours_limit_and_cursor(client, alice):
    _, h = alice
    for i in range(5):
        create(client, h, BASE, {"name": f"limited {i}"})

    def streamed(**params):
        r = client.get(BASE, params={"stream": "true", **params}, headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        return [orjson.loads(line)["name"] for line in r.text.splitlines() if line]

    newest_first = [f"limited {i}" for i in range(4, -1, -1)]
    assert streamed(limit=2) == newest_first[:2]
    assert streamed() == newest_first  # no limit given: all of them
    page = client.get(BASE, params={"limit": 1}, headers=h).json()
    assert streamed(limit=3, cursor=page["next_cursor"]) == newest_first[1:4]


def test_requires_credentials(client):
    r = client.get(BASE)
    assert r.status_code == 401
    assert client.get(BASE, headers={"X-API-Key": "sak_wrong"}).status_code == 401


def test_update_without_if_match_retries_a_concurrent_write_instead_of_409(client, alice, core, monkeypatch):
    _, h = alice
    ws = create(client, h, BASE, {"name": "race", "description": "theirs"})
    repo = core.repos.get_workspace_repository()
    # another writer lands between our read and our conditional write
    racing = RacingCollection(repo._collection, on="find_one_and_update", also_set={"description": "theirs too"})
    monkeypatch.setattr(repo, "_collection", racing)
    r = client.patch(f"{BASE}/{ws['id']}", json={"name": "mine"}, headers=h)
    assert racing.raced
    assert r.status_code == 200, r.text
    monkeypatch.undo()
    stored = client.get(f"{BASE}/{ws['id']}", headers=h).json()
    assert stored["version"] == 3 and stored["name"] == "mine"
    assert stored["description"] == "theirs too"  # the other write is kept


def test_parallel_patches_without_if_match_mostly_succeed(client, alice):
    from concurrent.futures import ThreadPoolExecutor

    _, h = alice
    ws = create(client, h, BASE, {"name": "contended"})

    def patch(i: int):
        return client.patch(f"{BASE}/{ws['id']}", json={"description": f"writer {i}"}, headers=h)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(patch, range(20)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    ok = [r.json() for r in responses if r.status_code == 200]
    assert len(ok) >= 18, statuses
    stored = client.get(f"{BASE}/{ws['id']}", headers=h).json()
    assert stored["version"] == 1 + len(ok)  # every success is one version: none overwrote another unseen
    assert sorted(r["version"] for r in ok) == list(range(2, 2 + len(ok)))
