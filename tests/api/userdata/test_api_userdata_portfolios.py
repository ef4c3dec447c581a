from shared.errors import MarketDataUnavailable
from userdata_helpers import FakeMarket, create

BASE = "/api/v1/portfolios"


def test_portfolio_and_position_crud(client, alice):
    _, h = alice
    r = client.post(BASE, json={"name": "Core", "currency": "usd"}, headers=h)
    assert r.status_code == 201 and r.json()["currency"] == "USD"
    p = r.json()
    r = client.post(f"{BASE}/{p['id']}/positions", json={"symbol": "aapl", "quantity": 3, "cost_basis": 100},
                    headers=h)
    assert r.status_code == 201
    pos = r.json()
    assert r.headers["location"] == f"{BASE}/{p['id']}/positions/{pos['id']}"
    assert pos["symbol"] == "AAPL" and pos["portfolio_id"] == p["id"]
    r = client.get(f"{BASE}/{p['id']}/positions/{pos['id']}", headers=h)
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    r = client.patch(f"{BASE}/{p['id']}/positions/{pos['id']}", json={"quantity": 5}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["quantity"] == 5
    assert [x["id"] for x in client.get(f"{BASE}/{p['id']}/positions", headers=h).json()["items"]] == [pos["id"]]
    assert client.patch(f"{BASE}/{p['id']}", json={"name": "Renamed"}, headers=h).json()["name"] == "Renamed"
    assert client.delete(f"{BASE}/{p['id']}/positions/{pos['id']}", headers=h).status_code == 204
    assert client.delete(f"{BASE}/{p['id']}", headers=h).status_code == 204
    assert client.get(f"{BASE}/{p['id']}", headers=h).status_code == 404


def test_position_validation(client, alice):
    _, h = alice
    p = create(client, h, BASE, {"name": "V"})
    url = f"{BASE}/{p['id']}/positions"
    assert client.post(url, json={"symbol": "AAPL", "quantity": 0, "cost_basis": 1}, headers=h).status_code == 422
    assert client.post(url, json={"symbol": "AAPL", "quantity": 1, "cost_basis": -1}, headers=h).status_code == 422
    assert client.post(url, json={"symbol": "QQQQQQQ", "quantity": 1, "cost_basis": 1}, headers=h).status_code == 422
    assert client.post(url, json={"symbol": "AAPL", "quantity": 1, "cost_basis": 1, "currency": "dollars"},
                       headers=h).status_code == 422
    assert client.post(f"{BASE}/nope/positions", json={"symbol": "AAPL", "quantity": 1, "cost_basis": 1},
                       headers=h).status_code == 404


def test_valuation_reports_failed_quotes_per_position(client, alice, use_market):
    _, h = alice
    use_market(FakeMarket({"AAPL": 200.0}, failing=["MSFT"]))
    p = create(client, h, BASE, {"name": "Val"})
    create(client, h, f"{BASE}/{p['id']}/positions", {"symbol": "AAPL", "quantity": 2, "cost_basis": 150})
    create(client, h, f"{BASE}/{p['id']}/positions", {"symbol": "MSFT", "quantity": 1, "cost_basis": 300})
    r = client.get(f"{BASE}/{p['id']}/valuation", headers=h)
    assert r.status_code == 200
    v = r.json()
    assert v["status"] == "partial" and v["market_value"] == 400.0 and v["failed_positions"] == 1
    rows = {row["symbol"]: row for row in v["positions"]}
    assert rows["AAPL"]["provenance"]["source"] == "fake" and rows["AAPL"]["unrealized_pl"] == 100.0
    assert rows["MSFT"]["price"] is None and rows["MSFT"]["error"]["status"] == 502


def test_valuation_when_market_is_down(client, alice, use_market):
    _, h = alice
    use_market(FakeMarket({}, down=MarketDataUnavailable("all providers failed")))
    p = create(client, h, BASE, {"name": "Down"})
    create(client, h, f"{BASE}/{p['id']}/positions", {"symbol": "AAPL", "quantity": 1, "cost_basis": 1})
    v = client.get(f"{BASE}/{p['id']}/valuation", headers=h).json()
    assert v["status"] == "unavailable" and v["market_value"] is None
    assert v["positions"][0]["error"]["type"] == "/problems/market-data-unavailable"
