from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pytest

from shared.errors import (
    MarketDataUnavailable,
    NotFound,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnsupported,
    ValidationFailed,
)
from shared.market.manager import DataManager
from shared.market.models import Bar, QuoteError

from tests.unit.market.market_fakes import (
    OPEN_NOW,
    WEEKEND_NOW,
    FakeProvider,
    ManualExecutor,
    SyncExecutor,
    make_settings,
)


def build(clock, cache, sf, *, primary=None, backup=None, executor=None, sink=None, **settings_kw):
    primary = primary or FakeProvider("primary", clock, price=100.0)
    backup = backup or FakeProvider("backup", clock, price=200.0)
    dm = DataManager(make_settings(**settings_kw), cache, sf, providers={"primary": primary, "backup": backup},
                     clock=clock, snapshot_sink=sink, executor=executor or SyncExecutor())
    return dm, primary, backup


# -- provenance, fallback ------------------------------------------------------------------
def test_quote_has_provenance_and_is_cached(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    q = dm.get_quote("aapl")
    assert q.symbol == "AAPL" and q.price == 100.0
    assert q.provenance.source == "primary" and q.provenance.stale is False and q.provenance.fallback_from == []
    assert q.provenance.fetched_at == OPEN_NOW
    clock.advance(30)
    again = dm.get_quote("AAPL")
    assert primary.calls["get_quote"] == 1
    assert again.provenance.cache_age_s == pytest.approx(30) and again.provenance.stale is False
    assert dm.stats()["cache"]["price_data"] == {"miss": 1, "hit": 1}


def test_fallback_on_failure_records_fallback_from(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamError("boom", provider="primary")
    q = dm.get_quote("AAPL")
    assert q.price == 200.0
    assert q.provenance.source == "backup" and q.provenance.fallback_from == ["primary"]
    stats = dm.stats()["upstream"]
    assert stats["primary"] == {"unavailable": 1} and stats["backup"] == {"ok": 1}


def test_not_found_is_authoritative_no_fallback(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    with pytest.raises(NotFound):
        dm.get_quote("ZZZZ")
    assert backup.total_calls() == 0


def test_all_providers_fail_raises_502_never_empty(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamError("x")
    backup.fail = RuntimeError("unexpected SDK error")
    with pytest.raises(MarketDataUnavailable) as ei:
        dm.get_history("AAPL")
    assert ei.value.status == 502 and [a["provider"] for a in ei.value.extra["attempted"]] == ["primary", "backup"]
    assert ei.value.provider == "backup" and ei.value.extra["outcome"] == "unavailable"


def test_all_rate_limited_raises_upstream_rate_limited(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamRateLimited("slow down")
    backup.fail = UpstreamRateLimited("slow down")
    with pytest.raises(UpstreamRateLimited):
        dm.get_fundamentals("AAPL")


def test_series_come_from_one_source(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamError("x")
    h = dm.get_history("AAPL", period="1mo")
    assert h.provenance.source == "backup" and len(h.bars) == 30
    assert all(b.open >= 200 for b in h.bars)  # every bar from the backup's series


def test_unsupported_provider_is_skipped_without_breaker_failure(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamUnsupported("daily only")
    for _ in range(5):
        cache.delete(cache.key("market", "history", "AAPL", "1h", "5d"))
        assert dm.get_history("AAPL", period="5d", interval="1h").provenance.source == "backup"
    assert dm.health_check()[1]["providers"]["primary"]["state"] == "closed"


# -- stale-while-revalidate -----------------------------------------------------------------
def test_stale_while_revalidate_serves_stale_then_refreshes_in_background(clock, cache, sf):
    ex = ManualExecutor()
    dm, primary, _ = build(clock, cache, sf, executor=ex)
    dm.get_quote("AAPL")
    primary.price = 101.0
    clock.advance(61)  # past the 60 s price TTL (market open)
    stale = dm.get_quote("AAPL")
    assert stale.price == 100.0 and stale.provenance.stale is True and stale.provenance.cache_age_s == pytest.approx(61)
    dm.get_quote("AAPL")  # a second stale read does not schedule a second refresh
    assert len(ex.jobs) == 1 and primary.calls["get_quote"] == 1
    ex.run_all()
    fresh = dm.get_quote("AAPL")
    assert fresh.price == 101.0 and fresh.provenance.stale is False
    assert primary.calls["get_quote"] == 2
    assert dm.stats()["background_refresh"]["ok"] == 1


def test_stale_value_served_when_every_provider_fails(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    dm.get_fundamentals("AAPL")
    primary.fail = UpstreamError("down")
    backup.fail = UpstreamError("down")
    clock.advance(86400 + 10)  # past TTL, inside the SWR window: stale + background refresh (fails)
    f = dm.get_fundamentals("AAPL")
    assert f.provenance.stale is True and f.provenance.source == "primary"
    assert dm.stats()["background_refresh"]["failed"] == 1
    clock.advance(86400 * 24)  # beyond the SWR window: synchronous refresh fails -> stale served, not an error
    f2 = dm.get_fundamentals("AAPL")
    assert f2.provenance.stale is True and f2.name == "AAPL Inc."
    assert dm.stats()["cache"]["fundamental_data"]["stale_on_error"] == 1


def test_value_is_kept_physically_longer_than_ttl(clock, cache, sf):
    dm, _, _ = build(clock, cache, sf)
    dm.get_quote("AAPL")
    key = cache.key("market", "quote", "AAPL")
    assert cache.physical_ttl(key) >= 86400


def test_no_stale_value_and_all_fail_raises(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = backup.fail = UpstreamError("down")
    with pytest.raises(MarketDataUnavailable):
        dm.get_news("AAPL")


# -- single-flight -------------------------------------------------------------------------
def test_hundred_concurrent_cold_requests_make_one_upstream_call(clock, cache, sf):
    primary = FakeProvider("primary", clock, delay_s=0.05)
    dm, primary, backup = build(clock, cache, sf, primary=primary)
    barrier = threading.Barrier(100)
    results, errors = [], []

    def worker():
        barrier.wait()
        try:
            results.append(dm.get_quote("AAPL"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len(results) == 100 and all(r.price == 100.0 for r in results)
    assert primary.calls == {"get_quote": 1} and backup.total_calls() == 0


# -- circuit breaker -----------------------------------------------------------------------
def test_breaker_opens_after_consecutive_failures_and_half_opens(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamError("down")
    for sym in ("AAPL", "MSFT", "IBM"):
        assert dm.get_quote(sym).provenance.source == "backup"
    assert primary.calls["get_quote"] == 3
    healthy, details = dm.health_check()
    assert details["providers"]["primary"]["state"] == "open" and healthy is True  # backup still usable
    assert dm.stats()["breakers"]["primary"] == "open"
    clock.advance(120)  # quotes expire; breaker still open within its 60 s cool-down? no: 120 > 60 -> half-open
    primary.fail = None
    q = dm.get_quote("AAPL")
    # AAPL is inside its SWR window, so it is served stale and refreshed in the background through the probe.
    assert q.provenance.stale is True
    assert dm.health_check()[1]["providers"]["primary"]["state"] == "closed"
    assert dm.get_quote("AAPL").provenance.source == "primary"


def test_open_breaker_skips_provider_and_counts_as_fallback(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamRateLimited("429")  # a rate limit opens the breaker at once
    dm.get_quote("AAPL")
    calls = primary.calls["get_quote"]
    q = dm.get_quote("MSFT")
    assert primary.calls["get_quote"] == calls  # skipped
    assert q.provenance.fallback_from == ["primary"]
    assert dm.stats()["upstream"]["primary"] == {"rate_limited": 1, "breaker_open": 1}
    clock.advance(30)
    assert dm.health_check()[1]["providers"]["primary"]["state"] == "open"
    clock.advance(31)
    assert dm.health_check()[1]["providers"]["primary"]["state"] == "half_open"


def test_health_degraded_when_every_provider_open(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = backup.fail = UpstreamRateLimited("429")
    with pytest.raises(UpstreamRateLimited):
        dm.get_quote("AAPL")
    healthy, details = dm.health_check()
    assert healthy is False and "quote" in details["unavailable_data_types"]


# -- market-hours TTL ----------------------------------------------------------------------
def test_quote_fetched_on_weekend_stays_fresh_until_monday_open(clock, cache, sf):
    clock.now = WEEKEND_NOW
    dm, primary, _ = build(clock, cache, sf)
    dm.get_quote("AAPL")
    clock.now = datetime(2025, 1, 13, 14, 29, tzinfo=timezone.utc)  # Monday 09:29 New York
    assert dm.get_quote("AAPL").provenance.stale is False
    assert primary.calls["get_quote"] == 1
    clock.now = datetime(2025, 1, 13, 14, 31, tzinfo=timezone.utc)  # 09:31: the open invalidates it
    assert dm.get_quote("AAPL").provenance.stale is True


def test_quote_fetched_during_session_expires_after_ttl(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    dm.get_quote("AAPL")
    clock.advance(59)
    assert dm.get_quote("AAPL").provenance.stale is False
    clock.advance(2)
    assert dm.get_quote("AAPL").provenance.stale is True


# -- batches, refresh, snapshot sink ---------------------------------------------------------
def test_get_quotes_batches_misses_and_reports_errors_per_symbol(clock, cache, sf):
    primary = FakeProvider("primary", clock, batch=True)
    dm, primary, backup = build(clock, cache, sf, primary=primary)
    out = dm.get_quotes(["AAPL", "msft", "AAPL", "ZZZZ", "bad symbol!"])
    assert [o.symbol for o in out] == ["AAPL", "MSFT", "ZZZZ", "bad symbol!"]
    assert primary.calls["get_quotes_batch"] == 1
    assert primary.calls.get("get_quote", 0) == 1  # only ZZZZ, which the batch did not price
    assert isinstance(out[2], QuoteError) and out[2].status == 404
    assert isinstance(out[3], QuoteError) and out[3].status == 422


def test_get_quotes_validates_size(clock, cache, sf):
    dm, _, _ = build(clock, cache, sf)
    with pytest.raises(ValidationFailed) as ei:
        dm.get_quotes([f"S{i}" for i in range(51)])
    assert "symbols" in ei.value.errors


def test_refresh_quotes_summary(clock, cache, sf):
    primary = FakeProvider("primary", clock, batch=True, known=[f"S{i}" for i in range(7)])
    dm, primary, _ = build(clock, cache, sf, primary=primary, refresh_batch_size=3)
    summary = dm.refresh_quotes([f"S{i}" for i in range(7)] + ["NOPE"])
    assert summary["batches"] == 3 and summary["refreshed"] == 7
    assert summary["failures"] == {"NOPE": "404 Not found"}
    assert summary["upstream_calls"] == 4  # 3 batches + 1 single lookup for NOPE
    assert primary.calls["get_quotes_batch"] == 3
    again = dm.refresh_quotes([f"S{i}" for i in range(7)])
    assert again["skipped_fresh"] == 7 and again["upstream_calls"] == 0


class RecordingSink:
    def __init__(self, bars=None, fail=False):
        self.saved_bars, self.snapshots, self._bars, self._fail = [], [], bars or [], fail

    def save_bars(self, symbol, interval, bars):
        if self._fail:
            raise RuntimeError("db down")
        self.saved_bars.append((symbol, interval, len(bars)))

    def save_snapshot(self, quote):
        if self._fail:
            raise RuntimeError("db down")
        self.snapshots.append(quote.symbol)

    def load_bars(self, symbol, interval, start, end):
        self.loaded = (symbol, interval, start, end)
        return self._bars


def test_snapshot_sink_receives_bars_and_quotes(clock, cache, sf):
    sink = RecordingSink()
    dm, _, _ = build(clock, cache, sf, sink=sink)
    dm.get_quote("AAPL")
    dm.get_history("AAPL", period="1mo")
    assert sink.snapshots == ["AAPL"] and sink.saved_bars == [("AAPL", "1d", 30)]


def test_snapshot_sink_failure_never_fails_request(clock, cache, sf):
    dm, _, _ = build(clock, cache, sf, sink=RecordingSink(fail=True))
    assert dm.get_quote("AAPL").price == 100.0


def test_history_falls_back_to_persisted_bars(clock, cache, sf):
    bars = [Bar(ts=datetime(2025, 1, 6, tzinfo=timezone.utc), open=1, high=2, low=0.5, close=1.5, volume=10)]
    sink = RecordingSink(bars=bars)
    dm, primary, backup = build(clock, cache, sf, sink=sink)
    primary.fail = backup.fail = UpstreamError("down")
    h = dm.get_history("AAPL", period="1mo")
    assert h.provenance.source == "snapshot" and h.provenance.stale is True and h.bars == bars
    assert h.provenance.fallback_from == ["primary", "backup"]
    assert sink.loaded == ("AAPL", "1d", date(2024, 12, 8), date(2025, 1, 8))


# -- validation, symbols, indicators ---------------------------------------------------------
def test_history_validation_errors(clock, cache, sf):
    dm, _, _ = build(clock, cache, sf)
    with pytest.raises(ValidationFailed) as ei:
        dm.get_history("AAPL", period="7y", interval="2m")
    assert set(ei.value.errors) == {"period", "interval"}
    with pytest.raises(ValidationFailed) as ei:
        dm.get_history("AAPL", start="2025-01-05", end="2025-01-01")
    assert "start" in ei.value.errors
    with pytest.raises(ValidationFailed) as ei:
        dm.get_quote("not a symbol")
    assert ei.value.status == 422 and "symbol" in ei.value.errors


def test_search_and_get_symbol(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    assert [m.symbol for m in dm.search_symbols("A")] == ["AAPL"]
    assert dm.get_symbol("msft").symbol == "MSFT"
    with pytest.raises(NotFound):
        dm.get_symbol("QQQQ")
    with pytest.raises(ValidationFailed):
        dm.search_symbols("   ")


def test_indicators_via_manager_cached_as_technical_data(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    series = dm.get_indicators("AAPL", ["sma_5", "rsi_14", "macd"])
    assert [s.name for s in series] == ["sma_5", "rsi_14", "macd"]
    sma = series[0]
    # closes are 100.5, 101.5, ... so SMA(5) at bar 4 = mean(100.5..104.5) = 102.5
    assert sma.points[0].value == pytest.approx(102.5) and len(sma.points) == 26
    assert sma.provenance.source == "primary"
    assert series[1].points[-1].value == pytest.approx(100.0)  # only gains -> RSI 100
    macd = series[2].points  # MACD line exists from bar 26 on; 30 bars are too few for its 9-bar signal line
    assert len(macd) == 5 and macd[0].values["signal"] is None and macd[0].value == pytest.approx(macd[0].values["macd"])
    dm.get_indicators("AAPL", ["sma_5"])
    assert primary.calls["get_history"] == 1
    assert dm.stats()["cache"]["technical_data"] == {"miss": 3, "hit": 1}


def test_unknown_indicator_is_422_with_names(clock, cache, sf):
    dm, _, _ = build(clock, cache, sf)
    with pytest.raises(ValidationFailed) as ei:
        dm.get_indicators("AAPL", ["sma_20", "vwap", "rsi_1"])
    assert len(ei.value.errors["names"]) == 2


def test_provider_that_cannot_run_is_reported_misconfigured(clock, cache, sf):
    settings = make_settings(providers={k: ["alpha_vantage", "offline"] for k in ("quote", "history", "fundamentals", "news", "search")})
    from shared.market.factory import build_data_manager

    dm = build_data_manager(settings, cache, sf, clock=clock, executor=SyncExecutor())
    q = dm.get_quote("AAPL")
    assert q.provenance.source == "offline" and q.provenance.fallback_from == ["alpha_vantage"]
    healthy, details = dm.health_check()
    assert healthy and details["providers"]["alpha_vantage"]["state"] == "misconfigured"
    assert details["misconfigured"] == ["alpha_vantage"] and "api_key" in details["providers"]["alpha_vantage"]["reason"]


def test_batch_respects_provider_order(clock, cache, sf):
    backup = FakeProvider("backup", clock, price=200.0, batch=True)
    dm, primary, backup = build(clock, cache, sf, backup=backup)  # primary cannot batch
    out = dm.get_quotes(["AAPL", "MSFT"])
    assert [q.provenance.source for q in out] == ["primary", "primary"]
    assert backup.total_calls() == 0 and primary.calls["get_quote"] == 2


def test_indicators_from_stale_history_are_flagged_stale(clock, cache, sf):
    ex = ManualExecutor()
    dm, primary, _ = build(clock, cache, sf, executor=ex)
    dm.get_history("AAPL", period="1y")
    clock.advance(3601)  # history past its TTL, inside the SWR window
    series = dm.get_indicators("AAPL", ["sma_5"])[0]
    assert series.provenance.stale is True and len(ex.jobs) == 1
    ex.run_all()
    clock.advance(1)
    # The series computed from stale bars expired at once: served stale again while it is recomputed.
    assert dm.get_indicators("AAPL", ["sma_5"])[0].provenance.stale is True
    ex.run_all()
    fresh = dm.get_indicators("AAPL", ["sma_5"])[0]
    assert fresh.provenance.stale is False and primary.calls["get_history"] == 2


def test_background_refresh_not_found_drops_stale_value_so_next_request_is_404(clock, cache, sf):
    ex = ManualExecutor()
    dm, primary, backup = build(clock, cache, sf, executor=ex)
    dm.get_quote("AAPL")
    primary.known.discard("AAPL")  # delisted upstream
    clock.advance(61)
    assert dm.get_quote("AAPL").provenance.stale is True
    ex.run_all()
    calls = primary.calls["get_quote"]
    for _ in range(3):  # a short negative entry: 404 at once, upstream not asked again
        with pytest.raises(NotFound):
            dm.get_quote("AAPL")
    assert primary.calls["get_quote"] == calls and backup.total_calls() == 0
    assert dm.stats()["background_refresh"]["not_found"] == 1
    assert isinstance(dm.get_quotes(["AAPL", "MSFT"])[0], QuoteError)
    calls = primary.calls["get_quote"]  # + MSFT
    clock.advance(61)  # negative entry expired: upstream is asked again (and says 404 again)
    with pytest.raises(NotFound):
        dm.get_quote("AAPL")
    assert primary.calls["get_quote"] == calls + 1


def test_unsupported_call_in_half_open_does_not_close_breaker(clock, cache, sf):
    dm, primary, backup = build(clock, cache, sf)
    primary.fail = UpstreamError("down")
    for sym in ("AAPL", "MSFT", "IBM"):
        dm.get_quote(sym)
    clock.advance(120)  # cool-down over: half-open
    primary.fail = UpstreamUnsupported("no intraday")
    assert dm.get_history("AAPL", period="5d", interval="1h").provenance.source == "backup"
    # No real probe happened: still half-open, and the probe slot is free again for a real call.
    assert dm.health_check()[1]["providers"]["primary"]["state"] == "half_open"
    primary.fail = None
    assert dm.get_fundamentals("AAPL").provenance.source == "primary"
    assert dm.health_check()[1]["providers"]["primary"]["state"] == "closed"


def test_indicator_age_counts_from_the_history_fetch(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    dm.get_history("AAPL", period="1y")
    clock.advance(100)
    s = dm.get_indicators("AAPL", ["sma_5"])[0]
    assert s.provenance.cache_age_s == pytest.approx(100)  # not 0: the bars are 100 s old
    clock.advance(50)
    assert dm.get_indicators("AAPL", ["sma_5"])[0].provenance.cache_age_s == pytest.approx(150)


def test_one_indicator_response_never_mixes_history_fetches(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    first = dm.get_indicators("AAPL", ["sma_5"])[0]
    clock.advance(300)
    primary.price = 150.0
    cache.delete(cache.key("market", "history", "AAPL", "1d", "1y"))  # bars refetched while sma_5 is still cached
    sma, rsi = dm.get_indicators("AAPL", ["sma_5", "rsi_14"])
    assert primary.calls["get_history"] == 2
    assert sma.provenance.fetched_at == rsi.provenance.fetched_at != first.provenance.fetched_at
    assert sma.points[0].value == pytest.approx(152.5)  # recomputed from the new bars
    # Cached together now: the next answer is consistent without another history read.
    again = dm.get_indicators("AAPL", ["sma_5", "rsi_14"])
    assert again[0].provenance.fetched_at == again[1].provenance.fetched_at and primary.calls["get_history"] == 2


def test_indicators_read_history_once_per_request(clock, cache, sf):
    dm, primary, _ = build(clock, cache, sf)
    reads = []
    real = dm.get_history
    dm.get_history = lambda *a, **k: reads.append(1) or real(*a, **k)
    dm.get_indicators("AAPL", ["sma_5", "rsi_14", "macd"])
    assert len(reads) == 1


def test_a_batch_settles_its_answers_before_its_failures(clock, cache, sf):
    """Three unpriced symbols first in a batch must not open the breaker over the symbols the same call priced."""
    from shared.errors import MarketDataUnavailable

    primary = FakeProvider("primary", clock, price=100.0, known=("AAPL", "MSFT", "IBM", "A", "B", "C"), batch=True)
    real_batch = primary.get_quotes_batch
    primary.get_quotes_batch = lambda syms: {**real_batch(syms), **{s: MarketDataUnavailable("no price") for s in ("X", "Y", "Z")}}
    dm, _, backup = build(clock, cache, sf, primary=primary)
    out = dm.get_quotes(["X", "Y", "Z", "AAPL", "MSFT", "IBM"])
    assert [q.provenance.source for q in out[3:]] == ["primary"] * 3
