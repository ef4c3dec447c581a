"""Alpha Vantage normalisers and adapter over httpx.MockTransport with recorded payloads (incl. every error body)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import httpx
import pytest

from shared.errors import MarketDataUnavailable, NotFound, UpstreamError, UpstreamRateLimited
from shared.market.providers import alpha_vantage as av
from shared.market.providers.alpha_vantage import AlphaVantageProvider
from shared.market.protocols import ProviderUnsupported

from tests.unit.market.market_fakes import FakeCache, load_payload

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=timezone.utc)
KEY = "SECRETKEY123"


def test_global_quote_strings_to_numbers():
    q = av.normalize_quote("IBM", load_payload("av_global_quote_ibm.json"), NOW)
    assert q.price == 221.82 and q.previous_close == 219.96 and q.change == 1.86
    assert q.change_percent == pytest.approx(0.8456) and q.volume == 3274841 and q.open == 219.79
    assert q.provenance.source == "alpha_vantage" and q.provenance.as_of == NOW  # session running: as of now (was the bar's midnight)


def test_empty_global_quote_is_unknown_symbol():
    with pytest.raises(NotFound):
        av.normalize_quote("ZZZZ", load_payload("av_global_quote_empty.json"), NOW)


def test_daily_series_sorted_and_cut():
    h = av.normalize_daily("IBM", load_payload("av_daily_ibm.json"), NOW)
    assert [b.ts.date() for b in h.bars] == [date(2024, 12, 31), date(2025, 1, 7), date(2025, 1, 8), date(2025, 1, 10)]
    assert h.bars[-1].close == 221.82 and h.bars[-1].volume == 3274841
    cut = av.normalize_daily("IBM", load_payload("av_daily_ibm.json"), NOW, date(2025, 1, 1), date(2025, 1, 9))
    assert len(cut.bars) == 2
    with pytest.raises(MarketDataUnavailable):
        av.normalize_daily("IBM", load_payload("av_daily_ibm.json"), NOW, date(2020, 1, 1), date(2020, 2, 1))


def test_overview():
    f = av.normalize_overview("IBM", load_payload("av_overview_ibm.json"), NOW)
    assert f.name == "International Business Machines" and f.exchange == "NYSE" and f.sector == "TECHNOLOGY"
    assert f.market_cap == 205117735000 and f.pe_ratio == 32.29 and f.forward_pe == 21.88 and f.eps == 6.87
    assert f.dividend_yield == 0.0301 and f.beta == 0.719 and f.operating_margin == 0.147 and f.revenue == 62753001000
    assert (f.week52_low, f.week52_high) == (157.88, 239.35)
    with pytest.raises(NotFound):
        av.normalize_overview("ZZZZ", load_payload("av_overview_empty.json"), NOW)


def test_news_sentiment_prefers_ticker_score():
    n = av.normalize_news("AAPL", load_payload("av_news_aapl.json"), NOW, limit=10)
    assert [i.publisher for i in n.items] == ["Motley Fool", "Benzinga"]  # newest first
    assert n.items[1].sentiment == 0.305 and n.items[0].sentiment == -0.18
    assert n.items[1].published_at == datetime(2025, 1, 5, 9, 30, tzinfo=timezone.utc)


def test_symbol_search():
    res = av.normalize_search(load_payload("av_search_tesco.json"), 2)
    assert [m.symbol for m in res] == ["TSCO", "TSCDY"] and res[0].score == 0.8889 and res[0].type == "equity"


@pytest.mark.parametrize("payload, error", [
    ("av_information_daily_limit.json", UpstreamRateLimited),
    ("av_information_burst.json", UpstreamRateLimited),
    ("av_note_legacy.json", UpstreamRateLimited),
    ("av_information_premium.json", MarketDataUnavailable),
    ("av_information_invalid_inputs.json", NotFound),
    ("av_error_message.json", NotFound),
])
def test_error_payloads(payload, error):
    with pytest.raises(error) as ei:
        av.check_payload(load_payload(payload), "IBM", KEY)
    assert KEY not in str(ei.value) and KEY not in ei.value.detail


def transport_for(routes, seen):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        fn = request.url.params["function"]
        body = routes[fn]
        if isinstance(body, int):
            return httpx.Response(body, text="oops")
        return httpx.Response(200, json=load_payload(body))

    return httpx.MockTransport(handler)


def make(routes, *, quota=25, cache=None):
    seen = []
    cache = cache or FakeCache(lambda: NOW)
    p = AlphaVantageProvider(api_key=KEY, cache=cache, daily_quota=quota, transport=transport_for(routes, seen), clock=lambda: NOW)
    return p, seen, cache


def test_adapter_calls_and_params():
    p, seen, _ = make({"GLOBAL_QUOTE": "av_global_quote_ibm.json", "TIME_SERIES_DAILY": "av_daily_ibm.json",
                       "OVERVIEW": "av_overview_ibm.json", "NEWS_SENTIMENT": "av_news_aapl.json", "SYMBOL_SEARCH": "av_search_tesco.json"})
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
    with pytest.raises(ProviderUnsupported):
        p.get_history("IBM", period="5d", interval="1h")
    with pytest.raises(ProviderUnsupported):
        p.get_history("IBM", period="1y")
    assert seen == [] and p.used_today() == 0


def test_quota_counted_per_utc_day_and_enforced():
    p, seen, cache = make({"GLOBAL_QUOTE": "av_global_quote_ibm.json"}, quota=2)
    p.get_quote("IBM")
    p.get_quote("IBM")
    with pytest.raises(UpstreamRateLimited) as ei:
        p.get_quote("IBM")
    assert len(seen) == 2 and "quota" in ei.value.detail
    assert cache.get_json(cache.key("market", "av_quota", "2025-01-10")) == 3
    tomorrow = AlphaVantageProvider(api_key=KEY, cache=cache, daily_quota=2, transport=transport_for({"GLOBAL_QUOTE": "av_global_quote_ibm.json"}, seen),
                                    clock=lambda: datetime(2025, 1, 11, 0, 0, 1, tzinfo=timezone.utc))
    assert tomorrow.get_quote("IBM").price == 221.82


def test_http_errors_are_mapped():
    p, _, _ = make({"GLOBAL_QUOTE": 503, "OVERVIEW": 429})
    with pytest.raises(UpstreamError) as ei:
        p.get_quote("IBM")
    assert type(ei.value) is UpstreamError and ei.value.status == 502
    with pytest.raises(UpstreamRateLimited):
        p.get_fundamentals("IBM")


def test_apikey_never_logged_nor_in_errors(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the app's logging setup quiets httpx; this test needs it loud
    p, seen, _ = make({"GLOBAL_QUOTE": "av_information_daily_limit.json", "OVERVIEW": "av_overview_ibm.json"})

    def boom(request):
        raise httpx.ConnectError(f"cannot connect to {request.url}")

    with pytest.raises(UpstreamRateLimited) as e1:
        p.get_quote("IBM")
    p.get_fundamentals("IBM")
    failing = AlphaVantageProvider(api_key=KEY, cache=FakeCache(lambda: NOW), transport=httpx.MockTransport(boom), clock=lambda: NOW)
    with pytest.raises(UpstreamError) as e2:
        failing.get_quote("IBM")
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the request URL...
    assert KEY not in caplog.text  # ...but redacted
    for exc in (e1.value, e2.value):
        assert KEY not in str(exc) and KEY not in repr(exc.extra) and exc.__cause__ is None
    assert KEY not in repr(p)


def test_redact():
    assert av.redact("GET https://x/query?function=A&apikey=abc123&symbol=IBM") == "GET https://x/query?function=A&apikey=***&symbol=IBM"
    assert av.redact("your key is abc123", "abc123") == "your key is ***"


def test_weekend_global_quote_is_as_of_session_close_and_currency_from_the_catalogue():
    saturday = datetime(2025, 1, 11, 15, 0, tzinfo=timezone.utc)
    q = av.normalize_quote("IBM", load_payload("av_global_quote_ibm.json"), saturday)
    assert q.provenance.as_of == datetime(2025, 1, 10, 21, 0, tzinfo=timezone.utc)
    assert q.currency == "USD"  # GLOBAL_QUOTE does not say: the listing currency of a catalogued symbol
    unknown = dict(load_payload("av_global_quote_ibm.json"))
    unknown["Global Quote"] = {**unknown["Global Quote"], "01. symbol": "SAP.DE"}
    assert av.normalize_quote("SAP.DE", unknown, saturday).currency is None  # not catalogued: never assume USD
