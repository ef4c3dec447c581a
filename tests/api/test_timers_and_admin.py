"""Timer functions run on demand through the local host, and the admin migration endpoint."""

import pytest

from tests.api.test_pipeline import assert_problem


def test_market_refresh_timer_warms_watched_symbols(client, core, make_user):
    user, headers = make_user()
    wl = core.repos.get_watchlist_repository()
    wl.insert_one(user["id"], {"name": "refresh-test", "symbols": ["AMD", "INTC"]})
    summary = core.services.market_refresh.run()
    assert summary["symbols"] >= len(core.settings.market.core_symbols) + 2
    assert summary["failures"] == {}
    again = core.services.market_refresh.run()
    assert again["upstream_calls"] == 0 and again["skipped_fresh"] == again["symbols"]


LOOPBACK = ("127.0.0.1", 50000)


def test_timers_run_via_admin_functions_route_locally_from_loopback(serve):
    c = serve(peer=LOOPBACK, app={"env": "local"})
    assert c.post("/admin/functions/market_refresh").status_code == 202
    assert c.post("/admin/functions/run_migrations").status_code == 202
    r = c.post("/admin/functions/nope")
    assert_problem(r, 404, "not-found")
    assert "market_refresh" in r.json()["timers"]


@pytest.mark.parametrize("peer", [("192.0.2.10", 50000), ("10.0.0.5", 1), ("::ffff:10.0.0.5", 1)])
def test_admin_functions_refuse_callers_off_this_machine(serve, peer):
    c = serve(peer=peer, app={"env": "local"})
    assert_problem(c.post("/admin/functions/market_refresh"), 403, "forbidden")
    assert_problem(c.post("/admin/functions/market_refresh", headers={"X-Forwarded-For": "127.0.0.1"}), 403)


@pytest.mark.parametrize("env", ["test", "staging"])
def test_admin_functions_exist_only_with_app_env_local(serve, env):
    c = serve(peer=LOOPBACK, app={"env": env}, http={"cursor_signing_key": "k" * 32})
    assert_problem(c.post("/admin/functions/market_refresh"), 404, "not-found")


@pytest.mark.parametrize("method,path", [("TRACE", "/api/health"), ("TRACE", "/api/v1/workspaces"),
                                         ("PROPFIND", "/api/v1/workspaces"), ("CONNECT", "/api/health"),
                                         ("GET", "/admin/functions/market_refresh"), ("TRACE", "/"),
                                         ("GET", "/not-under-api")])
def test_what_no_function_answers_is_a_problem_with_security_headers(client, method, path):
    r = client.request(method, path)
    assert r.status_code in (404, 405)
    assert_problem(r, r.status_code)
    if r.status_code == 405:
        assert r.headers["allow"]
    if path == "/api/v1/workspaces":
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


def test_admin_migrations_endpoint_reports_nothing_to_do(client, admin_headers, make_user):
    r = client.post("/api/v1/admin/migrations", json={}, headers=admin_headers)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "nothing to do" and body["applied"] == [] and "0002_seed_symbols" in body["already_applied"]
    _, user = make_user()
    assert client.post("/api/v1/admin/migrations", json={}, headers=user).status_code == 403
