"""Yahoo normalisers on recorded payloads, error mapping on yfinance's real exception classes, adapter with a fake SDK."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from shared.errors import MarketDataUnavailable, NotFound, UpstreamError, UpstreamRateLimited
from shared.market.providers import yahoo
from shared.market.providers.yahoo import YahooProvider

from tests.unit.market.market_fakes import load_payload

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=timezone.utc)


def test_quote_from_fast_info():
    q = yahoo.normalize_quote("AAPL", load_payload("yahoo_fast_info_aapl.json"), NOW)
    assert q.price == pytest.approx(237.285, abs=1e-3) and q.previous_close == pytest.approx(234.93, abs=1e-3)
    assert q.change == pytest.approx(2.355, abs=1e-3) and q.change_percent == pytest.approx(1.0024, abs=1e-3)
    assert q.volume == 41251372 and q.market_cap == 3521338380288.0 and q.currency == "USD"
    assert q.provenance.source == "yahoo" and q.provenance.fetched_at == NOW


def test_quote_without_price_is_not_found():
    with pytest.raises(NotFound):
        yahoo.normalize_quote("ZZZZ", load_payload("yahoo_fast_info_unknown.json"), NOW)


def test_history_rows_drop_empty_and_are_utc():
    h = yahoo.normalize_history("AAPL", "1d", load_payload("yahoo_history_aapl_1d.json"), NOW, "usd")
    assert len(h.bars) == 5 and h.currency == "USD"
    first = h.bars[0]
    assert first.ts == datetime(2025, 1, 2, 5, 0, tzinfo=timezone.utc)
    assert (first.open, first.high, first.low, first.close, first.volume) == (248.93, 249.10, 241.82, 243.85, 55740700)
    assert h.provenance.as_of == h.bars[-1].ts
    intraday = yahoo.normalize_history("MSFT", "1h", load_payload("yahoo_history_msft_1h.json"), NOW)
    assert intraday.bars[1].ts == datetime(2025, 1, 8, 15, 30, tzinfo=timezone.utc)


def test_empty_history_is_502_not_empty_200():
    with pytest.raises(MarketDataUnavailable):
        yahoo.normalize_history("AAPL", "1d", [], NOW)


def test_fundamentals_from_info():
    f = yahoo.normalize_fundamentals("AAPL", load_payload("yahoo_info_aapl.json"), NOW)
    assert f.name == "Apple Inc." and f.sector == "Technology" and f.industry == "Consumer Electronics"
    assert f.exchange == "NasdaqGS" and f.pe_ratio == 38.52 and f.forward_pe == 28.47 and f.eps == 6.16
    assert f.dividend_yield == pytest.approx(0.0044)  # Yahoo's percent turned into a fraction
    assert f.profit_margin == 0.24301 and f.operating_margin == 0.31171 and f.revenue == 391034994688
    assert (f.week52_low, f.week52_high) == (164.08, 260.1)
    assert f.provenance.as_of == datetime(2025, 1, 9, 21, 0, tzinfo=timezone.utc)


def test_fundamentals_unknown_symbol():
    with pytest.raises(NotFound):
        yahoo.normalize_fundamentals("ZZZZ", load_payload("yahoo_info_unknown.json"), NOW)


def test_news_content_items():
    n = yahoo.normalize_news("AAPL", load_payload("yahoo_news_aapl.json"), NOW, limit=10)
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
    res = yahoo.normalize_search(load_payload("yahoo_search_apple.json"), 10)
    assert [m.symbol for m in res] == ["AAPL", "AAPU", "^IXIC"]
    assert res[0].score == 1.0 and res[0].exchange == "NASDAQ" and res[0].type == "equity"
    assert res[1].type == "etf" and res[2].type == "index" and res[2].name == "NASDAQ Composite"


def test_download_batch_to_quotes():
    out = yahoo.normalize_download(["AAPL", "MSFT", "ZZZZ", "NOPE"], load_payload("yahoo_download_batch.json"), NOW)
    assert set(out) == {"AAPL", "MSFT"}
    a = out["AAPL"]
    assert a.price == 236.85 and a.previous_close == 242.70 and a.change == pytest.approx(-5.85)
    assert a.provenance.as_of == NOW  # session running: as of now (was the bar's midnight)


def test_error_mapping_uses_real_yfinance_classes():
    from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError

    assert isinstance(yahoo.map_yfinance_error(YFRateLimitError(), "AAPL"), UpstreamRateLimited)
    assert isinstance(yahoo.map_yfinance_error(YFTzMissingError("ZZZZ"), "ZZZZ"), NotFound)
    delisted = YFPricesMissingError("ZZZZ", "", yahoo_reason="No data found, symbol may be delisted")
    assert isinstance(yahoo.map_yfinance_error(delisted, "ZZZZ"), NotFound)
    no_range = YFPricesMissingError("AAPL", "(1d 1990-01-01 -> 1990-01-05)")
    err = yahoo.map_yfinance_error(no_range, "AAPL")
    assert isinstance(err, MarketDataUnavailable) and err.status == 502
    other = yahoo.map_yfinance_error(ConnectionError("reset"), "AAPL")
    assert type(other) is UpstreamError and "reset" not in other.detail


class FakeFastInfo(dict):
    pass


class NoChartFastInfo(dict):
    def get(self, key, default=None):  # yfinance's lazy lookup fails on missing chart metadata
        raise KeyError("currentTradingPeriod")


class FakeTicker:
    active = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self, symbol):
        self.symbol = symbol

    @property
    def fast_info(self):
        with FakeTicker.lock:
            FakeTicker.active += 1
            FakeTicker.peak = max(FakeTicker.peak, FakeTicker.active)
        time.sleep(0.02)
        with FakeTicker.lock:
            FakeTicker.active -= 1
        if self.symbol == "NOCHART":
            return NoChartFastInfo()
        if self.symbol == "LIMIT":
            from yfinance.exceptions import YFRateLimitError

            raise YFRateLimitError()
        return FakeFastInfo(load_payload("yahoo_fast_info_aapl.json"))

    def history(self, **kw):
        FakeYF.history_kwargs = kw
        from yfinance.exceptions import YFTzMissingError

        raise YFTzMissingError(self.symbol)


class FakeYF:
    Ticker = FakeTicker
    history_kwargs = None


def test_adapter_bounds_concurrency_and_maps_errors():
    p = YahooProvider(max_concurrency=2, clock=lambda: NOW, yf_module=FakeYF)
    threads = [threading.Thread(target=p.get_quote, args=("AAPL",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert FakeTicker.peak <= 2
    assert p.get_quote("AAPL").price == pytest.approx(237.285, abs=1e-3)
    with pytest.raises(UpstreamRateLimited):
        p.get_quote("LIMIT")
    with pytest.raises(NotFound):  # what fast_info does for a symbol without a chart
        p.get_quote("NOCHART")
    with pytest.raises(NotFound):
        p.get_history("ZZZZ", period="1mo", interval="1d", start=datetime(2025, 1, 2).date(), end=datetime(2025, 1, 3).date())
    assert FakeYF.history_kwargs["start"] == "2025-01-02" and FakeYF.history_kwargs["end"] == "2025-01-04"
    assert FakeYF.history_kwargs["raise_errors"] is True


def _frame(rows, index_name):
    import pandas as pd

    idx = pd.DatetimeIndex([pd.Timestamp(r[index_name]) for r in rows], name=index_name)
    cols = [c for c in rows[0] if c != index_name]
    return pd.DataFrame([[float("nan") if r[c] is None else r[c] for c in cols] for r in rows], index=idx, columns=cols)


class FrameTicker:
    def __init__(self, symbol):
        self.symbol = symbol
        self.history_metadata = {"currency": "USD"}

    def history(self, **kw):
        return _frame(load_payload("yahoo_history_aapl_1d.json"), "Date")


class FrameYF:
    Ticker = FrameTicker
    calls = []

    @staticmethod
    def download(symbols, **kw):
        import pandas as pd

        FrameYF.calls.append((list(symbols), kw))
        data = load_payload("yahoo_download_batch.json")
        frames = {s: _frame(data[s], "Date") for s in symbols if s in data}
        return pd.concat(frames.values(), axis=1, keys=frames.keys(), names=["Ticker", "Price"])


def test_adapter_converts_real_dataframes():
    p = YahooProvider(clock=lambda: NOW, yf_module=FrameYF)
    h = p.get_history("AAPL", period="1mo", interval="1d")
    assert len(h.bars) == 5 and h.bars[0].ts == datetime(2025, 1, 2, 5, 0, tzinfo=timezone.utc)
    quotes = p.get_quotes_batch(["AAPL", "MSFT", "ZZZZ"])
    assert set(quotes) == {"AAPL", "MSFT"} and quotes["MSFT"].price == 418.95 and quotes["MSFT"].previous_close == 424.56
    symbols, kw = FrameYF.calls[-1]
    assert symbols == ["AAPL", "MSFT", "ZZZZ"] and kw["group_by"] == "ticker" and kw["threads"] is False and kw["progress"] is False


SATURDAY = datetime(2025, 1, 11, 15, 0, tzinfo=timezone.utc)
FRIDAY_CLOSE = datetime(2025, 1, 10, 21, 0, tzinfo=timezone.utc)  # 16:00 New York


def test_weekend_quote_is_as_of_fridays_close_and_currency_unknown_when_unsaid():
    q = yahoo.normalize_quote("AAPL", load_payload("yahoo_fast_info_aapl.json"), SATURDAY)
    assert q.provenance.as_of == FRIDAY_CLOSE and q.provenance.fetched_at == SATURDAY
    q2 = yahoo.normalize_quote("SAP.DE", {"lastPrice": 250.0}, NOW)
    assert q2.currency is None


def test_weekend_batch_quote_is_as_of_the_bars_session_close_and_currency_from_the_catalogue():
    out = yahoo.normalize_download(["AAPL"], load_payload("yahoo_download_batch.json"), SATURDAY)
    assert out["AAPL"].provenance.as_of == FRIDAY_CLOSE
    assert out["AAPL"].currency == "USD"  # yf.download does not say: the catalogue's listing currency


class CountingFastInfo(dict):
    def __init__(self, data):
        super().__init__(data)
        self.read: list[str] = []

    def get(self, key, default=None):
        self.read.append(key)
        return super().get(key, default)


def test_adapter_quote_reads_only_cheap_fast_info_keys():
    infos = []

    class Ticker:
        def __init__(self, symbol):
            pass

        @property
        def fast_info(self):
            fi = CountingFastInfo(load_payload("yahoo_fast_info_aapl.json"))
            infos.append(fi)
            return fi

    class YF:
        pass

    YF.Ticker = Ticker
    q = YahooProvider(clock=lambda: NOW, yf_module=YF).get_quote("AAPL")
    assert q.previous_close == pytest.approx(234.93, abs=1e-3) and q.market_cap is None
    assert "marketCap" not in infos[0].read and "previousClose" not in infos[0].read
    # previousClose is the fallback when the regular-market one is missing
    infos.clear()
    Ticker.fast_info = property(lambda self: infos.append(CountingFastInfo({"lastPrice": 10.0, "previousClose": 9.0})) or infos[-1])
    assert YahooProvider(clock=lambda: NOW, yf_module=YF).get_quote("AAPL").previous_close == 9.0
