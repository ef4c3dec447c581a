"""Small parsing helpers shared by the provider normalisers (pure, no SDK imports)."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any


def num(value: Any) -> float | None:
    """A finite float, or None for None/NaN/inf/'None'/'-'/'' and anything unparsable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        v = value.strip().rstrip("%")
        if v in ("", "None", "-", "null", "N/A", "NaN"):
            return None
        try:
            value = float(v)
        except ValueError:
            return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def integer(value: Any) -> int | None:
    f = num(value)
    return int(f) if f is not None else None


def to_datetime(value: Any) -> datetime | None:
    """UTC-aware datetime from a datetime/date/pandas Timestamp, ISO string, AV compact time or epoch seconds."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp, without importing pandas
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=timezone.utc) if math.isfinite(value) else None
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if len(s) in (13, 15) and s[8] == "T" and s[:8].isdigit():  # Alpha Vantage: 20240102T153000
            fmt = "%Y%m%dT%H%M%S" if len(s) == 15 else "%Y%m%dT%H%M"
            return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return None
        return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return None
