from datetime import datetime, timezone

from shared.errors import MarketDataUnavailable
from shared.market.models import Provenance, Quote, QuoteError


class _Market:
    def __init__(self, prices=None, down=None):
        self.prices, self.down = prices or {}, down

    def get_quotes(self, symbols):
        if self.down:
            raise self.down
        now = datetime.now(timezone.utc)
        return [Quote(symbol=s, price=self.prices[s], currency="USD", change=1.0, provenance=Provenance(source="fake", fetched_at=now))
                if s in self.prices else QuoteError(symbol=s, status=502, type="upstream-error", title="Upstream") for s in symbols]


def test_me(client, user):
    u, h = user
    r = client.get("/api/v1/users/me", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == u["id"] and body["email"] == u["email"] and body["roles"] == ["user"]
    assert r.headers["etag"] == f'"{body["version"]}"'
    assert client.get("/api/v1/users/me").status_code == 401


def test_profile_get_patch_and_if_match(client, user):
    _, h = user
    r = client.get("/api/v1/users/me/profile", headers=h)
    assert r.status_code == 200 and r.json()["version"] == 0 and r.headers["etag"] == '"0"'
    r = client.patch("/api/v1/users/me/profile", json={"display_name": "Ann", "bio": "investor"},
                     headers={**h, "If-Match": '"0"'})
    assert r.status_code == 200 and r.json()["display_name"] == "Ann" and r.headers["etag"] == '"1"'
    r = client.patch("/api/v1/users/me/profile", json={"bio": "stale"}, headers={**h, "If-Match": '"0"'})
    assert r.status_code == 412
    assert client.get("/api/v1/users/me/profile", headers=h).json()["bio"] == "investor"
    assert client.patch("/api/v1/users/me/profile", json={"role": "admin"}, headers=h).status_code == 422
    assert client.patch("/api/v1/users/me/profile", json={"owner_id": "x"}, headers=h).status_code == 422
    assert client.patch("/api/v1/users/me/profile", json={"avatar_url": "javascript:alert(1)"}, headers=h).status_code == 422


def test_preferences_put(client, user):
    _, h = user
    assert client.get("/api/v1/users/me/preferences", headers=h).json()["risk_profile"] == "moderate"
    wl = client.post("/api/v1/watchlists", json={"name": "Default"}, headers=h).json()
    body = {"preferred_model_provider": "openai", "default_watchlist_id": wl["id"], "risk_profile": "aggressive",
            "currency": "eur"}
    r = client.put("/api/v1/users/me/preferences", json=body, headers=h)
    assert r.status_code == 200
    assert r.json()["currency"] == "EUR" and r.json()["default_watchlist_id"] == wl["id"]
    assert r.headers["etag"] == '"1"'
    assert client.put("/api/v1/users/me/preferences", json={"risk_profile": "yolo"}, headers=h).status_code == 422
    assert client.put("/api/v1/users/me/preferences", json={"currency": "EURO"}, headers=h).status_code == 422
    assert client.put("/api/v1/users/me/preferences", json={"default_watchlist_id": "000000000000000000000000"},
                      headers=h).status_code == 422
    assert client.put("/api/v1/users/me/preferences", json={}, headers={**h, "If-Match": '"5"'}).status_code == 412
    r = client.get("/api/v1/users/me/preferences", headers=h)
    assert r.json()["preferred_model_provider"] == "openai"


def test_api_keys_lifecycle(client, user):
    _, h = user
    r = client.post("/api/v1/users/me/api-keys", json={"name": "laptop"}, headers=h)
    assert r.status_code == 201
    created = r.json()
    assert created["secret"].startswith("sak_") and "key_hash" not in created
    assert r.headers["location"] == f"/api/v1/users/me/api-keys/{created['id']}"
    listed = client.get("/api/v1/users/me/api-keys", headers=h).json()["items"]
    assert created["id"] in [k["id"] for k in listed]
    assert all("secret" not in k and "key_hash" not in k for k in listed)
    new_headers = {"X-API-Key": created["secret"]}
    assert client.get("/api/v1/users/me", headers=new_headers).status_code == 200
    assert client.delete(f"/api/v1/users/me/api-keys/{created['id']}", headers=h).status_code == 204
    assert client.get("/api/v1/users/me", headers=new_headers).status_code == 401
    assert client.delete(f"/api/v1/users/me/api-keys/{created['id']}", headers=h).status_code == 404
    assert client.delete("/api/v1/users/me/api-keys/not-an-id", headers=h).status_code == 404
    assert client.post("/api/v1/users/me/api-keys", json={"name": "x", "owner_id": "y"}, headers=h).status_code == 422


def test_dashboard_ok_and_degraded(client, user, core, monkeypatch):
    _, h = user
    client.post("/api/v1/workspaces", json={"name": "Dash"}, headers=h)
    client.post("/api/v1/watchlists", json={"name": "Dash", "symbols": ["AAPL", "MSFT"]}, headers=h)
    pf = client.post("/api/v1/portfolios", json={"name": "Dash"}, headers=h).json()
    client.post(f"/api/v1/portfolios/{pf['id']}/positions", json={"symbol": "AAPL", "quantity": 2, "cost_basis": 1}, headers=h)

    monkeypatch.setattr(core.services.market_access, "_resolve", lambda: _Market({"AAPL": 10.0, "MSFT": 20.0}))
    d = client.get("/api/v1/users/me/dashboard", headers=h).json()
    assert d["status"] == "ok"
    assert [q["price"] for q in d["watchlists"]["items"][0]["quotes"]] == [10.0, 20.0]
    assert d["portfolios"]["totals"]["USD"] == {"market_value": 20.0, "day_change": 2.0}

    monkeypatch.setattr(core.services.market_access, "_resolve", lambda: _Market(down=MarketDataUnavailable("x")))
    r = client.get("/api/v1/users/me/dashboard", headers=h)
    assert r.status_code == 200
    d = r.json()
    assert d["status"] == "degraded" and d["workspaces"]["status"] == "ok"
    assert d["watchlists"]["status"] == "degraded" and d["watchlists"]["error"] == "market data unavailable"
    assert d["watchlists"]["items"][0]["symbols"] == ["AAPL", "MSFT"]
    assert d["portfolios"]["status"] == "degraded"

    def broken():
        raise RuntimeError("market stack cannot be built")

    monkeypatch.setattr(core.services.market_access, "_resolve", broken)
    d = client.get("/api/v1/users/me/dashboard", headers=h).json()
    assert d["watchlists"]["error"] == "market data unavailable" and d["workspaces"]["status"] == "ok"
