"""Timer functions run on demand through the local host, and the admin migration endpoint."""


def test_market_refresh_timer_warms_watched_symbols(client, core, make_user):
    user, headers = make_user()
    wl = core.repos.get_watchlist_repository()
    wl.insert_one(user["id"], {"name": "refresh-test", "symbols": ["AMD", "INTC"]})
    summary = core.services.market_refresh.run()
    assert summary["symbols"] >= len(core.settings.market.core_symbols) + 2
    assert summary["failures"] == {}
    again = core.services.market_refresh.run()
    assert again["upstream_calls"] == 0 and again["skipped_fresh"] == again["symbols"]


def test_timers_run_via_admin_functions_route(client):
    assert client.post("/admin/functions/market_refresh").status_code == 202
    assert client.post("/admin/functions/run_migrations").status_code == 202
    r = client.post("/admin/functions/nope")
    assert r.status_code == 404 and "market_refresh" in r.json()["timers"]


def test_admin_migrations_endpoint_reports_nothing_to_do(client, admin_headers, make_user):
    r = client.post("/api/v1/admin/migrations", json={}, headers=admin_headers)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "nothing to do" and body["applied"] == [] and "0002_seed_symbols" in body["already_applied"]
    _, user = make_user()
    assert client.post("/api/v1/admin/migrations", json={}, headers=user).status_code == 403
