"""X-Request-ID: a safe value is echoed; anything else is replaced by a generated id, never reflected."""

from __future__ import annotations

import re

import pytest

GENERATED = re.compile(r"^[0-9a-f]{32}$")


def test_safe_request_id_is_echoed(client):
    rid = "req-" + "a" * 124  # 128 printable characters
    r = client.get("/api/health", headers={"X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid


@pytest.mark.parametrize("injected", [
    b"abc def",
    b"a" * 129,
    "caf\u00e9-\u2603".encode(),
    b"x\tSet-Cookie: evil=1",
    b"",
    b"%0d%0aSet-Cookie:%20evil=1 x",
])
def test_unsafe_request_id_is_replaced(client, admin_headers, injected):
    for method, path in (("GET", "/api/health"), ("GET", "/api/v1/workspaces"), ("POST", "/api/v1/workspaces")):
        r = client.request(method, path, headers={**admin_headers, "X-Request-ID": injected},
                           json={"name": "x", "owner_id": "y"} if method == "POST" else None)
        echoed = r.headers["x-request-id"]
        assert GENERATED.fullmatch(echoed), echoed
        assert "evil" not in r.headers.get("set-cookie", "")
        if injected:
            assert injected.decode("utf-8", "replace") not in r.text
        if r.headers["content-type"].startswith("application/problem+json"):
            assert r.json()["request_id"] == echoed
