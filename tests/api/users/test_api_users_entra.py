"""Entra ID bearer tokens through HTTP: the admin app role opens the admin routes for that request,
`GET /users/me` shows it, and bad tokens (no `exp`, unknown `kid`) are 401 failed sign-ins."""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest

from tests.conftest import make_settings
from tests.entra import EntraTenant, entra  # noqa: F401 - fixture
from tests.integration.faults.fault_support import serve

_n = itertools.count(1)


@pytest.fixture
def client(tmp_path, entra: EntraTenant) -> Iterator:
    settings = make_settings(tmp_path, auth=entra.auth_settings(),
                             rate_limits={"groups": {"read": "10000/minute", "write": "10000/minute",
                                                     "auth_failures": "5/minute"}})
    with serve(settings) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_with_the_admin_app_role_can_use_admin_routes(client, entra):
    admin = bearer(entra.token(oid="entra-admin-1", roles=["StockAgent.Admin"]))
    assert client.get("/api/v1/users", headers=admin).status_code == 200
    created = client.post("/api/v1/users", json={"email": f"by-entra-{next(_n)}@example.com"}, headers=admin)
    assert created.status_code == 201, created.text
    me = client.get("/api/v1/users/me", headers=admin).json()
    assert me["roles"] == ["admin", "user"]

    # The same person without the role in this token: a plain user, and the stored record never changed.
    plain = bearer(entra.token(oid="entra-admin-1"))
    assert client.get("/api/v1/users", headers=plain).status_code == 403
    assert client.post("/api/v1/users", json={"email": f"x{next(_n)}@example.com"}, headers=plain).status_code == 403
    assert client.get("/api/v1/users/me", headers=plain).json()["roles"] == ["user"]
    stored = client.core.repos.get_user_repository().get(me["id"])
    assert stored["roles"] == ["user"]


def test_token_without_the_role_gets_403_on_admin_routes(client, entra):
    token = bearer(entra.token(oid="entra-user-1", roles=["StockAgent.Reader"]))
    assert client.get("/api/v1/users/me", headers=token).status_code == 200
    assert client.get("/api/v1/users", headers=token).status_code == 403
    assert client.get("/api/v1/admin/metrics", headers=token).status_code == 403


def test_token_without_exp_or_with_unknown_kid_is_401_and_counts_as_a_failed_sign_in(client, entra):
    bad = [entra.token(omit=("exp",)), entra.token(kid="unknown-kid"), entra.token(omit=("nbf",)),
           entra.with_header(entra.token(), {"alg": "RS256", "kid": 12})]
    for token in bad:
        r = client.get("/api/v1/users/me", headers=bearer(token))
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    # auth_failures allows 5 a minute per address: the next failure is refused.
    assert client.get("/api/v1/users/me", headers=bearer(entra.token(kid="unknown-2"))).status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(entra.token(kid="unknown-3"))).status_code == 429


def test_a_first_seen_identity_is_stored_with_a_visible_name_and_a_well_formed_email(client, entra):
    """The name and email of a new Entra ID user come from the token, not from a validated body: they get the
    same rules as names and emails sent to the API (one line of visible text), else a neutral stand-in, so
    nothing shown to admins (the user list, the admin command line's text output) carries control or bidi
    characters."""
    import re

    from shared.data.schema import LINE_TEXT
    from shared.schemas.users import EMAIL_PATTERN

    for name, username in (("Eve\u202e\x1b[2J\nroles=admin", "eve\x1b[31m@contoso.example"),
                           ("\u3164", "eve\u202e@contoso.example"), ("x" * 5000, "not-an-email")):
        oid = f"entra-odd-{next(_n)}"
        me = client.get("/api/v1/users/me", headers=bearer(entra.token(oid=oid, name=name, preferred_username=username)))
        assert me.status_code == 200, me.text
        user = me.json()
        assert re.fullmatch(LINE_TEXT, user["name"]) and len(user["name"]) <= 100, user
        assert re.fullmatch(EMAIL_PATTERN, user["email"]) and "\u202e" not in user["email"], user
    ok = client.get("/api/v1/users/me", headers=bearer(entra.token(oid="entra-plain-name", name="José Núñez",
                                                                    preferred_username="jose@contoso.example")))
    assert (ok.json()["name"], ok.json()["email"]) == ("José Núñez", "jose@contoso.example")
