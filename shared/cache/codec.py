"""JSON encoding for cached values (orjson).

Guarantees: ObjectId -> its hex string, datetime/date/time -> ISO 8601 (orjson's
RFC 3339 output), Decimal -> float, set/frozenset/tuple -> list, Pydantic models ->
their JSON-mode dump, dataclasses/enums/UUIDs natively. Decoding gives plain JSON
types (dates come back as strings).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    # Checked by name so that importing this module does not import bson/pydantic.
    type_name = type(obj).__name__
    if type_name == "ObjectId":
        return str(obj)
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"Type is not JSON serializable: {type_name}")


def dumps(value: Any) -> bytes:
    """Serialize ``value`` to JSON bytes; TypeError for types with no JSON form."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes/str; orjson.JSONDecodeError (a ValueError) when malformed."""
    return orjson.loads(data)
