"""Mass assignment: every create/update body refuses ownership and bookkeeping fields with 422."""

from __future__ import annotations

import pytest

from tests.security.security_support import (
    ALLOWED, FORBIDDEN_FIELDS, body_routes, concrete_path, minimal_body,
)

CASES = [(spec, method) for spec, method in body_routes()]


def test_every_body_route_has_a_minimal_body():
    assert len(CASES) >= 15  # the walk really found the routes
    for spec, _ in CASES:
        minimal_body(spec.body)
        assert spec.body.model_config.get("extra") == "forbid", spec.name


@pytest.mark.parametrize("spec,method", CASES, ids=[f"{m} {s.name}" for s, m in CASES])
def test_forbidden_fields_are_422(client, admin_headers, spec, method):
    base = minimal_body(spec.body)
    path = concrete_path(spec.template)
    for field in FORBIDDEN_FIELDS:
        if (spec.name, field) in ALLOWED:
            continue
        assert field not in spec.body.model_fields, f"{spec.name} accepts {field}"
        r = client.request(method, path, json={**base, field: "attacker-chosen"}, headers=admin_headers)
        assert r.status_code == 422, (spec.name, field, r.status_code, r.text)
        problem = r.json()
        assert problem["type"] == "/problems/validation-error"
        assert problem["errors"].get(field) == ["Unknown field"], problem


def test_owner_cannot_be_reassigned_on_a_real_object(client, make_user, core):
    alice, alice_headers = make_user()
    bob, _ = make_user()
    created = client.post("/api/v1/workspaces", json={"name": "mine"}, headers=alice_headers)
    assert created.status_code == 201, created.text
    wid = created.json()["id"]
    for field in FORBIDDEN_FIELDS:
        r = client.patch(f"/api/v1/workspaces/{wid}", json={field: bob["id"]},
                         headers={**alice_headers, "If-Match": created.headers["etag"]})
        assert r.status_code == 422, (field, r.text)
    after = client.get(f"/api/v1/workspaces/{wid}", headers=alice_headers)
    assert after.status_code == 200 and after.headers["etag"] == created.headers["etag"]
    stored = core.database.db["workspaces"].find_one({"name": "mine", "owner_id": alice["id"]})
    assert stored is not None
    assert core.database.db["workspaces"].count_documents({"owner_id": bob["id"]}) == 0
