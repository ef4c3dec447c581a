from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from shared.errors import NotFound
from shared.market.providers.offline import OfflineProvider

from tests.unit.market.market_fakes import OPEN_NOW, WEEKEND_NOW


def provider(now=OPEN_NOW):
    return OfflineProvider(clock=lambda: now)


def test_deterministic_across_instances():
    a, b = provider(), provider()
    assert a.get_quote("AAPL").price == b.get_quote("AAPL").price
    assert a.get_history("MSFT", period="3mo").bars == b.get_history("MSFT", period="3mo").bars
    assert a.get_quote("AAPL").price != a.get_quote("MSFT").price


def test_unknown_symbol_not_found():
    with pytest.raises(NotFound):
        provider().get_quote("ZZZZZ")
    with pytest.raises(NotFound):
        provider().get_news("ZZZZZ")


def test_every_datum_says_offline():
    p = provider()
    for d in (p.get_quote("AAPL"), p.get_history("AAPL"), p.get_fundamentals("AAPL"), p.get_news("AAPL")):
        assert d.provenance.source == "offline"


def test_history_is_plausible_and_stable_in_the_past():
    p = provider()
    h = p.get_history("NVDA", period="1y")
    assert 245 <= len(h.bars) <= 256  # ~ trading days in a year
    for b in h.bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.volume > 0
    daily_moves = [abs(b.close / a.close - 1) for a, b in zip(h.bars, h.bars[1:])]
    assert max(daily_moves) < 0.2 and sum(daily_moves) / len(daily_moves) > 0.002  # moves like a price
    later = provider(datetime(2025, 6, 2, 15, 0, tzinfo=timezone.utc)).get_history("NVDA", start=date(2024, 6, 3), end=date(2025, 1, 7))
    earlier = {b.ts: b for b in h.bars}
    assert all(earlier[b.ts] == b for b in later.bars if b.ts in earlier)  # a past bar never changes


def test_quote_moves_during_session_and_not_on_weekend():
    morning = provider(datetime(2025, 1, 8, 15, 0, tzinfo=timezone.utc)).get_quote("AAPL")
    afternoon = provider(datetime(2025, 1, 8, 19, 0, tzinfo=timezone.utc)).get_quote("AAPL")
    assert morning.price != afternoon.price and morning.previous_close == afternoon.previous_close
    sat = provider(WEEKEND_NOW).get_quote("AAPL")
    sun = provider(datetime(2025, 1, 12, 15, 0, tzinfo=timezone.utc)).get_quote("AAPL")
    assert sat.price == sun.price
    assert sat.provenance.as_of == datetime(2025, 1, 10, 21, 0, tzinfo=timezone.utc)  # Friday's close


def test_intraday_and_weekly():
    p = provider()
    h = p.get_history("SPY", period="5d", interval="1h")
    assert h.bars and all(b.ts.hour >= 14 for b in h.bars)  # session hours in UTC
    wk = p.get_history("SPY", period="6mo", interval="1wk")
    assert 24 <= len(wk.bars) <= 28


def test_fundamentals_and_news():
    p = provider()
    f = p.get_fundamentals("KO")
    assert f.name == "The Coca-Cola Company" and f.pe_ratio and f.week52_low < f.week52_high
    n = p.get_news("KO", limit=3)
    assert len(n.items) == 3 and all(i.published_at <= OPEN_NOW for i in n.items)
    assert len({i.id for i in n.items}) == 3


def test_search_ranks_exact_symbol_first():
    res = provider().search_symbols("apple")
    assert res[0].symbol == "AAPL"
    res = provider().search_symbols("MS")
    assert res[0].symbol == "MS" and res[1].symbol == "MSFT"


def test_one_day_period_before_the_open_returns_last_session():
    early = provider(datetime(2025, 1, 8, 12, 0, tzinfo=timezone.utc))  # Wed 07:00 New York
    h = early.get_history("AAPL", period="1d")
    assert [b.ts.date() for b in h.bars] == [date(2025, 1, 7)]
    assert len(early.get_history("AAPL", period="5d").bars) == 5


def test_daily_walk_cache_holds_the_whole_catalogue():
    from shared.market.providers.offline import _daily_walk
    from shared.market.symbols import builtin_symbols

    n = len(builtin_symbols())
    assert _daily_walk.cache_info().maxsize >= 2 * n  # every symbol (and a second `last` day) stays cached


def test_behind_real_providers_a_symbol_outside_the_catalogue_is_unsupported_not_unknown():
    import pytest

    from shared.errors import NotFound, UpstreamUnsupported
    from shared.market.providers.offline import OfflineProvider

    assert isinstance(OfflineProvider(authoritative=False).get_quotes_batch(["VOD.L"])["VOD.L"], UpstreamUnsupported)
    with pytest.raises(UpstreamUnsupported):
        OfflineProvider(authoritative=False).get_quote("VOD.L")
    with pytest.raises(UpstreamUnsupported):
        OfflineProvider(authoritative=False).search_symbols("vodafone")
    with pytest.raises(NotFound):  # alone, the catalogue is the whole universe
        OfflineProvider().get_quote("VOD.L")
