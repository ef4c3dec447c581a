"""Short text forms of tool payloads: numbers exactly as in the payload, each datum with its source and as-of.

The offline model writes its answers from these lines and the MCP endpoint returns them beside the structured
result, so an answer quotes every figure as the tool returned it (no rounding, nothing ungrounded).
"""

from __future__ import annotations

from typing import Any


def fmt(v: Any) -> str:
    """A number exactly as in the tool result (big integral floats get thousands separators)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 10_000:
            return f"{int(v):,}"
        return repr(v)
    return str(v)


def pct_of_fraction(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{fmt(v)} ({v * 100:.2f}%)"
    return str(v)


def prov_line(p: dict[str, Any] | None) -> str:
    """" (source: x, as of t[, STALE data])" for a provenance dict; empty without one."""
    if not isinstance(p, dict) or not p:
        return ""
    bits = [f"source: {p.get('source', 'unknown')}"]
    if p.get("as_of"):
        bits.append(f"as of {p['as_of']}")
    if p.get("stale"):
        bits.append("STALE data")
    return " (" + ", ".join(bits) + ")"


_NOT_SCALARS = {"id", "_id", "name", "symbol", "provenance", "positions", "quote", "user_id", "owner_id"}


def scalars(item: dict[str, Any]) -> str:
    """"key value, ..." for an item's plain fields (ids, names and nested data left out)."""
    parts = []
    for k, v in item.items():
        if k in _NOT_SCALARS:
            continue
        if isinstance(v, (int, float, str)) and not isinstance(v, bool) and v != "":
            parts.append(f"{k.replace('_', ' ')} {fmt(v)}")
    return ", ".join(parts)
