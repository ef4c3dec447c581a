"""Yahoo normalisers on yfinance's output shapes; the adapter is tested with the real yfinance in test_market_yahoo_http.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.errors import MarketDataUnavailable
from shared.market.providers import yahoo
from tests.upstream import upstream


def load_payload(name: str):
    return upstream("yahoo", name)

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=timezone.utc)


def test_quote_from_fast_info():
    q = yahoo.normalize_quote("AAPL", load_payload("sdk_fast_info_aapl.json"), NOW)
    assert q.price == pytest.approx(237.285, abs=1e-3) and q.previous_close == pytest.approx(234.93, abs=1e-3)
    assert q.change == pytest.approx(2.355, abs=1e-3) and q.change_percent == pytest.approx(1.0024, abs=1e-3)
    assert q.volume == 41251372 and q.market_cap == 3521338380288.0 and q.currency == "USD"
    assert q.provenance.source == "yahoo" and q.provenance.fetched_at == NOW


def test_quote_without_price_is_no_answer_not_an_unknown_symbol():
    # fast_info looks like this after an outage as much as for an unknown symbol: the adapter decides from HTTP.
    with pytest.raises(MarketDataUnavailable):
        yahoo.normalize_quote("ZZZZ", load_payload("sdk_fast_info_unknown.json"), NOW)


def test_history_rows_drop_empty_and_are_utc():
    h = yahoo.normalize_history("AAPL", "1d", load_payload("sdk_history_aapl_1d.json"), NOW, "USD")
    assert len(h.bars) == 5 and h.currency == "USD"
    first = h.bars[0]
    assert first.ts == datetime(2025, 1, 2, 5, 0, tzinfo=timezone.utc)
    assert (first.open, first.high, first.low, first.close, first.volume) == (248.93, 249.10, 241.82, 243.85, 55740700)
    assert h.provenance.as_of == h.bars[-1].ts
    intraday = yahoo.normalize_history("MSFT", "1h", load_payload("sdk_history_msft_1h.json"), NOW)
    assert intraday.bars[1].ts == datetime(2025, 1, 8, 15, 30, tzinfo=timezone.utc)


def test_empty_history_is_502_not_empty_200():
    with pytest.raises(MarketDataUnavailable):
        yahoo.normalize_history("AAPL", "1d", [], NOW)


def test_fundamentals_from_info():
    f = yahoo.normalize_fundamentals("AAPL", load_payload("sdk_info_aapl.json"), NOW)
    assert f.name == "Apple Inc." and f.sector == "Technology" and f.industry == "Consumer Electronics"
    assert f.exchange == "NasdaqGS" and f.pe_ratio == 38.52 and f.forward_pe == 28.47 and f.eps == 6.16
    assert f.dividend_yield == pytest.approx(0.0044)  # Yahoo's percent turned into a fraction
    assert f.profit_margin == 0.24301 and f.operating_margin == 0.31171 and f.revenue == 391034994688
    assert (f.week52_low, f.week52_high) == (164.08, 260.1)
    assert f.provenance.as_of == datetime(2025, 1, 9, 21, 0, tzinfo=timezone.utc)


def test_fundamentals_without_profile_is_no_answer():
    # What get_info() returns when quoteSummary failed (401 Invalid Crumb, 5xx): not "unknown symbol".
    with pytest.raises(MarketDataUnavailable):
        yahoo.normalize_fundamentals("AAPL", load_payload("sdk_info_after_failed_quote_summary.json"), NOW)


def test_news_content_items():
    n = yahoo.normalize_news("AAPL", load_payload("sdk_news_aapl.json"), NOW, limit=10)
    assert [i.title for i in n.items] == ["What Wall Street expects from Apple earnings", "Apple's iPhone sales rebound in China"]
    video, story = n.items
    assert story.publisher == "Reuters" and story.url.endswith("apple-iphone-sales-rebound-140500.html")
    assert story.published_at == datetime(2025, 1, 9, 14, 5, tzinfo=timezone.utc)
    assert story.id == "0b2a3c1e-1111-3b1f-9f0e-aaaaaaaaaaaa" and story.summary.startswith("Apple's smartphone")
    assert video.url.endswith("wall-street-expects-apple-110000.html") and video.summary == "Analysts preview the quarter."
    assert n.provenance.as_of == video.published_at


def test_news_legacy_flat_items():
    legacy = [{"uuid": "u1", "title": "Old style", "publisher": "Zacks", "link": "https://x/y", "providerPublishTime": 1736500000}]
    n = yahoo.normalize_news("AAPL", legacy, NOW)
    assert n.items[0].id == "u1" and n.items[0].publisher == "Zacks" and n.items[0].url == "https://x/y"


def test_search_quotes():
    res = yahoo.normalize_search(load_payload("sdk_search_apple.json"), 10)
    assert [m.symbol for m in res] == ["AAPL", "AAPU", "^IXIC"]
    assert res[0].score == 1.0 and res[0].exchange == "NASDAQ" and res[0].type == "equity"
    assert res[1].type == "etf" and res[2].type == "index" and res[2].name == "NASDAQ Composite"


def test_download_batch_to_quotes():
    out = yahoo.normalize_download(["AAPL", "MSFT", "ZZZZ", "NOPE"], load_payload("sdk_download_batch.json"), NOW)
    assert set(out) == {"AAPL", "MSFT"}
    a = out["AAPL"]
    assert a.price == 236.85 and a.previous_close == 242.70 and a.change == pytest.approx(-5.85)
    assert a.provenance.as_of == NOW  # session running: as of now (was the bar's midnight)


SATURDAY = datetime(2025, 1, 11, 15, 0, tzinfo=timezone.utc)
FRIDAY_CLOSE = datetime(2025, 1, 10, 21, 0, tzinfo=timezone.utc)  # 16:00 New York


def test_weekend_quote_is_as_of_fridays_close_and_currency_from_the_listing_when_unsaid():
    q = yahoo.normalize_quote("AAPL", load_payload("sdk_fast_info_aapl.json"), SATURDAY)
    assert q.provenance.as_of == FRIDAY_CLOSE and q.provenance.fetched_at == SATURDAY
    assert yahoo.normalize_quote("SAP.DE", {"lastPrice": 250.0}, NOW).currency == "EUR"  # XETRA lists in euros
    assert yahoo.normalize_quote("0700.HK", {"lastPrice": 250.0}, NOW).currency is None  # unknown: never assumed


def test_weekend_batch_quote_is_as_of_the_bars_session_close_and_currency_from_the_catalogue():
    out = yahoo.normalize_download(["AAPL"], load_payload("sdk_download_batch.json"), SATURDAY)
    assert out["AAPL"].provenance.as_of == FRIDAY_CLOSE
    assert out["AAPL"].currency == "USD"  # yf.download does not say: the catalogue's listing currency




def test_london_prices_are_in_pence_not_pounds():
    q = yahoo.normalize_quote("VOD.L", {"lastPrice": 70.5, "currency": "GBp"}, NOW)
    assert q.currency == "GBX"  # "GBp".upper() would claim pounds: a 100x error
    h = yahoo.normalize_history("VOD.L", "1d", [{"Date": "2025-01-02T00:00:00+00:00", "Close": 70.1}], NOW, "GBp")
    assert h.currency == "GBX"
    assert yahoo.normalize_history("X.HK", "1d", [{"Date": "2025-01-02", "Close": 1.0}], NOW).currency is None
