"""The Yahoo adapter with the real yfinance code, only HTTP faked (tests/upstream.py): every outcome lands in its class.

yfinance hides HTTP failures (empty frames, near-empty info dicts, ``[]``); these tests drive its real parsing and
error hiding through Yahoo-shaped answers and check the adapter undoes it: only a 404 carrying Yahoo's "Not Found"
is an unknown symbol.
"""

from __future__ import annotations

import pytest

from shared.errors import MarketDataUnavailable, NotFound, UpstreamRateLimited, UpstreamUnsupported
from shared.market.providers.yahoo import YahooProvider
from tests.upstream import (
    EMPTY_BODY,
    ERROR_OBJECT_IN_200,
    INTERNAL_ERROR_JSON,
    INVALID_CRUMB,
    MALFORMED_JSON,
    SERVER_ERROR,
    TOO_MANY_REQUESTS,
    TOO_MANY_REQUESTS_RETRY_AFTER,
    FakeYahoo,
    Reply,
    connection_reset,
    timeout,
    upstream,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore:.*inplace.*:Warning")

CALLS = {
    "quote": lambda p: p.get_quote("AAPL"),
    "history": lambda p: p.get_history("AAPL", period="1mo"),
    "fundamentals": lambda p: p.get_fundamentals("AAPL"),
    "news": lambda p: p.get_news("AAPL", 3),
    "search": lambda p: p.search_symbols("apple", 3),
    "batch": lambda p: _raise_first(p.get_quotes_batch(["AAPL"])),
}
FAULTS = {
    "5xx html": (lambda: SERVER_ERROR, MarketDataUnavailable),
    "500 json": (lambda: INTERNAL_ERROR_JSON, MarketDataUnavailable),
    "timeout": (timeout, MarketDataUnavailable),
    "connection reset": (connection_reset, MarketDataUnavailable),
    "401 invalid crumb": (lambda: INVALID_CRUMB, MarketDataUnavailable),
    "429": (lambda: TOO_MANY_REQUESTS, UpstreamRateLimited),
    "429 retry-after": (lambda: TOO_MANY_REQUESTS_RETRY_AFTER, UpstreamRateLimited),
    "empty body": (lambda: EMPTY_BODY, MarketDataUnavailable),
    "malformed json": (lambda: MALFORMED_JSON, MarketDataUnavailable),
    "200 with yahoo's error object": (lambda: ERROR_OBJECT_IN_200, MarketDataUnavailable),
}


def _raise_first(batch):
    item = batch["AAPL"]
    if isinstance(item, Exception):
        raise item
    return item


@pytest.fixture
def yahoo():
    fake = FakeYahoo().healthy()
    fake.tz("AAPL", "America/New_York")  # the normal case: yfinance cached the zone on an earlier day
    fake.tz("ZZZZZZ", None)
    return fake, YahooProvider(session=fake.session())


@pytest.mark.parametrize("kind", CALLS)
def test_healthy_answers_parse_through_the_real_sdk(yahoo, kind):
    fake, provider = yahoo
    result = CALLS[kind](provider)
    assert result
    assert all(r["timeout"] <= 8.0 for r in fake.requests), fake.requests  # yfinance asks 30 s for some


def test_quote_fundamentals_and_history_values(yahoo):
    _, p = yahoo
    q = p.get_quote("AAPL")
    assert (q.price, q.previous_close, q.currency) == (236.85, 242.70, "USD") and q.provenance.source == "yahoo"
    f = p.get_fundamentals("AAPL")
    assert f.name == "Apple Inc." and f.exchange == "NasdaqGS" and f.dividend_yield == pytest.approx(0.0044)
    h = p.get_history("AAPL", period="1mo")
    assert [b.close for b in h.bars][-2:] == [242.70, 236.85] and h.currency == "USD"
    assert all(b.ts.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).hour == 0 for b in h.bars)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", CALLS)
def test_outage_matrix_never_says_unknown_symbol(yahoo, kind, fault):
    fake, provider = yahoo
    make, expected = FAULTS[fault]
    fake.fail_data(make())
    with pytest.raises(expected) as ei:
        CALLS[kind](provider)
    assert not isinstance(ei.value, NotFound)
    assert ei.value.provider == "yahoo"
    if fault == "429 retry-after":
        assert ei.value.retry_after == 30.0


def test_fast_info_keyerror_after_5xx_is_unavailable_with_tz_cached(yahoo):
    """The reported bug: fast_info hides the 5xx and raises KeyError('currentTradingPeriod') -> was NotFound."""
    fake, p = yahoo
    fake.on(r"/v8/finance/chart/AAPL$", SERVER_ERROR)
    with pytest.raises(MarketDataUnavailable):
        p.get_quote("AAPL")


@pytest.mark.parametrize("kind", ["quote", "history", "fundamentals", "batch"])
def test_only_yahoos_not_found_is_an_unknown_symbol(yahoo, kind):
    _, p = yahoo
    call = {"quote": lambda: p.get_quote("ZZZZZZ"), "history": lambda: p.get_history("ZZZZZZ", period="1mo"),
            "fundamentals": lambda: p.get_fundamentals("ZZZZZZ"),
            "batch": lambda: _raise_first({"AAPL": p.get_quotes_batch(["ZZZZZZ"])["ZZZZZZ"]})}[kind]
    with pytest.raises(NotFound):
        call()


@pytest.mark.parametrize("reply, expected", [(SERVER_ERROR, MarketDataUnavailable),
                                             (Reply(404, upstream("yahoo", "chart_not_found.json")), NotFound)])
def test_tz_missing_error_is_not_found_only_when_yahoo_says_so(yahoo, reply, expected):
    """history(start=...) needs the zone; yfinance raises YFTzMissingError whether the zone fetch met a 5xx or a 404."""
    from datetime import date

    fake, p = yahoo
    fake.tz("AAPL", None)
    fake.on(r"/v8/finance/chart/AAPL$", reply)
    fake.on(r"/v10/finance/quoteSummary/AAPL$", reply)
    with pytest.raises(expected):
        p.get_history("AAPL", start=date(2025, 1, 2), end=date(2025, 1, 8))


def test_invalid_crumb_on_quote_summary_is_unavailable_even_when_v7_answers(yahoo):
    """quoteSummary 401 leaves yfinance with a partial info dict: never cached as the company's profile."""
    fake, p = yahoo
    fake.on(r"/v10/finance/quoteSummary/AAPL$", INVALID_CRUMB)
    with pytest.raises(MarketDataUnavailable, match="401"):
        p.get_fundamentals("AAPL")


def test_a_crumb_retry_that_succeeds_is_a_success(yahoo):
    """yfinance retries a 401 once with a fresh crumb; the second answer is what counts."""
    fake, p = yahoo
    answers = iter([INVALID_CRUMB])
    fake.on(r"/v10/finance/quoteSummary/AAPL$",
            lambda *_: next(answers, Reply(200, upstream("yahoo", "quote_summary_aapl.json"))))
    assert p.get_fundamentals("AAPL").name == "Apple Inc."


def test_failed_search_is_not_replayed_from_yfinances_cache(yahoo):
    fake, p = yahoo
    fake.on(r"/v1/finance/search", SERVER_ERROR)
    with pytest.raises(MarketDataUnavailable):
        p.search_symbols("apple", 3)
    fake.on(r"/v1/finance/search", Reply(200, upstream("yahoo", "search_apple.json")))
    assert [m.symbol for m in p.search_symbols("apple", 3)][0] == "AAPL"


def test_answered_empty_search_and_news_are_valid_answers(yahoo):
    fake, p = yahoo
    assert p.search_symbols("qwertyuiop", 3) == []
    fake.on(r"/xhr/ncp", Reply(200, {"data": {"tickerStream": {"stream": []}}, "status": "OK"}))
    assert p.get_news("AAPL", 3).items == []


def test_batch_reports_each_symbols_class(yahoo):
    fake, p = yahoo
    fake.tz("MSFT", "America/New_York")
    fake.on(r"/v8/finance/chart/MSFT$", TOO_MANY_REQUESTS)
    got = p.get_quotes_batch(["AAPL", "MSFT", "ZZZZZZ"])
    assert got["AAPL"].price == 236.85
    assert isinstance(got["MSFT"], UpstreamRateLimited)  # not "data unavailable"
    assert isinstance(got["ZZZZZZ"], NotFound)


def test_yahoo_declining_a_range_is_unsupported(yahoo):
    fake, p = yahoo
    fake.on(r"/v8/finance/chart/AAPL$", Reply(422, upstream("yahoo", "chart_unprocessable_1m.json")))
    with pytest.raises(UpstreamUnsupported):
        p.get_history("AAPL", period="5d", interval="1m")


def test_one_session_for_ticker_download_and_search(yahoo):
    from yfinance.data import YfData

    fake, p = yahoo
    p.get_quote("AAPL")
    session = YfData()._session
    p.get_quotes_batch(["AAPL"])
    p.search_symbols("apple", 3)
    p.get_news("AAPL", 3)
    assert YfData()._session is session  # download(session=None) would have replaced it (and its cookies)
    assert type(session).__name__ == "FakeTransportSession"


def test_a_call_stops_at_its_deadline():
    fake = FakeYahoo().healthy()
    fake.tz("AAPL", "America/New_York")
    p = YahooProvider(session=fake.session(deadline_s=0.0))
    with pytest.raises(MarketDataUnavailable, match="timed out"):
        p.get_quote("AAPL")
    assert not fake.data_requests()  # refused locally: nothing went out past the deadline


def test_a_call_waiting_for_a_slot_behind_a_hung_yahoo_gives_up_at_its_deadline():
    """Calls beyond `max_concurrency` wait for a slot. Behind calls hung on Yahoo they waited without bound, each
    holding a worker thread of the shared pool (every API request runs there): a Yahoo hang could starve the app.
    The wait counts against the call's deadline; a call that gets no slot in time fails as unavailable, unasked."""
    import threading

    fake = FakeYahoo().healthy()
    fake.tz("AAPL", "America/New_York")
    fake.tz("MSFT", "America/New_York")
    release = threading.Event()
    fake.on(r"/v8/finance/chart/AAPL$", lambda *_: (release.wait(30), timeout())[1])  # hung until released
    p = YahooProvider(session=fake.session(), max_concurrency=1, deadline_s=0.3)
    hung = threading.Thread(target=lambda: pytest.raises(MarketDataUnavailable, p.get_quote, "AAPL"))
    hung.start()
    while not fake.data_requests():  # the first call holds the only slot
        threading.Event().wait(0.01)
    try:
        with pytest.raises(MarketDataUnavailable, match="busy"):
            p.get_quote("MSFT")
        assert not [r for r in fake.data_requests() if "MSFT" in r["url"]]  # refused locally: nothing went out
    finally:
        release.set()
        hung.join(5)


# -- the same faults through the DataManager: fallback taken, breaker state, what is cached -----------------------
def _manager(fake):
    from datetime import datetime, timezone

    from shared.market.manager import DataManager
    from shared.market.providers.offline import OfflineProvider
    from tests.unit.market.market_fakes import FakeCache, FakeClock, FakeSingleFlight, SyncExecutor, make_settings

    clock = FakeClock(datetime.now(timezone.utc))
    cache = FakeCache(clock)
    settings = make_settings({k: ["yahoo", "offline"] for k in ("quote", "history", "fundamentals", "news", "search")})
    dm = DataManager(settings, cache, FakeSingleFlight(), clock=clock, executor=SyncExecutor(),
                     providers={"yahoo": YahooProvider(session=fake.session()), "offline": OfflineProvider(clock=clock)})
    return dm, cache


@pytest.mark.parametrize("fault", FAULTS)
def test_outage_matrix_through_the_data_manager(yahoo, fault):
    fake, _ = yahoo
    make, expected = FAULTS[fault]
    fake.fail_data(make())
    dm, cache = _manager(fake)
    q = dm.get_quote("AAPL")
    assert q.provenance.source == "offline" and q.provenance.fallback_from == ["yahoo"]
    cached = cache.get_json(cache.key("market", "quote", "AAPL"))
    assert cached["v"]["provenance"]["source"] == "offline" and "not_found" not in cached
    breaker = dm.health_check()[1]["providers"]["yahoo"]
    outcome = "rate_limited" if expected is UpstreamRateLimited else "unavailable"
    assert dm.stats()["upstream"]["yahoo"] == {outcome: 1}
    # A throttle opens the breaker at once (Yahoo is not asked again); an outage after `failure_threshold` calls.
    assert breaker["state"] == ("open" if outcome == "rate_limited" else "closed") and breaker["consecutive_failures"] == 1
    for sym in ("MSFT", "NVDA"):
        assert dm.get_quote(sym).provenance.fallback_from == ["yahoo"]
    assert dm.health_check()[1]["providers"]["yahoo"]["state"] == "open"


def test_yahoo_not_found_ends_the_chain_and_is_not_cached(yahoo):
    fake, _ = yahoo
    dm, cache = _manager(fake)
    with pytest.raises(NotFound):
        dm.get_quote("ZZZZZZ")
    assert "offline" not in dm.stats()["upstream"]  # the positive answer is final: no fallback
    assert dm.health_check()[1]["providers"]["yahoo"]["state"] == "closed"
    assert cache.get_json(cache.key("market", "quote", "ZZZZZZ")) is None
