"""US equity market hours (NYSE regular session) for market-aware cache lifetimes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN_TIME = time(9, 30)
CLOSE_TIME = time(16, 0)

# Full-day NYSE closures (2024-2027; other years count weekdays only). Early closes (13:00) are treated as full sessions: a quote cached
# after an early close is simply refreshed more often than needed, never served too long.
NYSE_HOLIDAYS: frozenset[date] = frozenset(
    date.fromisoformat(d)
    for d in (
        "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19",
        "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25",
        "2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17", "2025-04-18", "2025-05-26",
        "2025-06-19", "2025-07-04", "2025-09-01", "2025-11-27", "2025-12-25",
        "2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25", "2026-06-19",
        "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25",
        "2027-01-01", "2027-01-18", "2027-02-15", "2027-03-26", "2027-05-31", "2027-06-18",
        "2027-07-05", "2027-09-06", "2027-11-25", "2027-12-24",
    )
)


def is_trading_day(d: date) -> bool:
    """Monday to Friday and not a listed NYSE holiday."""
    return d.weekday() < 5 and d not in NYSE_HOLIDAYS


def _as_ny(now: datetime) -> datetime:
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(NEW_YORK)


def is_market_open(now: datetime) -> bool:
    """True during the regular session 09:30 <= t < 16:00 New York time on a trading day."""
    ny = _as_ny(now)
    return is_trading_day(ny.date()) and OPEN_TIME <= ny.time() < CLOSE_TIME


def next_open(now: datetime) -> datetime:
    """The next session open strictly after ``now`` (UTC-aware)."""
    ny = _as_ny(now)
    d = ny.date()
    if ny.time() >= OPEN_TIME:
        d += timedelta(days=1)
    while not is_trading_day(d):
        d += timedelta(days=1)
    return datetime.combine(d, OPEN_TIME, tzinfo=NEW_YORK).astimezone(timezone.utc)


# Providers settle the official close a few minutes after 16:00; until then keep the normal TTL.
CLOSE_SETTLE = timedelta(minutes=15)


def price_fresh_seconds(now: datetime, base_ttl: float) -> float:
    """How long a quote fetched at ``now`` stays fresh.

    While the exchange is open (and for 15 minutes after the close, while the closing print
    settles): ``base_ttl``. Otherwise the price cannot move, so it stays fresh until the next
    open (never less than ``base_ttl``).
    """
    ny = _as_ny(now)
    closed_at = datetime.combine(ny.date(), CLOSE_TIME, tzinfo=NEW_YORK)
    if is_market_open(now) or (is_trading_day(ny.date()) and closed_at <= ny < closed_at + CLOSE_SETTLE):
        return float(base_ttl)
    return max(float(base_ttl), (next_open(now) - ny).total_seconds())


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in [start, end]."""
    out = []
    d = start
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def session_close(d: date) -> datetime:
    """The regular close (16:00 New York) of day ``d``, in UTC."""
    return datetime.combine(d, CLOSE_TIME, tzinfo=NEW_YORK).astimezone(timezone.utc)


def last_session_date(now: datetime) -> date:
    """The most recent trading day whose session has started at or before ``now`` (New York dates)."""
    ny = _as_ny(now)
    d = ny.date()
    if ny.time() < OPEN_TIME:
        d -= timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def quote_as_of(now: datetime, session_date: date | None = None) -> datetime:
    """What moment a price fetched at ``now`` describes: ``now`` while the exchange is open, otherwise the
    close of the last session (``session_date`` when the provider says which day its price is from; an
    earlier day than today means that day's close even while the exchange is open), never later than ``now``. So a Saturday request is "as of Friday 16:00 ET", not "as of Saturday"."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if is_market_open(now) and (session_date is None or session_date >= _as_ny(now).date()):
        return now
    return min(now, session_close(session_date or last_session_date(now)))
