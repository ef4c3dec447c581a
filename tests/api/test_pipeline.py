"""The request pipeline through real HTTP: problems, request ids, limits, headers, CORS, auth."""

import logging
import time

import pytest

SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}
BODY_ROUTE = "/api/v1/admin/migrations"


def assert_problem(r, status, type_slug=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] == body["error"]
    assert body["request_id"] == r.headers["x-request-id"]
    assert body["instance"] == r.request.url.path
    for key, value in SECURITY.items():
        assert r.headers[key] == value
    if type_slug:
        assert body["type"] == f"/problems/{type_slug}"
    return body


def test_malformed_json_is_400(client, admin_headers):
    r = client.post(BODY_ROUTE, content=b'{"dry_run": tru', headers={**admin_headers, "Content-Type": "application/json"})
    assert_problem(r, 400, "malformed-json")


def test_wrong_content_type_is_400(client, admin_headers):
    r = client.post(BODY_ROUTE, content=b"dry_run=true", headers={**admin_headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 400, "unsupported-content-type")


def test_unknown_field_is_422_with_field_errors(client, admin_headers):
    r = client.post(BODY_ROUTE, json={"dry_run": True, "role": "admin"}, headers=admin_headers)
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"] == {"role": ["Unknown field"]}
    assert body["detail"] == "1 field is invalid"


def test_wrong_type_is_422(client, admin_headers):
    r = client.post(BODY_ROUTE, json={"dry_run": {"x": 1}}, headers=admin_headers)
    assert "dry_run" in assert_problem(r, 422)["errors"]


def test_non_object_body_is_422(client, admin_headers):
    r = client.post(BODY_ROUTE, json=[1, 2], headers=admin_headers)
    assert assert_problem(r, 422)["errors"] == {"body": ["Must be an object"]}


def test_two_mib_body_is_413(client, admin_headers):
    r = client.post(BODY_ROUTE, content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers={**admin_headers, "Content-Type": "application/json"})
    assert_problem(r, 413, "payload-too-large")


def test_deep_json_is_rejected(client, admin_headers):
    r = client.post(BODY_ROUTE, content=b'{"a":' + b"[" * 200 + b"]" * 200 + b"}", headers={**admin_headers, "Content-Type": "application/json"})
    assert_problem(r, 400, "malformed-json")


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")


def test_wrong_method_is_405_with_allow(client):
    r = client.delete("/api/health")
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "GET"


def test_request_id_is_echoed_when_valid(client):
    r = client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "tab\there", "ünïcode"])
def test_bad_request_id_is_replaced(client, bad):
    r = client.get("/api/nope", headers={"X-Request-ID": bad.encode("utf-8")})
    assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 32
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_encoded_header_injection_in_request_id_sets_no_header(client):
    r = client.get("/api/health", headers={"X-Request-ID": "a%0d%0aSet-Cookie:x=1"})
    assert "set-cookie" not in r.headers
    assert r.headers["x-request-id"] == "a%0d%0aSet-Cookie:x=1"  # printable, so kept verbatim, never decoded


def test_no_credentials_is_401(client):
    r = client.get("/api/v1/admin/metrics")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_bad_key_is_401(client):
    assert_problem(client.get("/api/v1/admin/metrics", headers={"X-API-Key": "sak_nope"}), 401)
    assert_problem(client.get("/api/v1/admin/metrics", headers={"Authorization": "Basic abc"}), 401)


def test_user_on_admin_route_is_403(client, make_user):
    _, headers = make_user()
    assert_problem(client.get("/api/v1/admin/metrics", headers=headers), 403, "forbidden")


def test_admin_metrics_counts_requests(client, admin_headers):
    client.get("/api/health")
    r = client.get("/api/v1/admin/metrics", headers=admin_headers)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    routes = {(x["route"], x["status"]) for x in r.json()["requests"]}
    assert ("/api/health", 200) in routes
    assert "/api/health" in r.json()["latency"]


def test_bearer_api_key_works(client):
    r = client.get("/api/v1/admin/metrics", headers={"Authorization": "Bearer test-admin-key-0123456789"})
    assert r.status_code == 200


def test_hsts_only_over_https(client):
    assert "strict-transport-security" not in client.get("/api/health").headers
    r = client.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_cors_preflight_for_allowed_origin(client):
    r = client.options("/api/v1/admin/metrics", headers={"Origin": "http://allowed.example", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://allowed.example"
    assert "GET" in r.headers["access-control-allow-methods"]
    assert "X-API-Key" in r.headers["access-control-allow-headers"]
    assert "Origin" in r.headers["vary"]


def test_cors_other_origin_gets_no_allow_header(client):
    r = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    assert "Origin" in r.headers["vary"]


def test_unexpected_exception_is_generic_500_and_logged_with_request_id(client, core, monkeypatch, caplog):
    def boom():
        raise RuntimeError("secret internal detail /srv/app.py")

    monkeypatch.setattr(core.services, "health_probes", boom)
    monkeypatch.setattr(core, "last_health", None)  # no reused report: the probes must run
    with caplog.at_level(logging.ERROR, logger="stockagent.http"):
        r = client.get("/api/health", headers={"X-Request-ID": "rid-500"})
    body = assert_problem(r, 500, "internal-error")
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert body["request_id"] == "rid-500"
    record = next(rec for rec in caplog.records if rec.name == "stockagent.http" and rec.levelno == logging.ERROR)
    assert record.exc_info and getattr(record, "request_id", None) in (None, "rid-500")


def test_openapi_and_docs_are_public(client):
    assert client.get("/api/v1/openapi.json").status_code == 200
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    asset = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert client.get("/api/v1/docs/assets/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


def test_rate_limit_gives_429_with_headers(tmp_path, make_user):
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from starlette.testclient import TestClient
    from tests.conftest import ADMIN_KEY, make_settings

    left = 60 - time.time() % 60
    if left < 2:  # windows are aligned to the minute: keep the four requests inside one
        time.sleep(left + 0.05)
    settings = make_settings(tmp_path, rate_limits={"groups": {"read": "3/minute"}})
    core = build_core(settings)
    core.services.auth.seed_local_admin()
    previous = set_core(core)
    try:
        with TestClient(build_asgi_app()) as c:
            headers = {"X-API-Key": ADMIN_KEY}
            seen = [c.get("/api/v1/admin/metrics", headers=headers) for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert seen[0].headers["ratelimit-limit"] == "3" and seen[0].headers["ratelimit-remaining"] == "2"
        body = assert_problem(seen[3], 429, "rate-limited")
        assert int(seen[3].headers["retry-after"]) >= 1 and body["retry_after"] >= 1
        assert seen[3].headers["ratelimit-remaining"] == "0"
    finally:
        set_core(previous)
        core.close()


def test_failed_sign_ins_are_rate_limited_per_address(tmp_path):
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from starlette.testclient import TestClient
    from tests.conftest import make_settings

    left = 60 - time.time() % 60
    if left < 2:
        time.sleep(left + 0.05)
    core = build_core(make_settings(tmp_path, rate_limits={"groups": {"read": "1000/minute", "auth_failures": "3/minute"}}))
    previous = set_core(core)
    try:
        with TestClient(build_asgi_app()) as c:
            statuses = [c.get("/api/v1/admin/metrics", headers={"X-API-Key": f"sak_guess{i}"}).status_code for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
    finally:
        set_core(previous)
        core.close()


# -- credentials before body -------------------------------------------------------------------

@pytest.mark.parametrize("route,body", [
    (BODY_ROUTE, b'{"dry_run": {"x": 1}, "role": "admin"}'),    # admin route, invalid fields
    ("/api/v1/workspaces", b'{"nme": 1}'),                         # user route, unknown field
    ("/api/v1/workspaces", b'{"name": '),                          # malformed JSON
    ("/api/v1/workspaces", b"{" + b" " * (2 * 1024 * 1024) + b"}"),  # over the size limit
])
@pytest.mark.parametrize("credentials", [{}, {"X-API-Key": "sak_wrong"}, {"Authorization": "Bearer sak_wrong"}])
def test_unauthenticated_requests_get_401_before_their_body_is_read(client, route, body, credentials):
    r = client.post(route, content=body, headers={**credentials, "Content-Type": "application/json"})
    problem = assert_problem(r, 401, "unauthorized")
    assert "errors" not in problem  # nothing about the body's fields


def test_a_user_on_an_admin_route_gets_403_whatever_the_body(client, make_user):
    _, headers = make_user()
    assert_problem(client.post(BODY_ROUTE, json={"dry_run": "nope", "extra": 1}, headers=headers), 403, "forbidden")


def test_a_bad_key_counts_as_a_failed_sign_in_whatever_the_body(serve):
    from tests.conftest import inside_one_minute

    inside_one_minute()
    c = serve(rate_limits={"groups": {"write": "1000/minute", "auth_failures": "3/minute"}})
    bodies = [b'{"name": 1}', b"{", b'{"x": "y"}', b"[]", b'{"name": "ok"}']
    statuses = [c.post("/api/v1/workspaces", content=b, headers={"X-API-Key": f"sak_guess{i}",
                                                                  "Content-Type": "application/json"}).status_code
                for i, b in enumerate(bodies)]
    assert statuses == [401, 401, 401, 429, 429]
