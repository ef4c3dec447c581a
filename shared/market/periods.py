"""History request vocabulary: valid periods/intervals and how a period maps to a date range."""

from __future__ import annotations

from datetime import date, timedelta
from typing import get_args

from shared.market.hours import is_trading_day
from shared.market.models import Interval, Period

PERIODS: tuple[str, ...] = get_args(Period)
INTERVALS: tuple[str, ...] = get_args(Interval)
INTRADAY: frozenset[str] = frozenset({"1m", "5m", "15m", "30m", "1h"})
# Yahoo's own limits on intraday look-back; applied to every provider so results agree.
INTRADAY_MAX_DAYS = {"1m": 7, "5m": 60, "15m": 60, "30m": 60, "1h": 730}
EARLIEST = date(1990, 1, 1)


def date_range(period: str, today: date, start: date | None = None, end: date | None = None) -> tuple[date, date]:
    """Inclusive [first, last] calendar dates covered by a request (start/end win over period)."""
    last = min(end, today) if end else today
    if start:
        return start, last
    if period == "1d":
        first = last
        while not is_trading_day(first) and first > EARLIEST:
            first -= timedelta(days=1)
        return first, last
    if period == "5d":
        first, n = last, 0
        while True:
            if is_trading_day(first):
                n += 1
                if n == 5:
                    break
            first -= timedelta(days=1)
        return first, last
    if period == "ytd":
        return date(last.year, 1, 1), last
    if period == "max":
        return EARLIEST, last
    months = {"1mo": 1, "3mo": 3, "6mo": 6, "1y": 12, "2y": 24, "5y": 60, "10y": 120}[period]
    return _minus_months(last, months), last


def _minus_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + (d.month - 1) - months, 12)
    day = min(d.day, [31, 29 if y % 4 == 0 and (y % 100 or y % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m])
    return date(y, m + 1, day)
