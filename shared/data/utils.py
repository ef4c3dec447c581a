"""JSON-safe document helpers and keyset-pagination cursors shared by repositories and services.

Imports nothing from pymongo at module level except `bson` types lazily, so
services can use these helpers without pulling in the driver.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any, TypeVar

from shared.data.schema import SPECS
from shared.errors import InvalidCursor, ValidationFailed

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


# -- keyset-pagination cursors ---------------------------------------------------------------

# BSON types of a `$jsonSchema` validator -> what a decoded cursor value of that field may be
# (bson classes by name, so this module needs no bson import).
_BSON_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("str",),
    "date": ("datetime",),
    "int": ("int", "Int64"),
    "long": ("int", "Int64"),
    "double": ("float",),
    "decimal": ("Decimal128",),
    "objectId": ("ObjectId",),
    "bool": ("bool",),
    "null": ("NoneType",),
}
# A sort field no validator describes still only ever holds a scalar.
_SCALARS = ("str", "datetime", "int", "Int64", "float", "ObjectId", "NoneType")


def cursor_field_types(collection: str, sort: Sequence[tuple[str, int]], *, string_ids: bool = False) -> list[tuple[str, ...]]:
    """The type names each sort key's cursor value may have, from the collection's `$jsonSchema`
    validator (`_id`: ObjectId, or string for collections keyed by natural strings)."""
    spec = SPECS.get(collection)
    validator = spec.validator if spec is not None else None
    properties = (validator or {}).get("$jsonSchema", {}).get("properties", {})
    out: list[tuple[str, ...]] = []
    for field, _ in sort:
        if field == "_id":
            out.append(("str",) if string_ids else ("ObjectId",))
            continue
        bson_type = properties.get(field, {}).get("bsonType")
        names = [bson_type] if isinstance(bson_type, str) else list(bson_type or [])
        allowed = tuple(t for n in names for t in _BSON_TYPES.get(n, ()))
        out.append(allowed or _SCALARS)
    return out


def encode_cursor(sort: Sequence[tuple[str, int]], doc: Mapping[str, Any]) -> str:
    """Opaque cursor: base64url(canonical extended JSON of the sort spec and the last document's sort values)."""
    from bson import json_util

    payload = {"s": [[f, d] for f, d in sort], "v": [get_path(doc, f) for f, _ in sort]}
    raw = json_util.dumps(payload, json_options=json_util.CANONICAL_JSON_OPTIONS)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sequence[tuple[str, int]], types: Sequence[tuple[str, ...]]) -> list[Any]:
    """The last seen document's sort values, each of the type its sort field holds (`types`, from
    `cursor_field_types`): never an operator document, a regex or any other BSON value a query would
    interpret. InvalidCursor (422) for anything else, ValidationFailed when issued for another sort."""
    from bson import json_util

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json_util.loads(raw.decode(), json_options=json_util.CANONICAL_JSON_OPTIONS)
        spec = [(str(f), int(d)) for f, d in payload["s"]]
        values = list(payload["v"])
    except Exception:  # malformed base64/JSON/Extended JSON (InvalidBSON, InvalidId, overflow...): all one answer
        raise InvalidCursor() from None
    if spec != list(sort) or len(values) != len(sort):
        raise ValidationFailed("Pagination cursor does not match the requested sort",
                               errors={"cursor": ["Issued for a different sort order"]})
    for value, allowed in zip(values, types):
        if type(value).__name__ not in allowed:
            raise InvalidCursor()
    return values


def keyset_filter(sort: Sequence[tuple[str, int]], values: Sequence[Any]) -> dict[str, Any]:
    """Documents strictly after `values` in `sort` order (lexicographic over the sort keys)."""
    clauses = []
    for i, (field, direction) in enumerate(sort):
        clause = {f: values[j] for j, (f, _) in enumerate(sort[:i])}
        clause[field] = {"$gt" if direction > 0 else "$lt": values[i]}
        clauses.append(clause)
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}
