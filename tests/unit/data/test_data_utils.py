from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson import ObjectId

from shared.data.repository import parse_sort
from shared.data.utils import (
    batched, cursor_field_types, decode_cursor, encode_cursor, get_path, iso_utc, keyset_filter, normalize_document,
)
from shared.errors import InvalidCursor, ValidationFailed


def test_normalize_document_converts_ids_dates_recursively_and_exposes_id():
    oid, other = ObjectId(), ObjectId()
    doc = {
        "_id": oid,
        "owner_id": "u1",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "nested": {"ref": other, "when": datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))},
        "items": [{"ref": other}, datetime(2026, 1, 1)],
    }
    out = normalize_document(doc)
    assert "_id" not in out
    assert out["id"] == str(oid)
    assert out["created_at"] == "2026-01-02T03:04:05Z"
    assert out["nested"] == {"ref": str(other), "when": "2026-01-02T03:04:05Z"}
    assert out["items"] == [{"ref": str(other)}, "2026-01-01T00:00:00Z"]


def test_normalize_document_id_fields_and_none():
    assert normalize_document(None) is None
    out = normalize_document({"_id": 7, "portfolio_id": 12}, id_fields=("_id", "portfolio_id"))
    assert out == {"id": "7", "portfolio_id": "12"}


def test_iso_utc_keeps_milliseconds():
    assert iso_utc(datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)) == "2026-01-01T00:00:00.123Z"


def test_batched_chunks_in_order_and_rejects_zero():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []
    with pytest.raises(ValueError):
        list(batched([1], 0))


def test_get_path_dotted():
    assert get_path({"a": {"b": 1}}, "a.b") == 1
    assert get_path({"a": 1}, "a.b") is None


def test_parse_sort_forms_and_tiebreak():
    assert parse_sort("-created_at", (("x", 1),)) == [("created_at", -1), ("_id", -1)]
    assert parse_sort(None, (("name", 1),)) == [("name", 1), ("_id", 1)]
    assert parse_sort([("id", -1)], ()) == [("_id", -1)]
    with pytest.raises(ValidationFailed) as info:
        parse_sort("$where", ())
    assert info.value.errors == {"sort": ["Not a sortable field"]}


def test_cursor_round_trip_and_tamper_detection():
    sort = [("created_at", -1), ("_id", -1)]
    oid = ObjectId()
    when = datetime(2026, 1, 1, tzinfo=UTC)
    cursor = encode_cursor(sort, {"created_at": when, "_id": oid})
    assert "created_at" not in cursor  # opaque
    types = cursor_field_types("workspaces", sort)
    values = decode_cursor(cursor, sort, types)
    assert values[1] == oid and values[0].replace(tzinfo=UTC) == when
    with pytest.raises(ValidationFailed) as info:
        decode_cursor(cursor, [("name", 1), ("_id", 1)], types)
    assert info.value.status == 422 and "cursor" in info.value.errors
    with pytest.raises(InvalidCursor):
        decode_cursor("not-a-cursor!!", sort, types)


def test_cursor_field_types_come_from_the_validators():
    assert cursor_field_types("workspaces", [("created_at", -1), ("_id", -1)]) == [("datetime",), ("ObjectId",)]
    assert cursor_field_types("positions", [("symbol", 1), ("_id", 1)]) == [("str",), ("ObjectId",)]
    assert cursor_field_types("market_data", [("ts", 1), ("_id", 1)], string_ids=True) == [("datetime",), ("str",)]


@pytest.mark.parametrize("value", [
    {"$where": "sleep(1000)"}, {"$ne": None}, {"$regex": ".*"}, {"$gt": ""}, {"$regularExpression": {"pattern": ".", "options": ""}},
    {"$oid": "0" * 24}, "2026-01-01", 5, True, None, [1],
])
def test_a_cursor_value_of_another_type_than_its_sort_field_is_invalid(value):
    import base64
    import json

    raw = json.dumps({"s": [["created_at", -1], ["_id", -1]], "v": [value, {"$oid": "0" * 24}]})
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, [("created_at", -1), ("_id", -1)], cursor_field_types("workspaces", [("created_at", -1), ("_id", -1)]))


@pytest.mark.parametrize("raw", ['{"s": [["created_at", -1]], "v": [{"$date": {"$numberLong": "99999999999999999999"}}]}',
                                 '{"s": [["_id", -1]], "v": [{"$oid": "zz"}]}', '{"s": 1, "v": 2}', "[]", "{"])
def test_undecodable_extended_json_is_an_invalid_cursor(raw):
    import base64

    cursor = base64.urlsafe_b64encode(raw.encode()).decode()
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, [("created_at", -1)], [("datetime",)])


def test_keyset_filter_is_lexicographic():
    f = keyset_filter([("a", 1), ("_id", -1)], [5, "x"])
    assert f == {"$or": [{"a": {"$gt": 5}}, {"a": 5, "_id": {"$lt": "x"}}]}
