"""If-Match with RFC 9110 semantics on every route that documents it: strong ETags, lists, `*`,
412 for a well-formed tag that names no current version, 400 only for a malformed field."""

from __future__ import annotations

import pytest

from tests.api.test_pipeline import assert_problem


@pytest.fixture
def workspace(client, make_user):
    _, headers = make_user()
    r = client.post("/api/v1/workspaces", json={"name": "Conditional"}, headers=headers)
    assert r.status_code == 201 and r.headers["etag"] == '"1"'  # a strong entity-tag
    return f"/api/v1/workspaces/{r.json()['id']}", headers


def patch(client, workspace, if_match, name="Renamed"):
    url, headers = workspace
    return client.patch(url, json={"name": name}, headers={**headers, "If-Match": if_match})


@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', '"abc","1"', ' , "1" ,', "*", 'W/"1", "1"'])
def test_a_matching_condition_lets_the_write_through(client, workspace, if_match):
    r = patch(client, workspace, if_match)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'


@pytest.mark.parametrize("if_match", ['W/"1"', '"2"', '"abc"', '"1!"', '"01"', '"7", W/"1"', '""', '"a,b"'])
def test_a_well_formed_tag_naming_no_current_version_is_412(client, workspace, if_match):
    body = assert_problem(patch(client, workspace, if_match), 412, "precondition-failed")
    assert body["current_version"] == 1
    url, headers = workspace
    assert client.get(url, headers=headers).json()["name"] == "Conditional"  # nothing was written


@pytest.mark.parametrize("if_match", ["1", "W/1", '"1', '1"', '"1 "', "abc", '"1" "2"', 'w/"1"', "**", '* , "1"',
                                     "9" * 5000, '"' + "9" * 5000 + '"', "", " , "])
def test_a_malformed_field_is_400(client, workspace, if_match):
    assert_problem(patch(client, workspace, if_match), 400, "bad-request")


def test_a_precondition_on_a_missing_resource_is_404(client, make_user):
    _, headers = make_user()
    for if_match in ("*", '"1"'):
        r = client.delete("/api/v1/workspaces/0123456789abcdef01234567", headers={**headers, "If-Match": if_match})
        assert_problem(r, 404, "not-found")


def test_a_stale_tag_after_a_write_is_412_then_the_new_one_works(client, workspace):
    assert patch(client, workspace, '"1"').status_code == 200
    assert_problem(patch(client, workspace, '"1"', name="Again"), 412)
    url, headers = workspace
    assert client.delete(url, headers={**headers, "If-Match": '"2"'}).status_code == 204


def test_delete_chat_honours_if_match(client, make_user):
    _, headers = make_user()
    cid = client.post("/api/v1/chat", json={"message": "Quote MSFT"}, headers=headers).json()["conversation_id"]
    current = client.get(f"/api/v1/chats/{cid}", headers=headers)
    tag = current.headers["etag"]
    assert tag == f'"{current.json()["version"]}"'
    assert_problem(client.delete(f"/api/v1/chats/{cid}", headers={**headers, "If-Match": '"999"'}), 412)
    assert_problem(client.delete(f"/api/v1/chats/{cid}", headers={**headers, "If-Match": "stale"}), 400)
    assert client.get(f"/api/v1/chats/{cid}", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/chats/{cid}", headers={**headers, "If-Match": tag}).status_code == 204
    assert client.get(f"/api/v1/chats/{cid}", headers=headers).status_code == 404


def test_a_full_conversation_can_still_be_deleted_conditionally(serve):
    from tests.conftest import ADMIN_KEY

    c = serve(chat={"max_conversation_messages": 2})
    h = {"X-API-Key": ADMIN_KEY}
    cid = c.post("/api/v1/chat", json={"message": "Quote MSFT"}, headers=h).json()["conversation_id"]
    assert c.post("/api/v1/chat", json={"message": "more", "conversation_id": cid}, headers=h).status_code == 422  # full
    tag = c.get(f"/api/v1/chats/{cid}", headers=h).headers["etag"]
    assert c.delete(f"/api/v1/chats/{cid}", headers={**h, "If-Match": tag}).status_code == 204


def test_revoke_api_key_honours_if_match(client, make_user):
    _, headers = make_user()
    created = client.post("/api/v1/users/me/api-keys", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    location = created.headers["location"]
    key = client.get(location, headers=headers)  # the Location of a new key can be read
    assert key.status_code == 200 and "secret" not in key.json()
    assert_problem(client.delete(location, headers={**headers, "If-Match": '"2"'}), 412)
    assert_problem(client.delete(location, headers={**headers, "If-Match": "2"}), 400)
    assert client.get("/api/v1/users/me", headers={"X-API-Key": created.json()["secret"]}).status_code == 200
    assert client.delete(location, headers={**headers, "If-Match": key.headers["etag"]}).status_code == 204
    assert client.get(location, headers=headers).status_code == 404
    assert client.get("/api/v1/users/me", headers={"X-API-Key": created.json()["secret"]}).status_code == 401


def test_remove_watchlist_symbol_honours_if_match(client, make_user):
    _, headers = make_user()
    wl = client.post("/api/v1/watchlists", json={"name": "If-Match", "symbols": ["AAPL", "MSFT"]}, headers=headers)
    url = f"/api/v1/watchlists/{wl.json()['id']}"
    assert_problem(client.delete(f"{url}/symbols/AAPL", headers={**headers, "If-Match": '"2"'}), 412)
    assert_problem(client.delete(f"{url}/symbols/AAPL", headers={**headers, "If-Match": "W/2"}), 400)
    # A symbol that is not in the list is 404 whatever the condition says.
    assert_problem(client.delete(f"{url}/symbols/NVDA", headers={**headers, "If-Match": '"2"'}), 404)
    assert client.get(url, headers=headers).json()["symbols"] == ["AAPL", "MSFT"]
    r = client.delete(f"{url}/symbols/AAPL", headers={**headers, "If-Match": wl.headers["etag"]})
    assert r.status_code == 204
    after = client.get(url, headers=headers)
    assert after.json()["symbols"] == ["MSFT"] and after.headers["etag"] == '"2"'


def test_profile_and_preferences_compare_with_their_current_version(client, make_user):
    _, headers = make_user()
    # Never saved: version 0, and "*" matches the current (default) representation.
    assert client.get("/api/v1/users/me/profile", headers=headers).headers["etag"] == '"0"'
    assert client.patch("/api/v1/users/me/profile", json={"bio": "x"}, headers={**headers, "If-Match": "*"}).status_code == 200
    assert_problem(client.put("/api/v1/users/me/preferences", json={}, headers={**headers, "If-Match": '"3"'}), 412)
    assert client.put("/api/v1/users/me/preferences", json={}, headers={**headers, "If-Match": '"0"'}).status_code == 200


def test_every_conditional_route_documents_if_match_and_412(client):
    doc = client.get("/api/v1/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if method in ("put", "patch", "delete") and op.get("security") != []:
                names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
                assert "If-Match" in names and "412" in op["responses"], f"{method.upper()} {path}"
