"""Identity: Entra ID token checks (claims, kid, key refetch), roles from identity providers, the
ADMIN_EMAILS bootstrap, and revocation across instances (the in-process part; Redis is in
tests/integration/cache/test_revocation_across_instances.py)."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Callable

import pytest

from shared import errors
from shared.services.auth import PRINCIPAL_TTL_S, AuthService
from shared.services.entra_tokens import EntraTokenVerifier
from tests.conftest import make_settings
from tests.entra import AUDIENCE, EntraTenant, entra  # noqa: F401 - fixture


@pytest.fixture
def repos(core):
    return core.repos


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_auth(repos, tmp_path, *, clock: Callable[[], float] = time.monotonic, cache: Any = None,
              jwt_verifier: Any = None, **sections: Any) -> AuthService:
    return AuthService(settings=make_settings(tmp_path, **sections), user_repository=repos.get_user_repository(),
                       api_key_repository=repos.get_api_key_repository(), clock=clock, cache=cache,
                       jwt_verifier=jwt_verifier)


def verifier(entra: EntraTenant, clock: Callable[[], float] = time.monotonic, **kw: Any) -> EntraTokenVerifier:
    return EntraTokenVerifier(jwks_url=entra.jwks_url, issuer=entra.issuer, audience=AUDIENCE, clock=clock, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ token claims


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_token_without_a_time_claim_is_401(entra, claim):
    check = verifier(entra)
    assert check(entra.token())["aud"] == AUDIENCE
    with pytest.raises(errors.Unauthorized):
        check(entra.token(omit=(claim,)))


@pytest.mark.parametrize(("claims", "ok"), [
    ({"exp": -30}, True), ({"exp": -120}, False),      # expired within / beyond the 60 s leeway
    ({"nbf": 30}, True), ({"nbf": 120}, False),        # not yet valid
    ({"iat": 30}, True), ({"iat": 120}, False),        # issued in the future
])
def test_time_claims_have_a_small_leeway(entra, claims, ok):
    now = int(time.time())
    token = entra.token(**{name: now + offset for name, offset in claims.items()})
    check = verifier(entra, clock_skew_s=60)
    if ok:
        assert check(token)
    else:
        with pytest.raises(errors.Unauthorized):
            check(token)


@pytest.mark.parametrize("claims", [{"aud": "api://someone-else"}, {"iss": "https://login.microsoftonline.com/other/v2.0"}])
def test_wrong_audience_or_issuer_is_401(entra, claims):
    with pytest.raises(errors.Unauthorized):
        verifier(entra)(entra.token(**claims))


@pytest.mark.parametrize("header", [{"kid": 7}, {"kid": ""}, {"kid": "x" * 500}, {"kid": "a b"}, {"kid": None}])
def test_malformed_kid_is_401_without_fetching_keys(entra, header):
    check = verifier(entra)
    before = entra.fetches
    with pytest.raises(errors.Unauthorized):
        check(entra.with_header(entra.token(), {"alg": "RS256", "typ": "JWT", **header}))
    assert entra.fetches == before


def test_not_a_jwt_is_401(entra):
    with pytest.raises(errors.Unauthorized):
        verifier(entra)("aaa.bbb.ccc")


def test_unknown_kid_is_401_and_refetches_keys_at_most_once_per_interval(entra):
    clock = Clock()
    check = verifier(entra, clock, refetch_interval_s=60)
    check(entra.token())
    assert check.fetches == 1
    for n in range(20):  # a flood of made-up kids
        with pytest.raises(errors.Unauthorized):
            check(entra.token(kid=f"made-up-{n}"))
    assert check.fetches == 1, "no refetch within the interval after the first fetch"
    clock.now += 61
    for n in range(20):
        with pytest.raises(errors.Unauthorized):
            check(entra.token(kid=f"made-up-again-{n}"))
    assert check.fetches == 2, "one refetch for the whole flood"
    check(entra.token())  # known kid: no fetch
    assert check.fetches == 2


def test_a_rotated_key_is_picked_up_on_its_first_token_after_the_interval(entra):
    clock = Clock()
    check = verifier(entra, clock, refetch_interval_s=60)
    check(entra.token())
    entra.add_key("rotated-kid")
    try:
        clock.now += 61
        assert check(entra.token(kid="rotated-kid"))["aud"] == AUDIENCE
    finally:
        entra.published.remove("rotated-kid")


def test_keys_unreachable_is_503_only_before_the_first_fetch(entra):
    clock = Clock()

    def down(url: str) -> Any:
        raise OSError("connection refused")

    check = EntraTokenVerifier(jwks_url="http://127.0.0.1:9/keys", issuer=entra.issuer, audience=AUDIENCE, fetch=down,
                               clock=clock)
    with pytest.raises(errors.ServiceUnavailable):
        check(entra.token())
    with pytest.raises(errors.ServiceUnavailable):
        check(entra.token())
    assert check.fetches == 1, "a failed fetch is not retried on every request"

    # Keys fetched once keep serving after they expire while the endpoint is down.
    working = verifier(entra, clock, lifespan_s=3600)
    working(entra.token())
    working._fetch_data = down
    clock.now += 7200
    assert working(entra.token())["aud"] == AUDIENCE
    with pytest.raises(errors.Unauthorized):  # an unknown kid stays 401 even then
        working(entra.token(kid="never-published"))


def test_a_slow_refresh_of_expired_keys_holds_up_no_token_they_still_verify(entra):
    """Once an hour the keys expire and one caller fetches them again. When the tenant is slow (a 5 s timeout),
    the other callers keep verifying with the keys they have instead of queueing behind that fetch (each of
    them holding a worker thread meanwhile)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tests.api.chat.chat_support import wait_until

    clock = Clock()
    check = verifier(entra, clock, lifespan_s=3600)
    check(entra.token())
    fetching, release = threading.Event(), threading.Event()
    fetch = check._fetch_data

    def slow(url: str) -> Any:
        fetching.set()
        assert release.wait(30)
        return fetch(url)

    check._fetch_data = slow
    clock.now += 3601
    with ThreadPoolExecutor(max_workers=2) as pool:
        refreshing = pool.submit(check, entra.token())
        try:
            wait_until(fetching.is_set, "one caller to refresh the expired keys")
            other = pool.submit(check, entra.token())
            wait_until(other.done, "a token the expired keys verify, while the refresh waits")
            assert other.result()["aud"] == AUDIENCE
        finally:
            release.set()
        assert refreshing.result()["aud"] == AUDIENCE
    assert check.fetches == 2


def test_a_failed_fetch_is_retried_only_after_the_delay_counted_from_its_end(entra):
    """A fetch that times out after 6 s must not be retried by the next caller at once (the delay counted from
    when it started has already passed): with the tenant unreachable, callers would fetch back to back."""
    clock = Clock()
    check = verifier(entra, clock, lifespan_s=3600)
    check(entra.token())

    def timing_out(url: str) -> Any:
        clock.now += 6
        raise OSError("timed out")

    check._fetch_data = timing_out
    clock.now += 3601
    assert check(entra.token())["aud"] == AUDIENCE  # the expired keys still verify
    assert check(entra.token())["aud"] == AUDIENCE
    assert check.fetches == 2, "one failed refresh, not one per caller"


def test_unknown_kid_through_the_service_is_401(repos, tmp_path, entra):
    auth = make_auth(repos, tmp_path, auth=entra.auth_settings())
    with pytest.raises(errors.Unauthorized):
        auth.authenticate(bearer(entra.token(kid="not-in-the-jwks")))


# ------------------------------------------------------------------ roles from identity providers


def test_entra_app_role_grants_admin_per_request_without_promoting_the_user(repos, tmp_path, entra):
    auth = make_auth(repos, tmp_path, auth=entra.auth_settings())
    oid = "role-oid-1"
    admin = auth.authenticate(bearer(entra.token(oid=oid, roles=["StockAgent.Admin"])))
    assert admin.is_admin and admin.auth_method == "entra"
    assert repos.get_user_repository().get(admin.id)["roles"] == ["user"], "stored user unchanged"
    # Same identity, a token without the role (cached principal): not admin.
    plain = auth.authenticate(bearer(entra.token(oid=oid)))
    assert plain.id == admin.id and not plain.is_admin
    assert auth.authenticate(bearer(entra.token(oid=oid, roles=["StockAgent.Reader"]))).is_admin is False
    assert auth.authenticate(bearer(entra.token(oid=oid, roles="StockAgent.Admin"))).is_admin


def test_admin_app_role_name_is_configurable(repos, tmp_path, entra):
    auth = make_auth(repos, tmp_path, auth=entra.auth_settings(entra_admin_role="Ops.Admin"))
    assert auth.authenticate(bearer(entra.token(oid="cfg-role", roles=["Ops.Admin"]))).is_admin
    assert not auth.authenticate(bearer(entra.token(oid="cfg-role", roles=["StockAgent.Admin"]))).is_admin


def easy_auth(oid: str, *claims: tuple[str, str], role_typ: str | None = None) -> dict[str, str]:
    """An X-MS-CLIENT-PRINCIPAL header as App Service sends it (base64 JSON: auth_typ, claims, name_typ, role_typ)."""
    body: dict[str, Any] = {"auth_typ": "aad", "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                            "claims": [{"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
                                       *({"typ": t, "val": v} for t, v in claims)]}
    if role_typ:
        body["role_typ"] = role_typ
    return {"x-ms-client-principal": base64.b64encode(json.dumps(body).encode()).decode()}


ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def test_easy_auth_roles_claim_grants_admin_per_request(repos, tmp_path):
    auth = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True})
    # Each role is its own claim entry; the admin role is not the first one.
    header = easy_auth("ea-role-oid", (ROLE, "StockAgent.Reader"), (ROLE, "StockAgent.Admin"), role_typ=ROLE)
    principal = auth.authenticate(header)
    assert principal.is_admin and principal.auth_method == "easyauth"
    assert repos.get_user_repository().get(principal.id)["roles"] == ["user"]
    assert not auth.authenticate(easy_auth("ea-role-oid", (ROLE, "StockAgent.Reader"), role_typ=ROLE)).is_admin
    assert auth.authenticate(easy_auth("ea-role-oid", ("roles", "StockAgent.Admin"))).is_admin


# ------------------------------------------------------------------ ADMIN_EMAILS bootstrap


def test_admin_emails_bootstrap_a_first_seen_verified_principal_once(repos, tmp_path, entra, caplog):
    settings = entra.auth_settings(admin_emails=["Boss@Contoso.example"])
    auth = make_auth(repos, tmp_path, auth=settings)
    with caplog.at_level(logging.WARNING, logger="shared.services.auth"):
        boss = auth.authenticate(bearer(entra.token(oid="boss-oid", upn="boss@contoso.example",
                                                    preferred_username="boss@contoso.example")))
    assert boss.is_admin
    assert repos.get_user_repository().get(boss.id)["roles"] == ["admin", "user"]
    assert any("bootstrap admin" in r.getMessage() for r in caplog.records)
    # Demoted later (admin CLI): the list does not promote the same principal again.
    repos.get_user_repository().update_one(boss.id, {"roles": ["user"]})
    again = make_auth(repos, tmp_path, auth=settings)
    assert not again.authenticate(bearer(entra.token(oid="boss-oid", upn="boss@contoso.example"))).is_admin


@pytest.mark.parametrize("claims", [
    {"preferred_username": "root@contoso.example"},                       # not verified: user-controlled
    {"email": "root@contoso.example"},                                    # email without xms_edov
    {"upn": "root_contoso.example#EXT#@tenant.onmicrosoft.com"},          # a guest
])
def test_admin_emails_ignore_unverified_emails(repos, tmp_path, entra, claims):
    auth = make_auth(repos, tmp_path, auth=entra.auth_settings(admin_emails=["root@contoso.example"]))
    principal = auth.authenticate(bearer(entra.token(**claims)))
    assert not principal.is_admin


def test_admin_emails_accept_email_flagged_verified(repos, tmp_path, entra):
    auth = make_auth(repos, tmp_path, auth={**entra.auth_settings(admin_emails=["edov@contoso.example"]),
                                            "easy_auth_enabled": True})
    assert auth.authenticate(bearer(entra.token(email="edov@contoso.example", xms_edov=True,
                                                preferred_username="edov@contoso.example"))).is_admin
    google = easy_auth("google-sub", ("email", "g@contoso.example"), ("email_verified", "true"))
    assert not auth.authenticate(google).is_admin  # not listed
    auth2 = make_auth(repos, tmp_path, auth={"easy_auth_enabled": True, "admin_emails": ["g2@contoso.example"]})
    assert auth2.authenticate(easy_auth("google-sub-2", ("email", "g2@contoso.example"),
                                        ("email_verified", "true"))).is_admin
    assert not auth2.authenticate(easy_auth("google-sub-3", ("email", "g2@contoso.example"))).is_admin


# ------------------------------------------------------------------ revocation across instances (in-process bus)


class Bus:
    """What the services need of the cache's pub/sub: delivered synchronously to every subscriber."""

    redis_configured = True

    def __init__(self) -> None:
        self.subscribers: list[tuple[Callable[[str], None], Callable[[], None]]] = []
        self.up = True

    def publish(self, channel: str, message: str) -> bool:
        if not self.up:
            return False
        for on_message, _ in self.subscribers:
            on_message(message)
        return True

    def subscribe(self, channel: str, on_message: Callable[[str], None], on_gap: Callable[[], None]) -> object:
        self.subscribers.append((on_message, on_gap))
        on_gap()
        return object()


def new_key(repos, auth: AuthService, email: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    user = repos.get_user_repository().insert_one({"email": email, "name": "R", "roles": ["user"]})
    record, key = auth.create_api_key(user["id"], "k")
    return user, record, {"x-api-key": key}


def test_revoking_a_key_drops_it_on_every_instance(repos, tmp_path):
    bus = Bus()
    a, b = make_auth(repos, tmp_path, cache=bus), make_auth(repos, tmp_path, cache=bus)
    user, record, headers = new_key(repos, a, f"rev-{time.time_ns()}@example.com")
    assert a.authenticate(headers).id == b.authenticate(headers).id == user["id"]
    assert b.cached_principal(headers) is not None
    a.revoke_api_key(user["id"], record["id"])
    assert b.cached_principal(headers) is None
    with pytest.raises(errors.Unauthorized):
        b.authenticate(headers)


def test_forget_user_drops_every_sign_in_of_that_user(repos, tmp_path):
    bus = Bus()
    a, b = make_auth(repos, tmp_path, cache=bus), make_auth(repos, tmp_path, cache=bus)
    user, _, headers = new_key(repos, a, f"forget-{time.time_ns()}@example.com")
    _, second = a.create_api_key(user["id"], "second")
    other, _, other_headers = new_key(repos, a, f"other-{time.time_ns()}@example.com")
    for h in (headers, {"x-api-key": second}, other_headers):
        b.authenticate(h)
    a.forget_user(user["id"])
    assert b.cached_principal(headers) is None and b.cached_principal({"x-api-key": second}) is None
    assert b.cached_principal(other_headers) is not None


def test_with_the_bus_down_the_principal_ttl_bounds_a_revoked_key(repos, tmp_path):
    bus, clock = Bus(), Clock()
    a, b = make_auth(repos, tmp_path, cache=bus), make_auth(repos, tmp_path, cache=bus, clock=clock)
    user, record, headers = new_key(repos, a, f"ttl-{time.time_ns()}@example.com")
    b.authenticate(headers)
    bus.up = False
    a.revoke_api_key(user["id"], record["id"])
    assert b.authenticate(headers).id == user["id"], "cached on b until the TTL"
    clock.now += PRINCIPAL_TTL_S + 0.1
    with pytest.raises(errors.Unauthorized):
        b.authenticate(headers)


def test_a_revocation_during_a_lookup_is_not_undone_by_caching_its_result(repos, tmp_path):
    """b reads the key (still valid), the revocation arrives, then b would cache what it read."""
    bus = Bus()
    a = make_auth(repos, tmp_path, cache=bus)
    user, record, headers = new_key(repos, a, f"race-{time.time_ns()}@example.com")
    users = repos.get_user_repository()

    class RevokedMidLookup:
        def find_one(self, query: dict[str, Any]) -> Any:
            found = users.find_one(query)
            a.revoke_api_key(user["id"], record["id"])  # lands between b's read and b's cache write
            return found

    b = AuthService(settings=make_settings(tmp_path), user_repository=RevokedMidLookup(),
                    api_key_repository=repos.get_api_key_repository(), cache=bus)
    assert b.authenticate(headers).id == user["id"]  # began before the revocation
    assert b.cached_principal(headers) is None
    with pytest.raises(errors.Unauthorized):
        b.authenticate(headers)


def test_resubscribing_drops_the_whole_cache(repos, tmp_path):
    bus = Bus()
    b = make_auth(repos, tmp_path, cache=bus)
    _, _, headers = new_key(repos, b, f"gap-{time.time_ns()}@example.com")
    b.authenticate(headers)
    assert b.cached_principal(headers) is not None
    for _, on_gap in bus.subscribers:  # what a reconnect does: messages may have been missed
        on_gap()
    assert b.cached_principal(headers) is None


def test_first_use_of_a_key_is_recorded_even_just_after_boot(repos, tmp_path):
    """The monotonic clock starts near 0 at boot: the first use must not look like one a moment ago."""
    auth = make_auth(repos, tmp_path, clock=Clock(now=5.0))
    user, record, headers = new_key(repos, auth, f"boot-{time.time_ns()}@example.com")
    auth.authenticate(headers)
    assert repos.get_api_key_repository().get(user["id"], record["id"])["last_used_at"] is not None
