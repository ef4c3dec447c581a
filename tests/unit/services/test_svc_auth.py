"""AuthService: API keys (hash only, revocation), Entra ID bearer tokens, Easy Auth, local seeding."""

import base64
import json

import pytest

from shared import errors
from shared.services.auth import AuthService, hash_key
from tests.conftest import make_settings
from tests.entra import entra  # noqa: F401 - fixture


@pytest.fixture
def repos(core):
    return core.repos


def make_auth(repos, tmp_path, **sections):
    settings = make_settings(tmp_path, **sections)
    return AuthService(settings=settings, user_repository=repos.get_user_repository(),
                       api_key_repository=repos.get_api_key_repository())


def new_user(repos, email):
    return repos.get_user_repository().insert_one({"email": email, "name": "T", "roles": ["user"]})


def test_api_key_is_stored_as_hash_and_revocable(repos, tmp_path):
    auth = make_auth(repos, tmp_path)
    user = new_user(repos, "keys@example.com")
    record, key = auth.create_api_key(user["id"], "laptop")
    assert key.startswith("sak_") and len(key) >= 43
    stored = repos.get_api_key_repository().find_by_hash(hash_key(key))
    assert stored["prefix"] == key[:12] and key not in json.dumps(stored, default=str)
    assert auth.authenticate({"x-api-key": key}).id == user["id"]
    assert auth.authenticate({"authorization": f"Bearer {key}"}).id == user["id"]
    auth.revoke_api_key(user["id"], record["id"])
    with pytest.raises(errors.Unauthorized):
        auth.authenticate({"x-api-key": key})  # the local principal cache is cleared on revoke


def test_another_users_key_cannot_be_revoked(repos, tmp_path):
    auth = make_auth(repos, tmp_path)
    alice, bob = new_user(repos, "a-rev@example.com"), new_user(repos, "b-rev@example.com")
    record, _ = auth.create_api_key(alice["id"], "k")
    with pytest.raises(errors.NotFound):
        auth.revoke_api_key(bob["id"], record["id"])


@pytest.mark.parametrize("headers", [{"x-api-key": "nope"}, {"authorization": "Basic Zm9vOmJhcg=="},
                                     {"authorization": "Bearer "}, {"x-api-key": "x" * 300}])
def test_bad_credentials_are_401(repos, tmp_path, headers):
    with pytest.raises(errors.Unauthorized):
        make_auth(repos, tmp_path).authenticate(headers)


def _principal_header(oid: str, email: str) -> str:
    payload = {"auth_typ": "aad", "claims": [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "preferred_username", "val": email}, {"typ": "name", "val": "Easy User"}]}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_easy_auth_only_when_enabled_and_first_seen_principal_gets_a_user(repos, tmp_path):
    header = {"x-ms-client-principal": _principal_header("oid-123", "easy@example.com")}
    disabled = make_auth(repos, tmp_path)
    assert not disabled.has_credentials(header)
    with pytest.raises(errors.Unauthorized):
        disabled.authenticate(header)
    enabled = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True})
    first = enabled.authenticate(header)
    again = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True}).authenticate(header)
    assert first.id == again.id and first.email == "easy@example.com" and first.auth_method == "easyauth"
    assert repos.get_user_repository().find_by_email("easy@example.com")["external_id"] == "easyauth:oid-123"


def test_malformed_easy_auth_header_is_401(repos, tmp_path):
    with pytest.raises(errors.Unauthorized):
        make_auth(repos, tmp_path, auth={"easy_auth_enabled": True}).authenticate({"x-ms-client-principal": "%%%"})


def test_entra_bearer_token_via_verifier(repos, tmp_path):
    settings = make_settings(tmp_path, auth={"entra_tenant_id": "t", "entra_audience": "api://stockagent"})
    seen = []

    def verifier(token):
        seen.append(token)
        if token != "aaa.bbb.ccc":
            raise errors.Unauthorized("Invalid bearer token")
        return {"oid": "entra-oid-1", "preferred_username": "entra@example.com", "name": "Entra User"}

    auth = AuthService(settings=settings, user_repository=repos.get_user_repository(),
                       api_key_repository=repos.get_api_key_repository(), jwt_verifier=verifier)
    principal = auth.authenticate({"authorization": "Bearer aaa.bbb.ccc"})
    assert principal.email == "entra@example.com" and principal.auth_method == "entra"
    with pytest.raises(errors.Unauthorized):
        auth.authenticate({"authorization": "Bearer xxx.yyy.zzz"})


def test_jwt_refused_when_entra_not_configured(repos, tmp_path):
    with pytest.raises(errors.Unauthorized, match="not accepted"):
        make_auth(repos, tmp_path).authenticate({"authorization": "Bearer aaa.bbb.ccc"})


def test_real_entra_verifier_rejects_a_forged_token(repos, tmp_path, entra):
    """The PyJWT path, keys fetched over HTTP: a token claiming a published kid but signed with another key is 401."""
    entra.add_key("forger", publish=False)
    auth = make_auth(repos, tmp_path, auth=entra.auth_settings())
    forged = entra.token(kid="forger", headers={"kid": "test-kid-1"})
    with pytest.raises(errors.Unauthorized):
        auth.authenticate({"authorization": f"Bearer {forged}"})
    good = entra.token(preferred_username="good@example.com")
    assert auth.authenticate({"authorization": f"Bearer {good}"}).email == "good@example.com"


def test_local_admin_seeded_only_in_local(repos, tmp_path):
    local = make_auth(repos, tmp_path)
    assert local.seed_local_admin()["roles"] == ["admin", "user"]
    prod_like = AuthService(settings=make_settings(tmp_path, app={"env": "staging"}, auth={"local_dev_api_key": None}),
                            user_repository=repos.get_user_repository(), api_key_repository=repos.get_api_key_repository())
    assert prod_like.seed_local_admin() is None


def test_external_identity_never_takes_over_an_existing_account(repos, tmp_path):
    """An Easy Auth/Entra principal whose email claim matches an existing user (e.g. the admin) is refused."""
    repos.get_user_repository().insert_one({"email": "owner@example.com", "name": "Owner", "roles": ["admin", "user"]})
    auth = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True})
    with pytest.raises(errors.Unauthorized, match="already exists"):
        auth.authenticate({"x-ms-client-principal": _principal_header("attacker-oid", "OWNER@example.com")})


def test_disabled_external_user_is_refused(repos, tmp_path):
    repos.get_user_repository().insert_one({"email": "gone@example.com", "name": "Gone", "roles": ["user"],
                                            "external_id": "easyauth:gone-oid", "disabled": True})
    auth = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True})
    with pytest.raises(errors.Unauthorized, match="disabled"):
        auth.authenticate({"x-ms-client-principal": _principal_header("gone-oid", "gone@example.com")})


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b'{"claims": {"typ": 1}}', b'{"claims": [1, 2]}'])
def test_easy_auth_header_of_the_wrong_shape_is_401(repos, tmp_path, payload):
    auth = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True})
    with pytest.raises(errors.Unauthorized):
        auth.authenticate({"x-ms-client-principal": base64.b64encode(payload).decode()})
