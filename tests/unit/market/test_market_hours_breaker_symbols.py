from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.errors import ValidationFailed
from shared.resilience import BreakerPolicy, CircuitBreaker
from shared.market.hours import is_market_open, next_open, price_fresh_seconds
from shared.market.symbols import builtin_symbols, normalize_symbol


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


@pytest.mark.parametrize("when, is_open", [
    (utc(2025, 1, 8, 14, 30), True),    # Wed 09:30 New York (EST, UTC-5)
    (utc(2025, 1, 8, 14, 29), False),   # 09:29
    (utc(2025, 1, 8, 20, 59), True),    # 15:59
    (utc(2025, 1, 8, 21, 0), False),    # 16:00 close
    (utc(2025, 7, 8, 13, 30), True),    # Tue 09:30 EDT (UTC-4)
    (utc(2025, 1, 11, 15, 0), False),   # Saturday
    (utc(2026, 11, 26, 15, 0), False),  # Thanksgiving
])
def test_market_open(when, is_open):
    assert is_market_open(when) is is_open


def test_next_open_skips_weekend_and_holidays():
    assert next_open(utc(2025, 1, 10, 22, 0)) == utc(2025, 1, 13, 14, 30)  # Fri after close -> Mon
    assert next_open(utc(2026, 11, 25, 22, 0)) == utc(2026, 11, 27, 14, 30)  # over Thanksgiving
    assert next_open(utc(2025, 1, 8, 12, 0)) == utc(2025, 1, 8, 14, 30)  # same morning


def test_price_fresh_seconds():
    assert price_fresh_seconds(utc(2025, 1, 8, 15, 0), 60) == 60
    assert price_fresh_seconds(utc(2025, 1, 11, 14, 30), 60) == 2 * 86400  # Sat 09:30 -> Mon 09:30
    assert price_fresh_seconds(utc(2025, 1, 8, 14, 29, 30), 60) == 60  # 30 s before open: never below TTL
    assert price_fresh_seconds(utc(2025, 1, 10, 21, 5), 60) == 60  # Fri 16:05: the close is still settling
    assert price_fresh_seconds(utc(2025, 1, 10, 21, 15), 60) == (2 * 86400 + 17.25 * 3600)  # Fri 16:15 -> Mon 09:30


class Tick:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_breaker_opens_after_threshold_and_half_opens_with_one_probe():
    tick = Tick()
    br = CircuitBreaker("p", BreakerPolicy(failure_threshold=3, cooldown_s=10), clock=tick)
    for _ in range(2):
        br.record_failure()
    assert br.state == "closed" and br.allow()
    br.record_failure()
    assert br.state == "open" and not br.allow()
    tick.t = 10
    assert br.state == "half_open"
    assert br.allow() is True and br.allow() is False  # one probe at a time
    br.record_failure()  # failed probe: open again for another cool-down
    assert br.state == "open"
    tick.t = 20
    assert br.allow()
    br.record_success()
    assert br.state == "closed" and br.snapshot()["consecutive_failures"] == 0 and br.snapshot()["opens"] == 2


def test_breaker_opens_at_once_on_rate_limit_and_success_resets_count():
    br = CircuitBreaker("p", BreakerPolicy(failure_threshold=3, cooldown_s=10), clock=Tick())
    br.record_failure()
    br.record_success()
    br.record_failure()
    br.record_failure()
    assert br.state == "closed"
    br.record_failure(rate_limited=True)
    assert br.state == "open" and br.snapshot()["retry_in_s"] == 10


@pytest.mark.parametrize("raw, expected", [("aapl", "AAPL"), (" brk-b ", "BRK-B"), ("^gspc", "^GSPC"), ("EURUSD=X", "EURUSD=X"), ("BRK.B", "BRK.B")])
def test_normalize_symbol_ok(raw, expected):
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["", "AAPL MSFT", "A" * 16, "AAPL;DROP", "ÄPFEL", None, 42])
def test_normalize_symbol_rejects(raw):
    with pytest.raises(ValidationFailed) as ei:
        normalize_symbol(raw)
    assert ei.value.status == 422 and "symbol" in ei.value.errors


def test_builtin_catalogue():
    rows = builtin_symbols()
    assert len(rows) >= 150
    assert len({r["symbol"] for r in rows}) == len(rows)
    assert all(r["name"] and r["exchange"] and r["type"] in ("equity", "etf", "index") for r in rows)
    assert all(normalize_symbol(r["symbol"]) == r["symbol"] for r in rows)


def test_breaker_release_frees_the_probe_slot_without_closing():
    tick = Tick()
    br = CircuitBreaker("p", BreakerPolicy(failure_threshold=1, cooldown_s=10), clock=tick)
    br.record_failure()
    tick.t = 10
    assert br.allow() is True and br.allow() is False
    br.release()
    assert br.state == "half_open" and br.allow() is True


def test_quote_as_of_is_now_while_open_else_last_session_close():
    from datetime import date as _date

    from shared.market.hours import quote_as_of

    utc = timezone.utc
    open_now = datetime(2025, 1, 10, 18, 0, tzinfo=utc)
    assert quote_as_of(open_now) == open_now
    assert quote_as_of(open_now, _date(2025, 1, 8)) == datetime(2025, 1, 8, 21, 0, tzinfo=utc)  # an older session's price
    assert quote_as_of(datetime(2025, 1, 11, 15, 0, tzinfo=utc)) == datetime(2025, 1, 10, 21, 0, tzinfo=utc)  # Saturday
    assert quote_as_of(datetime(2025, 1, 13, 13, 0, tzinfo=utc)) == datetime(2025, 1, 10, 21, 0, tzinfo=utc)  # Monday pre-open
    settling = datetime(2025, 1, 10, 21, 5, tzinfo=utc)
    assert quote_as_of(settling) == datetime(2025, 1, 10, 21, 0, tzinfo=utc)
