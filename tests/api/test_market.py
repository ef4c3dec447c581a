"""Market routes through HTTP with the offline provider: provenance, validation, errors."""

import pytest

PROVENANCE = {"source", "as_of", "fetched_at", "cache_age_s", "stale"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/market/AAPL/quote",
        "/api/v1/market/AAPL/history?period=3mo&interval=1d",
        "/api/v1/market/AAPL/fundamentals",
        "/api/v1/market/AAPL/news?limit=3",
    ],
)
def test_market_data_carries_offline_provenance(client, admin_headers, path):
    r = client.get(path, headers=admin_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "AAPL"
    assert PROVENANCE <= set(body["provenance"]) and body["provenance"]["source"] == "offline"


def test_lower_case_symbol_is_normalised(client, admin_headers):
    assert client.get("/api/v1/market/msft/quote", headers=admin_headers).json()["symbol"] == "MSFT"


def test_history_bars_are_ordered_ohlc(client, admin_headers):
    bars = client.get("/api/v1/market/AAPL/history?period=1mo", headers=admin_headers).json()["bars"]
    assert len(bars) >= 15
    assert [b["ts"] for b in bars] == sorted(b["ts"] for b in bars)
    assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"] for b in bars)


def test_news_limit_is_respected(client, admin_headers):
    items = client.get("/api/v1/market/AAPL/news?limit=2", headers=admin_headers).json()["items"]
    assert 1 <= len(items) <= 2


def test_indicators(client, admin_headers):
    r = client.get("/api/v1/market/AAPL/indicators?names=sma_20,rsi_14,macd", headers=admin_headers)
    assert r.status_code == 200
    series = {s["name"]: s for s in r.json()["indicators"]}
    assert set(series) >= {"sma_20", "rsi_14"}
    rsi = [p["value"] for p in series["rsi_14"]["points"] if p["value"] is not None]
    assert rsi and all(0 <= v <= 100 for v in rsi)


def test_unknown_indicator_is_422(client, admin_headers):
    r = client.get("/api/v1/market/AAPL/indicators?names=magic_3", headers=admin_headers)
    assert r.status_code == 422 and "names" in r.json()["errors"]


def test_batch_quotes_report_failures_in_place(client, admin_headers):
    r = client.get("/api/v1/market/quotes?symbols=AAPL,MSFT,ZZZZZZ", headers=admin_headers)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["symbol"] for i in items] == ["AAPL", "MSFT", "ZZZZZZ"]
    assert items[0]["provenance"]["source"] == "offline"
    assert items[2]["status"] == 404


def test_batch_over_50_is_422(client, admin_headers):
    symbols = ",".join(f"S{i}" for i in range(51))
    assert client.get(f"/api/v1/market/quotes?symbols={symbols}", headers=admin_headers).status_code == 422


def test_unknown_symbol_is_404_problem(client, admin_headers):
    r = client.get("/api/v1/market/ZZZZZZ/quote", headers=admin_headers)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("query,field", [("interval=7x", "interval"), ("period=forever", "period"), ("start=2020-13-01", "start")])
def test_bad_history_parameters_are_422(client, admin_headers, query, field):
    r = client.get(f"/api/v1/market/AAPL/history?{query}", headers=admin_headers)
    assert r.status_code == 422 and field in r.json()["errors"]


@pytest.mark.parametrize("symbol", ["AA%20PL", "..%2F..%2Fetc", "A" * 16, "%3Cscript%3E", "AAPL%00"])
def test_odd_symbols_are_rejected_not_500(client, admin_headers, symbol):
    r = client.get(f"/api/v1/market/{symbol}/quote", headers=admin_headers)
    assert r.status_code in (404, 422), r.text


def test_market_needs_credentials(client):
    assert client.get("/api/v1/market/AAPL/quote").status_code == 401


def test_cached_quote_is_served_from_cache(client, admin_headers):
    first = client.get("/api/v1/market/NVDA/quote", headers=admin_headers).json()
    second = client.get("/api/v1/market/NVDA/quote", headers=admin_headers).json()
    assert second["price"] == first["price"]
    assert second["provenance"]["fetched_at"] == first["provenance"]["fetched_at"]
    assert second["provenance"]["cache_age_s"] >= 0
