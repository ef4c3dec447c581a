"""Oversized bodies (413), oversized strings and arrays (422), deep JSON (400): rejected before any handler runs."""

from __future__ import annotations

import json

import pytest

LIMIT = 1_048_576


def _problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status
    return body


def test_body_over_one_mib_is_413(client, admin_headers, core):
    before = core.database.db["notes"].count_documents({})
    payload = json.dumps({"body": "x" * (LIMIT + 10)}).encode()
    r = client.post("/api/v1/notes", content=payload, headers={**admin_headers, "Content-Type": "application/json"})
    _problem(r, 413, "payload-too-large")
    assert core.database.db["notes"].count_documents({}) == before


def test_streamed_body_without_content_length_is_413(client, admin_headers):
    def chunks():
        yield b'{"body": "'
        for _ in range(20):
            yield b"y" * 65_536
        yield b'"}'

    r = client.post("/api/v1/notes", content=chunks(), headers={**admin_headers, "Content-Type": "application/json"})
    _problem(r, 413, "payload-too-large")


def test_lying_content_length_is_refused(client, admin_headers):
    r = client.post("/api/v1/notes", content=b'{"body": "x"}',
                    headers={**admin_headers, "Content-Type": "application/json", "Content-Length": "99999999"})
    assert r.status_code in (400, 413), r.text  # never read as a huge body, never a 500


@pytest.mark.parametrize("path,body,field", [
    ("/api/v1/workspaces", {"name": "w" * 101}, "name"),
    ("/api/v1/notes", {"body": "n" * 20_001}, "body"),
    ("/api/v1/chat", {"message": "m" * 5_001}, "message"),
    ("/api/v1/workspaces", {"name": "ok", "description": "d" * 100_001}, "description"),
])
def test_strings_over_model_limits_are_422(client, admin_headers, path, body, field):
    problem = _problem(client.post(path, json=body, headers=admin_headers), 422, "validation-error")
    assert field in problem["errors"], problem


def test_huge_array_is_422(client, admin_headers, core):
    before = core.database.db["watchlists"].count_documents({})
    r = client.post("/api/v1/watchlists", json={"name": "big", "symbols": ["AAPL"] * 50_000}, headers=admin_headers)
    problem = _problem(r, 422, "validation-error")
    assert "symbols" in problem["errors"], problem
    assert core.database.db["watchlists"].count_documents({}) == before


def test_many_tags_is_422(client, admin_headers):
    r = client.post("/api/v1/notes", json={"body": "b", "tags": [f"t{i}" for i in range(5000)]}, headers=admin_headers)
    _problem(r, 422, "validation-error")


@pytest.mark.parametrize("depth", [40, 5000])
def test_deep_json_is_400(client, admin_headers, depth):
    raw = '{"body": "x", "title": ' + "[" * depth + "]" * depth + "}"
    r = client.post("/api/v1/notes", content=raw.encode(), headers={**admin_headers, "Content-Type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["type"] in ("/problems/malformed-json", "/problems/bad-request")


@pytest.mark.parametrize("raw,ctype,status", [
    (b"{not json", "application/json", 400),
    (b'{"body": "x"}', "text/plain", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    (b"[1, 2, 3]", "application/json", 422),
    (b'"just a string"', "application/json", 422),
    (b'{"body": "x", "body": "y"}', "application/json", None),
])
def test_odd_bodies_never_500(client, admin_headers, raw, ctype, status):
    r = client.post("/api/v1/notes", content=raw, headers={**admin_headers, "Content-Type": ctype})
    assert r.status_code < 500, r.text
    if status is not None:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
