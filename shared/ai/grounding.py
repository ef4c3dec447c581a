"""Grounding post-check: which numbers in an answer appear in none of the turn's tool results.

A number in the answer is grounded when some number in the tool results, scaled by the answer's unit
(%, K/M/B/T, thousand/million/billion/trillion) and rounded to the answer's precision, equals it.
A percentage may also come from a fraction (0.2531 -> 25.31%). Signs are ignored ("down 1.2%" for -1.2).
Ignored in the answer: ISO dates and clock times, list markers ("1. ", "2) "), plain years 1900-2100 (not when
written as money, "$2000"), digits glued to letters/underscores ("sma_20", "Q3") and known names ("3M").
"N x"/"Nx" multiples are checked like plain numbers; "3T"/"3B" are amounts.
Never a source of grounding: timestamps, dates, ids, urls and cache ages in the tool results (keys in
_NON_EVIDENCE_KEYS and any date/time text), so a fetch time cannot "ground" an invented 12% or $18.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

_DATE_RE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"
)
_LIST_MARKER_RE = re.compile(r"(?m)^(\s*)\d{1,2}[.)](?=\s)")
_NUM_RE = re.compile(
    r"(?<![\w.\-])(?<![\w.]-)[-+]?\$?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?P<unit>\s?%|\s?(?:trillion|billion|million|thousand)\b|[KMBT]\b|[kmbt]n?\b|\s?[x×](?![\w]))?"
    r"(?![\w])"
)
_UNITS = {
    "k": 1e3, "thousand": 1e3,
    "m": 1e6, "mn": 1e6, "million": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9,
    "t": 1e12, "tn": 1e12, "trillion": 1e12,
}
_TOOL_NUM_RE = re.compile(r"\d+(?:\.\d+)?")
# Provenance/bookkeeping fields: their digits are no evidence for any figure in an answer.
_NON_EVIDENCE_KEYS = frozenset({
    "as_of", "fetched_at", "published_at", "ts", "first_date", "last_date", "id", "url", "cache_age_s",
})
# Dates and times inside tool text (ISO with fractions/offsets, "18:37:12.345678", RFC 2822 day-month-year).
_TOOL_DATE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|\s?[+-]\d{2}:?\d{2}|\s?[A-Z]{2,4}\b)?"
    r"|\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{4}\b"
)
# Tokens that look like "<digit><unit>" but are names, not amounts.
_KNOWN_NAMES = frozenset({"3M"})


def _tool_numbers(value: Any, out: list[float]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out.append(abs(float(value)))
    elif isinstance(value, str):
        out.extend(float(m) for m in _TOOL_NUM_RE.findall(_TOOL_DATE_RE.sub(" ", value)))
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and (k in _NON_EVIDENCE_KEYS or k.endswith("_at")):
                continue
            _tool_numbers(k, out)
            _tool_numbers(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _tool_numbers(v, out)


def answer_numbers(answer: str) -> list[tuple[str, float, int, float, bool]]:
    """(raw text, displayed value, decimals, unit scale, is_percent) for each checkable number."""
    text = _DATE_RE.sub(" ", answer)
    text = _LIST_MARKER_RE.sub(r"\1", text)
    found = []
    for m in _NUM_RE.finditer(text):
        int_part, frac = m.group("int"), m.group("frac") or ""
        unit = (m.group("unit") or "").strip().lower()
        value = float(int_part.replace(",", "") + frac)
        decimals = len(frac) - 1 if frac else 0
        is_pct = unit == "%"
        money = "$" in m.group(0)
        if not unit and not frac and not money and "," not in int_part and 1900 <= value <= 2100:
            continue  # a year
        if m.group(0).strip().lstrip("+-").upper() in _KNOWN_NAMES:
            continue  # "3M": a company, not 3 million
        scale = _UNITS.get(unit, 1.0)
        found.append((m.group(0).strip(), value, decimals, scale, is_pct))
    return found


def _matches(value: float, decimals: int, scale: float, is_pct: bool, pool: Iterable[float]) -> bool:
    tol = 0.5 * 10 ** (-decimals) + 1e-9
    for t in pool:
        if abs(t / scale - value) <= tol:
            return True
        if is_pct and abs(t * 100 - value) <= tol:
            return True
    return False


def find_ungrounded_numbers(answer: str, tool_results: Iterable[Any]) -> list[str]:
    """Numbers (as written in the answer) that no tool result of the turn supports; deduplicated, in order."""
    pool: list[float] = []
    for r in tool_results:
        _tool_numbers(r, pool)
    out: list[str] = []
    for raw, value, decimals, scale, is_pct in answer_numbers(answer):
        if not _matches(value, decimals, scale, is_pct, pool) and raw not in out:
            out.append(raw)
    return out
