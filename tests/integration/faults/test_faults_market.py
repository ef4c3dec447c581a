"""Market-data provider faults through HTTP: Yahoo (fake yfinance module) errors, throttling and empty
answers become 502/404 problems naming the provider, or a cached value flagged stale; Alpha Vantage's
in-band throttle becomes a 502 problem and its API key appears neither in the body nor in the logs."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from shared.market.providers.yahoo import YahooProvider
from tests.integration.faults.fault_support import ADMIN, assert_problem, make_settings, serve, timed
from tests.unit.market.market_fakes import load_payload

pytestmark = pytest.mark.integration

KINDS = ("quote", "history", "fundamentals", "news", "search")


class YFRateLimitError(Exception):
    """Stands in for yfinance.exceptions.YFRateLimitError (the adapter maps it by class name)."""


class _Frame:
    """The slice of a pandas DataFrame the adapter touches, empty."""

    empty = True


class FakeYF:
    """A fake `yfinance` module whose behaviour the test switches: ok, error, ratelimit, empty."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0
        fake = self

        class Ticker:
            def __init__(self, symbol: str) -> None:
                self.symbol = symbol
                self.history_metadata = {}

            def _enter(self):
                fake.calls += 1
                if fake.mode == "error":
                    raise ConnectionError("connection reset by peer 10.0.0.7")
                if fake.mode == "ratelimit":
                    raise YFRateLimitError("Too Many Requests. Rate limited. Try after a while.")

            @property
            def fast_info(self):
                self._enter()
                return {} if fake.mode == "empty" else load_payload("yahoo_fast_info_aapl.json")

            def get_info(self):
                self._enter()
                return {} if fake.mode == "empty" else load_payload("yahoo_info_aapl.json")

            def history(self, **kw):
                self._enter()
                return _Frame()

            def get_news(self, count=10):
                self._enter()
                return [] if fake.mode == "empty" else load_payload("yahoo_news_aapl.json")

        self.Ticker = Ticker


def yahoo_settings(tmp_path, **cache):
    return make_settings(tmp_path, market={"providers": {k: ["yahoo"] for k in KINDS}, "breaker_failure_threshold": 50},
                         cache=cache)


@pytest.fixture
def yahoo(tmp_path):
    yf = FakeYF()
    provider = YahooProvider(yf_module=yf)
    return yf, provider


@pytest.mark.parametrize("mode,status,slug", [("error", 502, "market-data-unavailable"),
                                              ("ratelimit", 502, "upstream-rate-limited")])
def test_yahoo_failure_is_502_problem_naming_the_provider(tmp_path, yahoo, mode, status, slug):
    yf, provider = yahoo
    yf.mode = mode
    with serve(yahoo_settings(tmp_path), market_providers={"yahoo": provider}) as client:
        for i, path in enumerate(("/api/v1/market/AAPL/quote", "/api/v1/market/AAPL/fundamentals",
                                  "/api/v1/market/AAPL/news")):
            r, took = timed(client.get, path, headers=ADMIN)
            assert took < 2.0
            body = assert_problem(r, status)
            # The first failure is reported as is; later ones may meet the provider's open breaker.
            allowed = {f"/problems/{slug}"} if i == 0 else {f"/problems/{slug}", "/problems/market-data-unavailable"}
            assert body["type"] in allowed, body
            assert body["provider"] == "yahoo", body
            assert "10.0.0.7" not in r.text  # the SDK's message is not echoed
    # A throttled upstream opens the breaker at once (not hammered again); plain errors are retried per request.
    assert yf.calls == (1 if mode == "ratelimit" else 3)


def test_yahoo_empty_answers(tmp_path, yahoo):
    yf, provider = yahoo
    yf.mode = "empty"
    with serve(yahoo_settings(tmp_path), market_providers={"yahoo": provider}) as client:
        assert_problem(client.get("/api/v1/market/AAPL/quote", headers=ADMIN), 404, "not-found")
        body = assert_problem(client.get("/api/v1/market/AAPL/history", headers=ADMIN), 502)
        assert "yahoo" in json.dumps(body).lower()
        assert_problem(client.get("/api/v1/market/ZZZZ/fundamentals", headers=ADMIN), 404, "not-found")


def test_yahoo_failure_serves_cached_value_flagged_stale(tmp_path, yahoo):
    yf, provider = yahoo
    with serve(yahoo_settings(tmp_path, ttl={"fundamental_data": 1, "news_data": 1}),
               market_providers={"yahoo": provider}) as client:
        fresh = client.get("/api/v1/market/AAPL/fundamentals", headers=ADMIN)
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["provenance"]["stale"] is False
        assert fresh.json()["provenance"]["source"] == "yahoo"
        yf.mode = "error"
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
