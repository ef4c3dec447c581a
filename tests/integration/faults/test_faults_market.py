"""Market-data provider faults through HTTP: Yahoo (the real yfinance over a faked transport) errors, throttling
and empty answers become 502 problems naming the provider (404 only when Yahoo says the symbol does not exist),
or a cached value flagged stale; Alpha Vantage's in-band throttle becomes a 502 problem and its API key appears
neither in the body nor in the logs."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from shared.market.providers.yahoo import YahooProvider
from tests.integration.faults.fault_support import ADMIN, assert_problem, make_settings, serve, timed
from tests.upstream import EMPTY_BODY, TOO_MANY_REQUESTS, FakeYahoo, Reply, connection_reset

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*inplace.*:Warning")]

KINDS = ("quote", "history", "fundamentals", "news", "search")


def yahoo_settings(tmp_path, **cache):
    return make_settings(tmp_path, market={"providers": {k: ["yahoo"] for k in KINDS}, "breaker_failure_threshold": 50},
                         cache=cache)


@pytest.fixture
def yahoo():
    fake = FakeYahoo().healthy()
    fake.tz("AAPL", "America/New_York")
    return fake


@pytest.mark.parametrize("reply,status,slug,outcome", [(connection_reset, 502, "market-data-unavailable", "unavailable"),
                                                       (lambda: TOO_MANY_REQUESTS, 502, "upstream-rate-limited", "rate_limited")])
def test_yahoo_failure_is_502_problem_naming_the_provider(tmp_path, yahoo, reply, status, slug, outcome):
    yahoo.fail_data(reply())
    with serve(yahoo_settings(tmp_path), market_providers={"yahoo": YahooProvider(session=yahoo.session())}) as client:
        for i, path in enumerate(("/api/v1/market/AAPL/quote", "/api/v1/market/AAPL/fundamentals",
                                  "/api/v1/market/AAPL/news")):
            r, took = timed(client.get, path, headers=ADMIN)
            assert took < 2.0
            body = assert_problem(r, status)
            # The first failure is reported as is; later ones may meet the provider's open breaker.
            allowed = {f"/problems/{slug}"} if i == 0 else {f"/problems/{slug}", "/problems/market-data-unavailable"}
            assert body["type"] in allowed, body
            assert body["provider"] == "yahoo", body
            assert "Connection reset" not in r.text  # the SDK's message is not echoed
        upstream_calls = client.core.services.market.stats()["upstream"]["yahoo"]
    # A throttled upstream opens the breaker at once (not hammered again); plain errors are retried per request.
    assert upstream_calls[outcome] == (1 if outcome == "rate_limited" else 3), upstream_calls


def test_yahoo_empty_answers_are_502_and_only_its_not_found_is_404(tmp_path, yahoo):
    with serve(yahoo_settings(tmp_path), market_providers={"yahoo": YahooProvider(session=yahoo.session())}) as client:
        assert_problem(client.get("/api/v1/market/ZZZZZZ/fundamentals", headers=ADMIN), 404, "not-found")
        yahoo.fail_data(EMPTY_BODY)
        for path in ("/api/v1/market/AAPL/quote", "/api/v1/market/AAPL/history", "/api/v1/market/MSFT/fundamentals"):
            body = assert_problem(client.get(path, headers=ADMIN), 502)
            assert "yahoo" in json.dumps(body).lower()


def test_yahoo_failure_serves_cached_value_flagged_stale(tmp_path, yahoo):
    with serve(yahoo_settings(tmp_path, ttl={"fundamental_data": 1, "news_data": 1}),
               market_providers={"yahoo": YahooProvider(session=yahoo.session())}) as client:
        fresh = client.get("/api/v1/market/AAPL/fundamentals", headers=ADMIN)
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["provenance"]["stale"] is False
        assert fresh.json()["provenance"]["source"] == "yahoo"
        yahoo.fail_data(Reply(503, "Service Unavailable"))
        time.sleep(1.1)  # past the 1 s TTL
        stale = client.get("/api/v1/market/AAPL/fundamentals", headers=ADMIN)
        assert stale.status_code == 200, stale.text
        prov = stale.json()["provenance"]
        assert prov["stale"] is True and prov["source"] == "yahoo" and prov["cache_age_s"] >= 1.0
        assert stale.json()["name"] == fresh.json()["name"]


# ------------------------------------------------------------------ Alpha Vantage

AV_KEY = "AVKEY0123456789SECRET"


def test_alpha_vantage_throttle_is_502_and_key_never_leaks(tmp_path):
    from shared.market.providers.alpha_vantage import AlphaVantageProvider

    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"Information": "Thank you for using Alpha Vantage! Our standard API rate limit "
                                                       "is 25 requests per day. Please subscribe to any of the premium "
                                                       "plans at https://www.alphavantage.co/premium/ to instantly "
                                                       "remove all daily rate limits."})

    settings = make_settings(tmp_path, market={"providers": {k: ["alpha_vantage"] for k in KINDS},
                                               "alpha_vantage": {"api_key": AV_KEY}})
    from shared.cache import CacheBackend

    cache = CacheBackend.from_config(settings)
    provider = AlphaVantageProvider(api_key=AV_KEY, cache=cache, transport=httpx.MockTransport(handler))
    captured = _capture_logs()
    try:
        with serve(settings, cache=cache, market_providers={"alpha_vantage": provider}) as client:
            r = client.get("/api/v1/market/IBM/quote", headers=ADMIN)
            r2 = client.get("/api/v1/market/IBM/fundamentals", headers=ADMIN)
    finally:
        output = captured.stop()
    assert seen and all(url.params["apikey"] == AV_KEY for url in seen)
    for resp in (r, r2):
        body = assert_problem(resp, 502)
        assert body["provider"] == "alpha_vantage", body
        assert AV_KEY not in resp.text
    assert r.json()["type"] == "/problems/upstream-rate-limited"
    # The throttle opened the breaker: the next call is refused locally without another upstream request.
    assert r2.json()["type"] in ("/problems/upstream-rate-limited", "/problems/market-data-unavailable")
    for resp in (r, r2):
        assert AV_KEY not in resp.text
    assert output, "the requests were logged"
    assert AV_KEY not in output


def test_alpha_vantage_trickling_its_answer_is_cut_at_its_timeout(tmp_path):
    """A slowloris peer (a byte every 50 ms: never silent as long as the 0.5 s timeout, which httpx applies per
    read) held the request, and the worker thread under it, for as long as it liked. The timeout bounds the whole
    request: 502 naming the provider, and the server did not get to send its whole answer."""
    from shared.cache import CacheBackend
    from shared.market.providers.alpha_vantage import AlphaVantageProvider
    from tests.integration.faults.fault_support import TricklingServer

    body = json.dumps({"Global Quote": {"01. symbol": "IBM", "05. price": "221.82", "07. latest trading day": "2025-01-08"}})
    settings = make_settings(tmp_path, market={"providers": {k: ["alpha_vantage"] for k in KINDS},
                                               "alpha_vantage": {"api_key": AV_KEY}})
    cache = CacheBackend.from_config(settings)
    with TricklingServer(body.encode(), every_s=0.05) as server:
        provider = AlphaVantageProvider(api_key=AV_KEY, cache=cache, base_url=f"http://127.0.0.1:{server.port}/query",
                                        timeout_s=0.5)
        with serve(settings, cache=cache, market_providers={"alpha_vantage": provider}) as client:
            body_ = assert_problem(client.get("/api/v1/market/IBM/quote", headers=ADMIN), 502, "market-data-unavailable")
            assert body_["provider"] == "alpha_vantage" and "timed out" in body_["attempted"][0]["error"], body_
        assert server.sent < len(body)


class _Capture:
    def __init__(self) -> None:
        import io

        from shared.logging import JsonFormatter, install_filters

        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.root = logging.getLogger()
        self.level = self.root.level
        self.root.addHandler(self.handler)
        self.root.setLevel(logging.INFO)
        install_filters(self.root)

    def stop(self) -> str:
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.level)
        return self.stream.getvalue()


def _capture_logs() -> _Capture:
    return _Capture()
