"""JSON-safe document helpers shared by repositories and services.

Imports nothing from pymongo at module level except `bson` types lazily, so
services can use these helpers without pulling in the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")


def utc_now() -> datetime:
    """Current time, timezone-aware UTC, truncated to milliseconds (BSON date precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix; naive datetimes are taken as UTC (pymongo's default)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    else:
        value = value.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _is_object_id(value: Any) -> bool:
    # Checked by class name so this module needs no bson import.
    return type(value).__name__ == "ObjectId"


def _normalize_value(value: Any) -> Any:
    if _is_object_id(value):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _normalize_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_normalize_value(v) for v in value]
    if type(value).__name__ == "Decimal128":
        return str(value.to_decimal())
    return value


def normalize_document(doc: Mapping[str, Any] | None, id_fields: Iterable[str] = ("_id",)) -> dict[str, Any] | None:
    """Return a JSON-safe copy of a MongoDB document.

    Guarantees: ObjectId -> str, datetime -> ISO 8601 UTC ending in `Z`, recursively
    through nested dicts and lists; every field named in `id_fields` becomes a string,
    and `_id` is exposed as `id` (the `_id` key is removed). `None` in, `None` out.
    """
    if doc is None:
        return None
    out: dict[str, Any] = {}
    id_set = set(id_fields)
    for key, value in doc.items():
        if key in id_set and value is not None and not isinstance(value, (Mapping, list)):
            value = str(value)
        else:
            value = _normalize_value(value)
        out["id" if key == "_id" else key] = value
    return out


def batched(iterable: Iterable[T], chunk_size: int) -> Iterator[list[T]]:
    """Yield lists of at most `chunk_size` items, in order; the last one may be shorter."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    it = iter(iterable)
    while chunk := list(islice(it, chunk_size)):
        yield chunk


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path in a nested document, or None when any part is missing."""
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current
