"""Symbol validation and the built-in catalogue of real US tickers (used by the offline provider)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from shared.errors import ValidationFailed

_SYMBOL_RE = re.compile(r"^[A-Z0-9.\-^=]{1,15}$")


def normalize_symbol(raw: object) -> str:
    """Return the canonical (upper-case, trimmed) symbol or raise ValidationFailed (422).

    Guarantees the result matches ``^[A-Z0-9.\\-^=]{1,15}$``, so it is safe in cache keys and URLs.
    """
    if not isinstance(raw, str):
        raise ValidationFailed("Invalid symbol", errors={"symbol": ["Symbol must be a string"]})
    sym = raw.strip().upper()
    if not _SYMBOL_RE.match(sym):
        raise ValidationFailed(
            "Invalid symbol",
            errors={"symbol": ["Symbol must be 1-15 characters of A-Z, 0-9, '.', '-', '^' or '='"]},
        )
    return sym


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
    """The trading currency of a catalogued symbol, for providers whose quotes do not say it."""
    entry = builtin_index().get(symbol.upper())
    return entry.get("currency") if entry else None
