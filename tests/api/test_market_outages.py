"""Market data through HTTP while upstreams fail, with the real yfinance and Alpha Vantage adapter code (only their
HTTP faked): a Yahoo outage is served by the next provider or from stale cache, never a 404 and never a cached
negative; a bad Alpha Vantage key is "misconfigured" in health, never "unknown symbol"."""

from __future__ import annotations

import logging

import pytest

from shared.market.providers.alpha_vantage import AlphaVantageProvider
from shared.market.providers.yahoo import YahooProvider
from tests.integration.faults.fault_support import ADMIN, assert_problem, make_settings, serve
from tests.upstream import (
    ERROR_OBJECT_IN_200,
    SERVER_ERROR,
    TOO_MANY_REQUESTS,
    FakeAlphaVantage,
    FakeYahoo,
    Reply,
    timeout,
    upstream,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*inplace.*:Warning")

KINDS = ("quote", "history", "fundamentals", "news", "search")
AV_KEY = "AVTESTKEY0123456789"
AAPL_GLOBAL_QUOTE = {"Global Quote": {**upstream("alpha_vantage", "global_quote_ibm.json")["Global Quote"], "01. symbol": "AAPL"}}


def settings_for(tmp_path, *providers: str, **market):
    return make_settings(tmp_path, market={"providers": {k: list(providers) for k in KINDS},
                                           "alpha_vantage": {"api_key": AV_KEY}, **market})


@pytest.fixture
def yahoo():
    fake = FakeYahoo().healthy()
    for symbol in ("AAPL", "MSFT"):
        fake.tz(symbol, "America/New_York")  # the normal case: yfinance cached the zones on an earlier day
    return fake


def providers(settings, yahoo=None, av=None):
    """The real adapters over the faked HTTP (the offline provider is built from settings as usual)."""
    from shared.cache import CacheBackend

    cache = CacheBackend.from_config(settings)
    built = {}
    if yahoo is not None:
        built["yahoo"] = YahooProvider(session=yahoo.session())
    if av is not None:
        built["alpha_vantage"] = AlphaVantageProvider(api_key=AV_KEY, cache=cache, transport=av.transport)
    return {"cache": cache, "market_providers": built}


def cached_quote(client, symbol):
    core = client.core
    return core.cache.get_json(core.cache.key("market", "quote", symbol))


@pytest.mark.parametrize("outage", [lambda: SERVER_ERROR, timeout], ids=["5xx", "timeout"])
def test_yahoo_outage_quote_is_served_by_the_next_provider(tmp_path, yahoo, outage):
    yahoo.fail_data(outage())
    av = FakeAlphaVantage({"GLOBAL_QUOTE": Reply(200, AAPL_GLOBAL_QUOTE)})
    settings = settings_for(tmp_path, "yahoo", "alpha_vantage", "offline")
    with serve(settings, **providers(settings, yahoo, av)) as client:
        r = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["provenance"]["source"] == "alpha_vantage" and body["provenance"]["fallback_from"] == ["yahoo"]
        assert body["price"] == 221.82 and body["currency"] == "USD"
        assert "not_found" not in cached_quote(client, "AAPL")
        assert yahoo.data_requests(), "Yahoo was really asked"

        av.routes["GLOBAL_QUOTE"] = "information_daily_limit.json"  # Alpha Vantage throttled too: offline answers
        r = client.get("/api/v1/market/MSFT/quote", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["provenance"]["source"] == "offline"
        assert r.json()["provenance"]["fallback_from"] == ["yahoo", "alpha_vantage"]


def test_yahoo_outage_serves_the_cached_quote_flagged_stale_with_the_reason(tmp_path, yahoo):
    av = FakeAlphaVantage({"GLOBAL_QUOTE": "information_daily_limit.json"})
    settings = settings_for(tmp_path, "yahoo", "alpha_vantage")
    with serve(settings, **providers(settings, yahoo, av)) as client:
        fresh = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert fresh.status_code == 200 and fresh.json()["provenance"]["source"] == "yahoo", fresh.text
        # A day later: past its freshness and revalidation window, still kept for outages.
        env = cached_quote(client, "AAPL")
        env.update({k: env[k] - 86400 for k in ("fetched_at", "fresh_until", "swr_until")})
        client.core.cache.set_json(client.core.cache.key("market", "quote", "AAPL"), env, ttl=3600)
        yahoo.fail_data(SERVER_ERROR)
        r = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert r.status_code == 200, r.text
        prov = r.json()["provenance"]
        assert prov["stale"] is True and prov["source"] == "yahoo" and r.json()["price"] == fresh.json()["price"]
        assert "yahoo (unavailable)" in prov["stale_reason"] and "alpha_vantage (rate_limited)" in prov["stale_reason"]
        assert "not_found" not in cached_quote(client, "AAPL")


def test_yahoo_outage_without_cache_is_502_naming_the_provider_never_404(tmp_path, yahoo):
    yahoo.fail_data(SERVER_ERROR)
    settings = settings_for(tmp_path, "yahoo", breaker_failure_threshold=10)  # every request reaches Yahoo
    with serve(settings, **providers(settings, yahoo)) as client:
        for symbol in ("AAPL", "ZZZZZZ"):
            body = assert_problem(client.get(f"/api/v1/market/{symbol}/quote", headers=ADMIN), 502, "market-data-unavailable")
            assert body["provider"] == "yahoo" and body["outcome"] == "unavailable"
            assert cached_quote(client, symbol) is None  # nothing negative cached
        # The symbol lookup does not call a symbol unknown because search failed either.
        assert_problem(client.get("/api/v1/symbols/VOD.L", headers=ADMIN), 502)
        yahoo.healthy()
        assert client.get("/api/v1/market/AAPL/quote", headers=ADMIN).json()["provenance"]["source"] == "yahoo"
        assert_problem(client.get("/api/v1/market/ZZZZZZ/quote", headers=ADMIN), 404, "not-found")  # Yahoo says so


def test_batch_quotes_report_a_per_symbol_rate_limit_as_such(tmp_path, yahoo):
    yahoo.on(r"/v8/finance/chart/MSFT$", TOO_MANY_REQUESTS)
    settings = settings_for(tmp_path, "yahoo")
    with serve(settings, **providers(settings, yahoo)) as client:
        r = client.get("/api/v1/market/quotes?symbols=AAPL,MSFT", headers=ADMIN)
        assert r.status_code == 200, r.text
        aapl, msft = r.json()["items"]
        assert aapl["provenance"]["source"] == "yahoo"
        assert msft["status"] == 502 and msft["type"] == "/problems/upstream-rate-limited", msft


def test_bad_alpha_vantage_key_is_misconfigured_never_unknown_symbol(tmp_path):
    av = FakeAlphaVantage(default="error_invalid_apikey.json")
    settings = settings_for(tmp_path, "alpha_vantage")
    with serve(settings, **providers(settings, av=av)) as client:
        for symbol in ("AAPL", "ZZZZZZ", "IBM"):
            body = assert_problem(client.get(f"/api/v1/market/{symbol}/quote", headers=ADMIN), 503, "upstream-misconfigured")
            assert body["provider"] == "alpha_vantage", body
            assert AV_KEY not in str(body)
        assert len(av.requests) == 1  # disabled after the first rejection, not asked again per symbol

        public = client.get("/api/health").json()["components"]["market_data"]
        assert "providers" not in (public.get("details") or {})
        detail = client.get("/api/health", headers=ADMIN).json()["components"]["market_data"]
        assert detail["status"] != "healthy"
        assert detail["details"]["misconfigured"] == ["alpha_vantage"]
        av_state = detail["details"]["providers"]["alpha_vantage"]
        assert av_state["misconfigured"] is True and "API key" in av_state["last_error"] and AV_KEY not in str(detail)


def test_bad_alpha_vantage_key_falls_back_to_the_next_provider(tmp_path):
    av = FakeAlphaVantage(default="error_invalid_apikey.json")
    settings = settings_for(tmp_path, "alpha_vantage", "offline")
    with serve(settings, **providers(settings, av=av)) as client:
        r = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert r.status_code == 200 and r.json()["provenance"]["fallback_from"] == ["alpha_vantage"], r.text


def test_provider_that_cannot_run_is_named_in_the_start_up_log_and_health(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    settings = make_settings(tmp_path, market={"providers": {k: ["alpha_vantage", "offline"] for k in KINDS}})
    with serve(settings) as client:
        started = [r for r in caplog.records if r.levelno == logging.ERROR and "alpha_vantage" in r.getMessage()]
        assert started and "ALPHA_VANTAGE_API_KEY" in started[0].getMessage()
        detail = client.get("/api/health", headers=ADMIN).json()["components"]["market_data"]["details"]
        assert detail["misconfigured"] == ["alpha_vantage"] and "ALPHA_VANTAGE_API_KEY" in detail["providers"]["alpha_vantage"]["reason"]
        prov = client.get("/api/v1/market/AAPL/quote", headers=ADMIN).json()["provenance"]
        assert prov["source"] == "offline" and prov["fallback_from"] == ["alpha_vantage"]
        only_av = make_settings(tmp_path / "only", market={"providers": {k: ["alpha_vantage"] for k in KINDS}})
    with serve(only_av) as client:  # nobody else can answer: 503 naming the setting, never 404
        body = assert_problem(client.get("/api/v1/market/ZZZZZZ/quote", headers=ADMIN), 503, "upstream-misconfigured")
        assert "ALPHA_VANTAGE_API_KEY" in body["detail"] or "ALPHA_VANTAGE_API_KEY" in str(body["attempted"])


def test_yahoo_outage_behind_offline_never_calls_a_real_symbol_unknown(tmp_path, yahoo):
    """The deployed default yahoo,offline: the offline catalogue is a demo subset, so during a Yahoo outage a
    symbol outside it (VOD.L) is 502, not 404; catalogue symbols are served with fallback_from ["yahoo"]."""
    yahoo.fail_data(SERVER_ERROR)
    settings = settings_for(tmp_path, "yahoo", "offline", breaker_failure_threshold=10)
    with serve(settings, **providers(settings, yahoo)) as client:
        body = assert_problem(client.get("/api/v1/market/VOD.L/quote", headers=ADMIN), 502, "market-data-unavailable")
        assert [a["outcome"] for a in body["attempted"]] == ["unavailable", "unsupported"]
        assert_problem(client.get("/api/v1/symbols/VOD.L", headers=ADMIN), 502)
        assert_problem(client.get("/api/v1/market/VOD.L/fundamentals", headers=ADMIN), 502)
        r = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert r.status_code == 200 and r.json()["provenance"]["fallback_from"] == ["yahoo"], r.text
        items = client.get("/api/v1/market/quotes?symbols=AAPL,VOD.L", headers=ADMIN).json()["items"]
        assert items[0]["provenance"]["source"] == "offline" and items[1]["status"] == 502


def _expire(client, symbol, *, revalidating):
    """Make the cached quote of `symbol` no longer fresh: still inside its stale-while-revalidate window (served,
    refreshed in the background) or past it (reloaded in the request)."""
    import time

    now = time.time()
    env = cached_quote(client, symbol)
    env.update(fetched_at=now - 3600, fresh_until=now - 1, swr_until=now + 600 if revalidating else now - 1)
    client.core.cache.set_json(client.core.cache.key("market", "quote", symbol), env, ttl=86400)


def _background_refreshes(client, n, polls=500):
    """Wait until `n` background refreshes have finished (whatever their outcome); their counts."""
    import time

    for _ in range(polls):
        done = {k: v for k, v in client.core.services.market.stats()["background_refresh"].items() if k != "scheduled"}
        if sum(done.values()) >= n:
            return done
        time.sleep(0.01)
    raise AssertionError("background refresh did not finish")


def test_a_fallbacks_unknown_symbol_during_the_primarys_outage_is_not_an_unknown_symbol(tmp_path, yahoo):
    """Yahoo down, and Alpha Vantage, asked next, does not list the symbol (`{"Global Quote": {}}` and no search
    match: its answers for a symbol it lacks; its catalogue is narrower than Yahoo's). That says nothing about a
    symbol the primary could not be asked about: 502 naming Yahoo, never 404, no negative entry, and a cached
    quote keeps being served (stale) instead of being replaced by "unknown symbol"."""
    av = FakeAlphaVantage({"GLOBAL_QUOTE": "global_quote_empty.json", "SYMBOL_SEARCH": Reply(200, {"bestMatches": []})})
    settings = settings_for(tmp_path, "yahoo", "alpha_vantage", breaker_failure_threshold=100)
    with serve(settings, **providers(settings, yahoo, av)) as client:
        assert client.get("/api/v1/market/AAPL/quote", headers=ADMIN).json()["provenance"]["source"] == "yahoo"
        yahoo.fail_data(SERVER_ERROR)

        body = assert_problem(client.get("/api/v1/market/MSFT/quote", headers=ADMIN), 502, "market-data-unavailable")
        assert body["provider"] == "yahoo", body
        assert [(a["provider"], a["outcome"]) for a in body["attempted"]] == [("yahoo", "unavailable"),
                                                                               ("alpha_vantage", "not_found")]
        assert cached_quote(client, "MSFT") is None
        assert assert_problem(client.get("/api/v1/symbols/RDDT", headers=ADMIN), 502)["provider"] == "yahoo"  # not seeded

        _expire(client, "AAPL", revalidating=True)
        assert client.get("/api/v1/market/AAPL/quote", headers=ADMIN).json()["provenance"]["stale"] is True
        assert _background_refreshes(client, 1) == {"failed": 1}
        assert "not_found" not in cached_quote(client, "AAPL")  # the quote we had is still there
        _expire(client, "AAPL", revalidating=False)  # asked in the request: the failure serves it stale
        r = client.get("/api/v1/market/AAPL/quote", headers=ADMIN)
        assert r.status_code == 200 and r.json()["provenance"]["stale"] is True, r.text
        assert "yahoo (unavailable)" in r.json()["provenance"]["stale_reason"]


@pytest.mark.parametrize("retry_after, expected", [
    ("99999999", None),  # absurd: the breaker waits at most its cap
    ("inf", None),
    (None, 60),  # an HTTP date two minutes ahead (RFC 9110 10.2.3) is honoured: about 120 s
])
def test_yahoos_retry_after_is_read_like_every_upstreams_and_cannot_hold_the_breaker_open_for_good(
        tmp_path, yahoo, retry_after, expected):
    import email.utils
    import time

    header = retry_after or email.utils.formatdate(time.time() + 120, usegmt=True)
    yahoo.fail_data(Reply(429, "Too Many Requests\r\n", {"content-type": "text/html", "Retry-After": header}))
    settings = settings_for(tmp_path, "yahoo")
    with serve(settings, **providers(settings, yahoo)) as client:
        body = assert_problem(client.get("/api/v1/market/AAPL/quote", headers=ADMIN), 502, "upstream-rate-limited")
        breaker = client.get("/api/health", headers=ADMIN).json()["components"]["market_data"]["details"]["providers"]["yahoo"]
        assert breaker["state"] == "open"
        cap = client.core.services.market.chain.breakers.policy.max_retry_after_s
        assert breaker["retry_in_s"] <= cap
        if expected is not None:
            assert expected < body["retry_after"] <= 120 and expected < breaker["retry_in_s"] <= 120, (body, breaker)


def test_yahoos_error_object_in_a_200_is_a_failure_not_an_empty_answer(tmp_path, yahoo):
    """Search and news come back from yfinance as [] for such an answer: that was "no match" (GET /symbols/X a 404)
    and "no news" (an empty list, cached for the news TTL)."""
    yahoo.fail_data(ERROR_OBJECT_IN_200)
    settings = settings_for(tmp_path, "yahoo", breaker_failure_threshold=100)
    with serve(settings, **providers(settings, yahoo)) as client:
        body = assert_problem(client.get("/api/v1/symbols/RDDT", headers=ADMIN), 502, "market-data-unavailable")
        assert body["provider"] == "yahoo" and "Internal Server Error" in body["attempted"][0]["error"], body
        assert_problem(client.get("/api/v1/market/AAPL/news", headers=ADMIN), 502, "market-data-unavailable")
        assert_problem(client.get("/api/v1/symbols?q=reddit", headers=ADMIN), 502, "market-data-unavailable")
        yahoo.healthy()
        assert client.get("/api/v1/market/AAPL/news", headers=ADMIN).json()["items"]  # nothing empty was cached


def test_alpha_vantages_demo_key_is_misconfigured(tmp_path):
    """`apikey=demo` (the key in Alpha Vantage's documentation URLs) answers "The **demo** API key is for demo
    purposes only" for real symbols: our configuration, not an outage to retry every cool-down."""
    av = FakeAlphaVantage(default="information_demo_key.json")
    settings = settings_for(tmp_path, "alpha_vantage", "offline")
    with serve(settings, **providers(settings, av=av)) as client:
        for symbol in ("AAPL", "MSFT"):
            r = client.get(f"/api/v1/market/{symbol}/quote", headers=ADMIN)
            assert r.status_code == 200 and r.json()["provenance"]["fallback_from"] == ["alpha_vantage"], r.text
        assert len(av.requests) == 1  # disabled after the first answer, not asked again per symbol
        detail = client.get("/api/health", headers=ADMIN).json()["components"]["market_data"]["details"]
        assert detail["misconfigured"] == ["alpha_vantage"], detail


def test_rate_limited_primary_and_misconfigured_fallback_answer_as_rate_limited(tmp_path, yahoo):
    """Yahoo throttles us and Alpha Vantage rejects our key: the answer is Yahoo's rate limit (with when to come
    back), not "unavailable" naming the provider whose configuration is wrong."""
    yahoo.fail_data(Reply(429, "Too Many Requests\r\n", {"content-type": "text/html", "Retry-After": "30"}))
    av = FakeAlphaVantage(default="error_invalid_apikey.json")
    settings = settings_for(tmp_path, "yahoo", "alpha_vantage")
    with serve(settings, **providers(settings, yahoo, av)) as client:
        for _ in range(2):  # the first asks both; the second finds both breakers open
            body = assert_problem(client.get("/api/v1/market/AAPL/quote", headers=ADMIN), 502, "upstream-rate-limited")
            assert body["provider"] == "yahoo" and body["outcome"] == "rate_limited" and 0 < body["retry_after"] <= 60, body
            assert [a["outcome"] for a in body["attempted"]][1] == "misconfigured"


def test_a_batch_answer_in_hand_is_used_after_another_symbol_opened_the_breaker(tmp_path, yahoo):
    """One batch call: Yahoo throttles NVDA, the first symbol asked (its breaker opens at once), says TSLA does not
    exist and prices AAPL. Those answers are in hand: TSLA is a 404 and AAPL priced, not both "rate limited"
    because NVDA was settled first."""
    yahoo.tz("NVDA", "America/New_York")
    yahoo.tz("TSLA", "America/New_York")
    yahoo.on(r"/v8/finance/chart/NVDA$", TOO_MANY_REQUESTS)
    settings = settings_for(tmp_path, "yahoo")
    with serve(settings, **providers(settings, yahoo)) as client:
        r = client.get("/api/v1/market/quotes?symbols=NVDA,TSLA,AAPL", headers=ADMIN)
        assert r.status_code == 200, r.text
        nvda, tsla, aapl = r.json()["items"]
        assert nvda["status"] == 502 and nvda["type"] == "/problems/upstream-rate-limited", nvda
        assert tsla["status"] == 404, tsla
        assert aapl["provenance"]["source"] == "yahoo"
