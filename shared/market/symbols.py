"""Symbols: validation, listings (exchange, time zone, currency, each provider's spelling) and the built-in catalogue."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from shared.errors import ValidationFailed

# Symbols as sent (any case); canonical symbols are upper-cased. The HTTP schemas use this pattern too.
SYMBOL_PATTERN = r"^[A-Za-z0-9.\-^=]{1,15}$"
_SYMBOL_RE = re.compile(r"^[A-Z0-9.\-^=]{1,15}$")
SYMBOL_RULE = "Symbol must be 1-15 characters of A-Z, 0-9, '.', '-', '^' or '='"


def check_symbol(raw: object) -> str:
    """The canonical (upper-case, trimmed) symbol; ValueError otherwise (for argument models).

    Guarantees the result matches ``^[A-Z0-9.\\-^=]{1,15}$``, so it is safe in cache keys and URLs.
    """
    if not isinstance(raw, str):
        raise ValueError("Symbol must be a string")
    sym = raw.strip().upper()
    if not _SYMBOL_RE.match(sym):
        raise ValueError(SYMBOL_RULE)
    return sym


def normalize_symbol(raw: object) -> str:
    """``check_symbol`` for callers outside a model: ValidationFailed (422) on the ``symbol`` field."""
    try:
        return check_symbol(raw)
    except ValueError as exc:
        raise ValidationFailed("Invalid symbol", errors={"symbol": [str(exc)]}) from None


@lru_cache(maxsize=1)
def builtin_symbols() -> tuple[dict[str, Any], ...]:
    """The shipped catalogue (``shared/market/data/symbols.json``): symbol, name, exchange, type, currency, sector."""
    text = resources.files("shared.market").joinpath("data/symbols.json").read_text(encoding="utf-8")
    return tuple(json.loads(text))


@lru_cache(maxsize=1)
def builtin_index() -> dict[str, dict[str, Any]]:
    """Catalogue entries by symbol."""
    return {row["symbol"]: row for row in builtin_symbols()}


def listing_currency(symbol: str) -> str | None:
    """The currency a symbol is quoted in, from its listing (or the catalogue); None when unknown, never assumed."""
    entry = builtin_index().get(symbol.upper())
    if entry and entry.get("currency"):
        return str(entry["currency"])
    row = listing_of(symbol)
    return row.currency if row is not None else None


@dataclass(frozen=True)
class Listing:
    """Where a symbol trades: one row per exchange whose symbols the providers spell differently.

    ``yahoo`` is the suffix our API uses (Yahoo's spelling, also the canonical symbol); ``alpha_vantage`` Alpha
    Vantage's. Yahoo suffixes by MIC: ``yfinance.const._MIC_TO_YAHOO_SUFFIX``. Alpha Vantage suffixes: the
    exchanges its TIME_SERIES_DAILY documentation gives examples for (TSCO.LON, SHOP.TRT, GPV.TRV, MBG.DEX,
    RELIANCE.BSE, 600104.SHH, 000002.SHZ) and the Frankfurt listings its SYMBOL_SEARCH returns (TCO2.FRK).
    """

    yahoo: str
    alpha_vantage: str
    exchange: str | None
    timezone: str
    currency: str  # prices are quoted in it: London quotes pence (GBX), not pounds


US = Listing("", "", None, "America/New_York", "USD")  # NYSE and Nasdaq symbols carry no suffix on either side
LISTINGS: tuple[Listing, ...] = (
    US,
    Listing(".L", ".LON", "LSE", "Europe/London", "GBX"),
    Listing(".TO", ".TRT", "TSX", "America/Toronto", "CAD"),
    Listing(".V", ".TRV", "TSXV", "America/Toronto", "CAD"),
    Listing(".DE", ".DEX", "XETRA", "Europe/Berlin", "EUR"),
    Listing(".F", ".FRK", "FSX", "Europe/Berlin", "EUR"),
    Listing(".BO", ".BSE", "BSE", "Asia/Kolkata", "INR"),
    Listing(".SS", ".SHH", "SSE", "Asia/Shanghai", "CNY"),
    Listing(".SZ", ".SHZ", "SZSE", "Asia/Shanghai", "CNY"),
)
_BY_YAHOO = {row.yahoo: row for row in LISTINGS if row.yahoo}
_BY_AV = {row.alpha_vantage: row for row in LISTINGS if row.alpha_vantage}
_US_PLAIN = re.compile(r"^[A-Z]{1,5}$")
# Yahoo reports some prices in minor units with a lower-case letter; other providers use these codes.
_MINOR_UNITS = {"GBp": "GBX", "ZAc": "ZAC", "ILA": "ILA"}


def _split(symbol: str, known: dict[str, Listing]) -> tuple[str, Listing | None]:
    base, dot, suffix = symbol.rpartition(".")
    if dot and base and f".{suffix}" in known:
        return base, known[f".{suffix}"]
    return symbol, None


def listing_of(symbol: str) -> Listing | None:
    """The listing of a (canonical, Yahoo-spelled) symbol, or None when the table does not know its exchange.

    A plain 1-5 letter ticker (or a catalogued US symbol such as BRK-B) is a US listing; indices (^GSPC),
    currencies (EURUSD=X) and unknown suffixes are not in the table.
    """
    sym = symbol.upper()
    _, row = _split(sym, _BY_YAHOO)
    if row is not None:
        return row
    if _US_PLAIN.match(sym) or (builtin_index().get(sym, {}).get("currency") == "USD" and not sym.startswith("^")):
        return US
    return None


def to_alpha_vantage(symbol: str) -> str | None:
    """Alpha Vantage's spelling of a canonical symbol (VOD.L -> VOD.LON), None when it has no listing we can map."""
    row = listing_of(symbol)
    if row is None:
        return None
    base = symbol.upper()[: len(symbol) - len(row.yahoo)] if row.yahoo else symbol.upper()
    return base + row.alpha_vantage


def from_alpha_vantage(av_symbol: str) -> tuple[str, Listing] | None:
    """The canonical symbol and listing of an Alpha Vantage symbol (TSCO.LON -> TSCO.L), None for exchanges we do not map."""
    sym = av_symbol.strip().upper()
    base, row = _split(sym, _BY_AV)
    if row is not None:
        return base + row.yahoo, row
    if "." not in sym and listing_of(sym) is US:
        return sym, US
    return None


def normalize_currency(code: object) -> str | None:
    """An upper-case currency code, minor units kept distinct (Yahoo's GBp -> GBX, never GBP); None when unknown."""
    if not isinstance(code, str) or not code.strip():
        return None
    code = code.strip()
    return _MINOR_UNITS.get(code, code.upper())
