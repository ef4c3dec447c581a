"""Alpha Vantage normalisers and adapter over httpx.MockTransport with its documented payloads and real error texts."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import httpx
import pytest

from shared.errors import (
    MarketDataUnavailable,
    NotFound,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    UpstreamUnsupported,
)
from shared.market.providers import alpha_vantage as av
from shared.market.providers.alpha_vantage import AlphaVantageProvider
from tests.unit.market.market_fakes import FakeCache
from tests.upstream import FakeAlphaVantage, Reply, upstream


def load_payload(name: str):
    return upstream("alpha_vantage", name)

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=timezone.utc)
KEY = "SECRETKEY123"


def test_global_quote_strings_to_numbers():
    q = av.normalize_quote("IBM", load_payload("global_quote_ibm.json"), NOW)
    assert q.price == 221.82 and q.previous_close == 219.96 and q.change == 1.86
    assert q.change_percent == pytest.approx(0.8456) and q.volume == 3274841 and q.open == 219.79
    assert q.provenance.source == "alpha_vantage" and q.provenance.as_of == NOW  # session running: as of now (was the bar's midnight)


def test_empty_global_quote_is_unknown_symbol():
    with pytest.raises(NotFound):
        av.normalize_quote("ZZZZ", load_payload("global_quote_empty.json"), NOW)


def test_daily_series_sorted_and_cut():
    h = av.normalize_daily("IBM", load_payload("daily_ibm.json"), NOW)
    assert [b.ts.date() for b in h.bars] == [date(2024, 12, 31), date(2025, 1, 7), date(2025, 1, 8), date(2025, 1, 10)]
    assert h.bars[-1].close == 221.82 and h.bars[-1].volume == 3274841
    cut = av.normalize_daily("IBM", load_payload("daily_ibm.json"), NOW, date(2025, 1, 1), date(2025, 1, 9))
    assert len(cut.bars) == 2
    with pytest.raises(MarketDataUnavailable):
        av.normalize_daily("IBM", load_payload("daily_ibm.json"), NOW, date(2020, 1, 1), date(2020, 2, 1))


def test_overview():
    f = av.normalize_overview("IBM", load_payload("overview_ibm.json"), NOW)
    assert f.name == "International Business Machines" and f.exchange == "NYSE" and f.sector == "TECHNOLOGY"
    assert f.market_cap == 205117735000 and f.pe_ratio == 32.29 and f.forward_pe == 21.88 and f.eps == 6.87
    assert f.dividend_yield == 0.0301 and f.beta == 0.719 and f.operating_margin == 0.147 and f.revenue == 62753001000
    assert (f.week52_low, f.week52_high) == (157.88, 239.35) and f.currency == "USD"


def test_overview_of_an_etf_is_unsupported_not_unknown():
    # OVERVIEW answers {} for ETFs and funds: it has no such data; the symbol exists.
    with pytest.raises(UpstreamUnsupported):
        av.normalize_overview("SPY", load_payload("overview_empty.json"), NOW)


def test_news_sentiment_prefers_ticker_score():
    n = av.normalize_news("AAPL", load_payload("news_aapl.json"), NOW, limit=10)
    assert [i.publisher for i in n.items] == ["Motley Fool", "Benzinga"]  # newest first
    assert n.items[1].sentiment == 0.305 and n.items[0].sentiment == -0.18
    assert n.items[1].published_at == datetime(2025, 1, 5, 9, 30, tzinfo=timezone.utc)


def test_symbol_search_in_our_spelling_with_the_exchange_not_the_region():
    res = av.normalize_search(load_payload("search_tesco.json"), 5)
    assert [m.symbol for m in res] == ["TSCO", "TSCDY", "TSCO.L"] and res[0].score == 0.8889 and res[0].type == "equity"
    london = res[2]
    assert (london.exchange, london.currency) == ("LSE", "GBX")  # not "United Kingdom"
    assert res[0].exchange is None  # AV does not say which US exchange: unknown, not "United States"
    assert [m.symbol for m in av.normalize_search(load_payload("search_tesco.json"), 2)] == ["TSCO", "TSCDY"]


@pytest.mark.parametrize("payload, error", [
    ("information_daily_limit.json", UpstreamRateLimited),
    ("information_burst.json", UpstreamRateLimited),
    ("note_legacy.json", UpstreamRateLimited),
    ("information_premium.json", UpstreamMisconfigured),
    ("information_demo_key.json", UpstreamMisconfigured),
    ("information_invalid_inputs.json", UpstreamUnsupported),
    ("error_invalid_call.json", NotFound),
    ("error_invalid_call_global_quote.json", NotFound),
    ("error_invalid_apikey.json", UpstreamMisconfigured),
])
def test_error_payloads(payload, error):
    from shared.logging import register_secrets

    register_secrets([KEY])
    with pytest.raises(error) as ei:
        av.check_payload(load_payload(payload), "IBM")
    assert KEY not in str(ei.value) and KEY not in ei.value.detail


def test_an_invalid_key_is_never_an_unknown_symbol():
    for symbol in ("IBM", "AAPL", None):
        with pytest.raises(UpstreamMisconfigured):
            av.check_payload(load_payload("error_invalid_apikey.json"), symbol)


def make(routes, *, quota=25, cache=None):
    fake = FakeAlphaVantage(routes)
    cache = cache or FakeCache(lambda: NOW)
    p = AlphaVantageProvider(api_key=KEY, cache=cache, daily_quota=quota, transport=fake.transport, clock=lambda: NOW)
    return p, fake.requests, cache


def test_adapter_calls_and_params():
    p, seen, _ = make({"GLOBAL_QUOTE": "global_quote_ibm.json", "TIME_SERIES_DAILY": "daily_ibm.json",
                       "OVERVIEW": "overview_ibm.json", "NEWS_SENTIMENT": "news_aapl.json", "SYMBOL_SEARCH": "search_tesco.json"})
    assert p.get_quote("IBM").price == 221.82
    assert len(p.get_history("IBM", period="1mo").bars) == 4
    assert [b.close for b in p.get_history("IBM", period="1d").bars] == [221.82]
    assert p.get_fundamentals("IBM").name.startswith("International")
    assert len(p.get_news("AAPL", 1).items) == 1
    assert p.search_symbols("tesco", 3)[0].symbol == "TSCO"
    params = [dict(r.url.params) for r in seen]
    assert params[0] == {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": KEY}
    assert params[1]["outputsize"] == "compact" and params[4]["tickers"] == "AAPL" and params[5]["keywords"] == "tesco"


def test_adapter_unsupported_requests_do_not_spend_quota():
    p, seen, _ = make({})
    with pytest.raises(UpstreamUnsupported):
        p.get_history("IBM", period="5d", interval="1h")
    with pytest.raises(UpstreamUnsupported):
        p.get_history("IBM", period="1y")
    for unmapped in ("0700.HK", "^GSPC", "EURUSD=X"):  # asked as is, Alpha Vantage would call them unknown
        with pytest.raises(UpstreamUnsupported):
            p.get_quote(unmapped)
    assert seen == [] and p.used_today() == 0


def test_symbols_are_spelled_the_alpha_vantage_way_on_the_wire_and_ours_in_answers():
    quote = {"Global Quote": {**load_payload("global_quote_ibm.json")["Global Quote"], "01. symbol": "VOD.LON"}}
    daily = load_payload("daily_ibm.json")
    daily["Meta Data"]["2. Symbol"] = "SAP.DEX"
    p, seen, _ = make({"GLOBAL_QUOTE": Reply(200, quote), "TIME_SERIES_DAILY": Reply(200, daily)})
    q = p.get_quote("VOD.L")
    h = p.get_history("SAP.DE", period="1mo")
    assert [r.url.params["symbol"] for r in seen] == ["VOD.LON", "SAP.DEX"]
    assert (q.symbol, q.currency) == ("VOD.L", "GBX")  # London quotes pence; never assumed USD
    assert (h.symbol, h.currency) == ("SAP.DE", "EUR")


def test_daily_bars_are_stamped_at_the_exchanges_midnight_like_yahoos():
    from zoneinfo import ZoneInfo

    us = av.normalize_daily("IBM", load_payload("daily_ibm.json"), NOW)
    assert us.bars[-1].ts == datetime(2025, 1, 10, 5, 0, tzinfo=timezone.utc)  # 00:00 New York, as Yahoo stamps it
    de = av.normalize_daily("SAP.DE", load_payload("daily_ibm.json"), NOW)
    assert de.bars[-1].ts.astimezone(ZoneInfo("Europe/Berlin")).hour == 0 and de.currency == "EUR"


def test_quota_counted_per_utc_day_and_enforced():
    p, seen, cache = make({"GLOBAL_QUOTE": "global_quote_ibm.json"}, quota=2)
    fake = FakeAlphaVantage({"GLOBAL_QUOTE": "global_quote_ibm.json"})
    p.get_quote("IBM")
    p.get_quote("IBM")
    with pytest.raises(UpstreamRateLimited) as ei:
        p.get_quote("IBM")
    assert len(seen) == 2 and "quota" in ei.value.detail
    assert cache.get_json(cache.key("market", "av_quota", "2025-01-10")) == 3
    tomorrow = AlphaVantageProvider(api_key=KEY, cache=cache, daily_quota=2, transport=fake.transport,
                                    clock=lambda: datetime(2025, 1, 11, 0, 0, 1, tzinfo=timezone.utc))
    assert tomorrow.get_quote("IBM").price == 221.82


@pytest.mark.parametrize("reply, error", [
    (Reply(503, "Service Unavailable"), MarketDataUnavailable),
    (Reply(429, "Too Many Requests"), UpstreamRateLimited),
    (Reply(429, "Too Many Requests", {"Retry-After": "30"}), UpstreamRateLimited),
    (Reply(200, b""), MarketDataUnavailable),
    (Reply(200, '{"Global Quote": {"01. symbol": "IB'), MarketDataUnavailable),
    (httpx.ReadTimeout("timed out"), MarketDataUnavailable),
    (httpx.RemoteProtocolError("peer closed connection without sending complete message body"), MarketDataUnavailable),
    (Reply(200, upstream("alpha_vantage", "error_invalid_apikey.json")), UpstreamMisconfigured),
])
def test_http_outcomes_are_classified(reply, error):
    p, _, _ = make({"GLOBAL_QUOTE": reply})
    with pytest.raises(error) as ei:
        p.get_quote("IBM")
    assert ei.value.provider == "alpha_vantage"
    if isinstance(reply, Reply) and "Retry-After" in reply.headers:
        assert ei.value.retry_after == 30.0


def test_apikey_never_logged_nor_in_errors(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the app's logging setup quiets httpx; this test needs it loud
    p, seen, _ = make({"GLOBAL_QUOTE": "information_daily_limit.json", "OVERVIEW": "overview_ibm.json"})
    # caplog's handler has none of the app's filters: only redaction at the source can protect it

    def boom(request):
        raise httpx.ConnectError(f"cannot connect to {request.url}")

    with pytest.raises(UpstreamRateLimited) as e1:
        p.get_quote("IBM")
    p.get_fundamentals("IBM")
    failing = AlphaVantageProvider(api_key=KEY, cache=FakeCache(lambda: NOW), transport=httpx.MockTransport(boom), clock=lambda: NOW)
    with pytest.raises(MarketDataUnavailable) as e2:
        failing.get_quote("IBM")
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the request URL...
    assert KEY not in caplog.text  # ...but redacted
    for exc in (e1.value, e2.value):
        assert KEY not in str(exc) and KEY not in repr(exc.extra) and exc.__cause__ is None
    assert KEY not in repr(p)


def test_weekend_global_quote_is_as_of_session_close_and_currency_from_the_listing():
    saturday = datetime(2025, 1, 11, 15, 0, tzinfo=timezone.utc)
    q = av.normalize_quote("IBM", load_payload("global_quote_ibm.json"), saturday)
    assert q.provenance.as_of == datetime(2025, 1, 10, 21, 0, tzinfo=timezone.utc)
    assert q.currency == "USD"  # GLOBAL_QUOTE does not say: the listing currency of a catalogued symbol
    assert av.normalize_quote("SAP.DE", load_payload("global_quote_ibm.json"), saturday).currency == "EUR"  # XETRA's
    assert av.normalize_quote("X.HK", load_payload("global_quote_ibm.json"), saturday).currency is None  # never assumed


AV_FAULTS = {
    "5xx": (Reply(503, "Service Unavailable"), "unavailable", "closed"),
    "timeout": (httpx.ReadTimeout("timed out"), "unavailable", "closed"),
    "connection reset": (httpx.RemoteProtocolError("peer closed connection"), "unavailable", "closed"),
    "429": (Reply(429, "Too Many Requests"), "rate_limited", "open"),
    "429 retry-after": (Reply(429, "Too Many Requests", {"Retry-After": "120"}), "rate_limited", "open"),
    "throttle in a 200 body": (Reply(200, upstream("alpha_vantage", "information_daily_limit.json")), "rate_limited", "open"),
    "empty body": (Reply(200, b""), "unavailable", "closed"),
    "malformed json": (Reply(200, '{"Global Quote": {"01. sym'), "unavailable", "closed"),
    "invalid key": (Reply(200, upstream("alpha_vantage", "error_invalid_apikey.json")), "misconfigured", "disabled"),
}


@pytest.mark.parametrize("fault", AV_FAULTS)
def test_outage_matrix_through_the_data_manager(fault):
    from shared.market.manager import DataManager
    from shared.market.providers.offline import OfflineProvider
    from tests.unit.market.market_fakes import FakeClock, FakeSingleFlight, SyncExecutor, make_settings

    reply, outcome, state = AV_FAULTS[fault]
    clock = FakeClock()
    cache = FakeCache(clock)
    fake = FakeAlphaVantage({"GLOBAL_QUOTE": reply})
    av_provider = AlphaVantageProvider(api_key=KEY, cache=cache, transport=fake.transport, clock=clock)
    dm = DataManager(make_settings({"quote": ["alpha_vantage", "offline"]}), cache, FakeSingleFlight(), clock=clock,
                     executor=SyncExecutor(), providers={"alpha_vantage": av_provider, "offline": OfflineProvider(clock=clock)})
    q = dm.get_quote("IBM")
    assert q.provenance.source == "offline" and q.provenance.fallback_from == ["alpha_vantage"]
    assert dm.stats()["upstream"]["alpha_vantage"] == {outcome: 1}
    assert dm.health_check()[1]["providers"]["alpha_vantage"]["state"] == state
    cached = cache.get_json(cache.key("market", "quote", "IBM"))
    assert cached["v"]["provenance"]["source"] == "offline" and "not_found" not in cached
    if state != "closed":  # open or disabled: the next symbol does not reach Alpha Vantage
        dm.get_quote("MSFT")
        assert len(fake.requests) == 1
