"""Technical indicators in pure Python (no numpy), TA-Lib conventions.

Every function returns a list aligned with its input: ``None`` where the indicator is not yet
defined (warm-up). Conventions:
- SMA: mean of the last n values.
- EMA: seeded with the SMA of the first n values, then ``k = 2 / (n + 1)``.
- RSI (Wilder): first averages are plain means of the first n changes, then Wilder smoothing
  ``avg = (avg * (n - 1) + x) / n``; RSI is 100 when there are no losses.
- MACD(fast, slow, signal): EMA(fast) - EMA(slow); signal = EMA(signal) of the MACD line.
- Bollinger(n, k): SMA(n) +- k * population standard deviation of the last n closes.
- ATR (Wilder): true range from the second bar; first ATR = mean of the first n true ranges.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Sequence

from pydantic import Field, StringConstraints

from shared.errors import ValidationFailed

Series = list[float | None]

MIN_WINDOW, MAX_WINDOW = 2, 250


def sma(values: Sequence[float], n: int) -> Series:
    out: Series = [None] * len(values)
    if n <= 0 or len(values) < n:
        return out
    window = sum(values[:n])
    out[n - 1] = window / n
    for i in range(n, len(values)):
        window += values[i] - values[i - n]
        out[i] = window / n
    return out


def ema(values: Sequence[float], n: int) -> Series:
    out: Series = [None] * len(values)
    if n <= 0 or len(values) < n:
        return out
    k = 2.0 / (n + 1)
    prev = sum(values[:n]) / n
    out[n - 1] = prev
    for i in range(n, len(values)):
        prev = values[i] * k + prev * (1 - k)
        out[i] = prev
    return out


def _ema_partial(values: Series, n: int) -> Series:
    """EMA over a series that starts with None (warm-up of an upstream indicator)."""
    start = next((i for i, v in enumerate(values) if v is not None), None)
    out: Series = [None] * len(values)
    if start is None:
        return out
    tail = ema([float(v) for v in values[start:]], n)  # type: ignore[arg-type]
    out[start:] = tail
    return out


def rsi(closes: Sequence[float], n: int = 14) -> Series:
    out: Series = [None] * len(closes)
    if n <= 0 or len(closes) <= n:
        return out
    gains = losses = 0.0
    for i in range(1, n + 1):
        d = closes[i] - closes[i - 1]
        gains += max(d, 0.0)
        losses += max(-d, 0.0)
    avg_g, avg_l = gains / n, losses / n

    def value(g: float, l: float) -> float:
        if l == 0:
            return 100.0 if g > 0 else 50.0
        return 100.0 - 100.0 / (1.0 + g / l)

    out[n] = value(avg_g, avg_l)
    for i in range(n + 1, len(closes)):
        d = closes[i] - closes[i - 1]
        avg_g = (avg_g * (n - 1) + max(d, 0.0)) / n
        avg_l = (avg_l * (n - 1) + max(-d, 0.0)) / n
        out[i] = value(avg_g, avg_l)
    return out


def macd(closes: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Series, Series, Series]:
    """(macd line, signal line, histogram)."""
    ef, es = ema(closes, fast), ema(closes, slow)
    line: Series = [f - s if f is not None and s is not None else None for f, s in zip(ef, es)]
    sig = _ema_partial(line, signal)
    hist: Series = [m - s if m is not None and s is not None else None for m, s in zip(line, sig)]
    return line, sig, hist


def bollinger(closes: Sequence[float], n: int = 20, k: float = 2.0) -> tuple[Series, Series, Series]:
    """(upper, middle, lower)."""
    mid = sma(closes, n)
    upper: Series = [None] * len(closes)
    lower: Series = [None] * len(closes)
    for i in range(n - 1, len(closes)):
        m = mid[i]
        if m is None:
            continue
        var = sum((x - m) ** 2 for x in closes[i - n + 1 : i + 1]) / n
        sd = math.sqrt(var)
        upper[i], lower[i] = m + k * sd, m - k * sd
    return upper, mid, lower


def atr(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], n: int = 14) -> Series:
    size = len(closes)
    out: Series = [None] * size
    if n <= 0 or size <= n:
        return out
    tr = [0.0] * size
    for i in range(1, size):
        pc = closes[i - 1]
        tr[i] = max(highs[i] - lows[i], abs(highs[i] - pc), abs(lows[i] - pc))
    prev = sum(tr[1 : n + 1]) / n
    out[n] = prev
    for i in range(n + 1, size):
        prev = (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


@dataclass(frozen=True)
class IndicatorSpec:
    """A parsed indicator name such as ``sma_20`` or ``macd``."""

    name: str  # as requested (lower-cased)
    kind: str  # sma, ema, rsi, macd, bbands, atr
    params: tuple[float, ...]

    @property
    def lookback(self) -> int:
        """Bars needed before the values are meaningful (warm-up plus convergence for smoothed ones)."""
        p = [int(x) for x in self.params]
        if self.kind == "sma" or self.kind == "bbands":
            return p[0]
        if self.kind in ("ema", "rsi", "atr"):
            return 3 * p[0] + 1
        if self.kind == "macd":
            return 3 * p[1] + p[2]
        return 0


# The one grammar of indicator names: the HTTP query, the agent's tools and the parser all use it, so what the
# OpenAPI document and the tools' JSON schemas say is exactly what is accepted. Windows 2..250, band width (0, 10].
_WINDOW = r"(?:[2-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|250)"
_WIDTH = r"(?:[1-9](?:\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*|10(?:\.0+)?)"
INDICATOR_NAME = rf"(?:(?:sma|ema|rsi|atr)_{_WINDOW}|bbands_{_WINDOW}(?:_{_WIDTH})?|macd)"
SUPPORTED_HELP = f"sma_N, ema_N, rsi_N, atr_N, bbands_N[_K] ({MIN_WINDOW} <= N <= {MAX_WINDOW}, 0 < K <= 10), macd"
IndicatorName = Annotated[
    str, StringConstraints(pattern=rf"^{INDICATOR_NAME}$"), Field(description=f"One of {SUPPORTED_HELP}")
]
_NAME_RE = re.compile(rf"^{INDICATOR_NAME}$")
MACD_PERIODS = (12, 26, 9)


def indicator_list_pattern(max_names: int) -> str:
    """A comma-separated list of 1..max_names indicator names (the HTTP query's `names`)."""
    return rf"^{INDICATOR_NAME}(?:,{INDICATOR_NAME}){{0,{max_names - 1}}}$"


def parse_indicator(raw: str) -> IndicatorSpec:
    """Parse one indicator name (case-insensitive); ValueError with a human reason if it is not an IndicatorName."""
    name = (raw or "").strip().lower()
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"'{raw}' is not a supported indicator ({SUPPORTED_HELP})")
    kind, *params = name.split("_")
    if kind == "macd":
        return IndicatorSpec(name, kind, MACD_PERIODS)
    if kind == "bbands":
        return IndicatorSpec(name, kind, (int(params[0]), float(params[1]) if len(params) > 1 else 2.0))
    return IndicatorSpec(name, kind, (int(params[0]),))


def parse_indicators(names: Sequence[str]) -> list[IndicatorSpec]:
    """Parse and de-duplicate names; raise ValidationFailed (422) listing every bad name."""
    if not names:
        raise ValidationFailed("No indicator requested", errors={"names": ["At least one indicator name is required"]})
    if len(names) > 20:
        raise ValidationFailed("Too many indicators", errors={"names": ["At most 20 indicators per request"]})
    specs: list[IndicatorSpec] = []
    problems: list[str] = []
    seen: set[str] = set()
    for raw in names:
        try:
            spec = parse_indicator(raw if isinstance(raw, str) else "")
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if spec.name not in seen:
            seen.add(spec.name)
            specs.append(spec)
    if problems:
        raise ValidationFailed("Unknown indicator", errors={"names": problems})
    return specs


def compute(spec: IndicatorSpec, highs: Sequence[float], lows: Sequence[float], closes: Sequence[float]) -> list[tuple[float | None, dict[str, float | None] | None]]:
    """Per bar: (value, values) for the spec; multi-line indicators fill ``values``."""
    p = spec.params
    if spec.kind == "sma":
        return [(v, None) for v in sma(closes, int(p[0]))]
    if spec.kind == "ema":
        return [(v, None) for v in ema(closes, int(p[0]))]
    if spec.kind == "rsi":
        return [(v, None) for v in rsi(closes, int(p[0]))]
    if spec.kind == "atr":
        return [(v, None) for v in atr(highs, lows, closes, int(p[0]))]
    if spec.kind == "bbands":
        up, mid, lo = bollinger(closes, int(p[0]), float(p[1]))
        return [(m, {"upper": u, "middle": m, "lower": l} if m is not None else None) for u, m, l in zip(up, mid, lo)]
    if spec.kind == "macd":
        line, sig, hist = macd(closes, int(p[0]), int(p[1]), int(p[2]))
        return [
            (m, {"macd": m, "signal": s, "histogram": h} if m is not None else None) for m, s, h in zip(line, sig, hist)
        ]
    raise ValueError(spec.kind)  # pragma: no cover - parse_indicator admits only the kinds above
