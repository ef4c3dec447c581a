"""Repositories through real pymongo against the embedded store, with validators and indexes applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.data.factory import RepositoryFactory
from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from tests.racing import RacingCollection

pytestmark = pytest.mark.integration


@pytest.fixture
def factory(db, settings):
    return RepositoryFactory(db, settings, description="embedded (test)")


def test_crud_round_trip_and_versioning(factory):
    repo = factory.get_portfolio_repository()
    p = repo.insert_one("u1", {"name": "Core", "currency": "USD"})
    assert p["version"] == 1 and p["owner_id"] == "u1" and p["created_at"].endswith("Z")
    assert repo.get("u1", p["id"]) == p
    p2 = repo.update_one("u1", p["id"], {"description": "long term"}, expected_version=1)
    assert p2["version"] == 2 and p2["description"] == "long term"
    with pytest.raises(PreconditionFailed):
        repo.update_one("u1", p["id"], {"description": "stale"}, expected_version=1)
    assert repo.count("u1") == 1
    repo.delete_one("u1", p["id"])
    with pytest.raises(NotFound):
        repo.get("u1", p["id"])


def test_pagination_with_next_cursor(factory):
    repo = factory.get_note_repository()
    for i in range(5):
        repo.insert_one("u1", {"content": f"n{i}", "tags": ["t"]})
    first, cursor = repo.list_notes("u1", limit=2)
    second, cursor2 = repo.find_many("u1", limit=2, cursor=cursor)
    third, cursor3 = repo.find_many("u1", limit=2, cursor=cursor2)
    assert [n["content"] for n in first + second + third] == ["n4", "n3", "n2", "n1", "n0"]
    assert cursor and cursor2 and cursor3 is None


def test_optimistic_concurrency_conflict(factory):
    from shared.data.repository import CONTENTION_ATTEMPTS

    repo = factory.get_workspace_repository()
    w = repo.insert_one("u1", {"name": "W"})
    repo._collection = RacingCollection(repo._collection, times=CONTENTION_ATTEMPTS)
    try:
        with pytest.raises(Conflict):
            repo.update_one("u1", w["id"], {"description": "lost"})
    finally:
        repo._collection = repo._collection._inner
    assert "description" not in repo.get("u1", w["id"]) or repo.get("u1", w["id"])["description"] is None


def test_duplicate_keys_are_conflicts(factory):
    users = factory.get_user_repository()
    users.insert_one({"email": "ada@example.com"})
    with pytest.raises(Conflict):
        users.insert_one({"email": "ADA@example.com"})
    ws = factory.get_watchlist_repository()
    ws.insert_one("u1", {"name": "Main"})
    with pytest.raises(Conflict):
        ws.insert_one("u1", {"name": "main"})
    assert ws.insert_one("u2", {"name": "Main"})["owner_id"] == "u2"


def test_owner_b_cannot_read_update_or_delete_owner_a(factory):
    repo = factory.get_note_repository()
    a = repo.insert_one("owner-a", {"content": "secret"})
    with pytest.raises(NotFound):
        repo.get("owner-b", a["id"])
    with pytest.raises(NotFound):
        repo.update_one("owner-b", a["id"], {"content": "x"})
    with pytest.raises(NotFound):
        repo.delete_one("owner-b", a["id"])
    assert repo.find_many("owner-b", {"owner_id": "owner-a"})[0] == []
    assert repo.get("owner-a", a["id"])["content"] == "secret"


def test_validators_reject_bad_documents(factory, db):
    with pytest.raises(ValidationFailed) as info:
        factory.get_user_repository().insert_one({"email": "not-an-email"})
    assert info.value.status == 422
    with pytest.raises(ValidationFailed):
        factory.get_position_repository().insert_one("u1", {"portfolio_id": "p1", "symbol": "AAPL"})  # no quantity
    with pytest.raises(ValidationFailed):
        factory.get_chat_repository().append_messages("u1", factory.get_chat_repository().insert_one(
            "u1", {"title": "t"})["id"], [{"role": "robot", "content": "x"}])
    opts = db.command("listCollections", filter={"name": "users"})["cursor"]["firstBatch"][0]["options"]
    assert opts["validationLevel"] == "moderate"


def test_malformed_object_id_is_not_found(factory):
    repo = factory.get_workspace_repository()
    for bad in ("xyz", "12345", "g" * 24):
        with pytest.raises(NotFound):
            repo.get("u1", bad)
        with pytest.raises(NotFound):
            repo.delete_one("u1", bad)


def test_symbols_seeded_searchable_and_bulk_upsert(factory):
    symbols = factory.get_symbol_repository()
    assert symbols.count() >= 150
    assert symbols.get_by_symbol("aapl")["name"] == "Apple Inc."
    hits = [s["symbol"] for s in symbols.search("MSF")]
    assert hits[0] == "MSFT"
    by_name = [s["symbol"] for s in symbols.search("microsoft")]
    assert "MSFT" in by_name
    result = symbols.bulk_upsert([
        {"symbol": "zzzt", "name": "Test Corp", "exchange": "NASDAQ", "type": "equity", "currency": "USD"},
        {"symbol": "AAPL", "name": "Apple Inc."},
        {"symbol": "MSFT", "name": "Microsoft Corp (renamed)"},
    ])
    assert result == {"inserted": 1, "updated": 1, "unchanged": 1}
    assert symbols.get_by_symbol("AAPL")["version"] == 1
    msft = symbols.get_by_symbol("MSFT")
    assert msft["version"] == 2 and msft["name"] == "Microsoft Corp (renamed)" and msft["exchange"] == "NASDAQ"
    symbols.collection.delete_one({"symbol": "ZZZT"})
    symbols.collection.update_one({"symbol": "MSFT"}, {"$set": {"version": 1, "name": "Microsoft Corporation"}})


def test_market_data_bulk_upsert_is_idempotent(factory):
    md = factory.get_market_data_repository()
    start = datetime(2026, 1, 5, tzinfo=UTC)
    bars = [{"ts": start + timedelta(days=i), "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5 + i, "volume": 10}
            for i in range(30)]
    assert md.bulk_upsert_bars("aapl", "1d", bars) == {"inserted": 30, "updated": 0, "unchanged": 0}
    changed = {**bars[-1], "close": 99.0}
    again = bars[-5:-1] + [changed, {"ts": start + timedelta(days=30), "close": 9.0}]
    assert md.bulk_upsert_bars("AAPL", "1d", again) == {"inserted": 1, "updated": 1, "unchanged": 4}
    assert md.bulk_upsert_bars("AAPL", "1d", again) == {"inserted": 0, "updated": 0, "unchanged": 6}
    assert md.count({"symbol": "AAPL"}) == 31
    got = md.get_bars("AAPL", "1d", start=start + timedelta(days=28))
    assert [b["close"] for b in got] == [29.5, 99.0, 9.0]
    assert md.latest_bar("AAPL")["ts"] == "2026-02-04T00:00:00Z"
    bar_id = md.bar_id("aapl", "1d", start)
    assert bar_id == "AAPL|1d|2026-01-05T00:00:00Z" and md.get(bar_id)["close"] == 1.5
    with pytest.raises(NotFound):
        md.get("")


def test_snapshots_expire_logically_and_preferences_upsert(factory):
    snaps = factory.get_market_snapshot_repository()
    snaps.save("quote:AAPL", {"price": 1.0}, ttl_s=60, symbol="aapl")
    assert snaps.load("quote:AAPL")["data"] == {"price": 1.0}
    snaps.collection.update_one({"key": "quote:AAPL"}, {"$set": {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}})
    assert snaps.load("quote:AAPL") is None
    prefs = factory.get_user_preferences_repository()
    assert prefs.upsert_for_owner("u1", {"preferences": {"theme": "dark"}})["version"] == 1
    again = prefs.upsert_for_owner("u1", {"preferences": {"theme": "light"}})
    assert again["version"] == 2 and prefs.get_for_owner("u1")["preferences"] == {"theme": "light"}


def test_api_keys_lookup_revoke_and_last_used(factory):
    keys = factory.get_api_key_repository()
    k = keys.insert_one("u1", {"key_hash": "h" * 64, "prefix": "sk_abc", "name": "cli"})
    assert keys.find_by_hash("h" * 64)["id"] == k["id"]
    assert [x["id"] for x in keys.find_by_prefix("sk_abc")] == [k["id"]]
    keys.touch_last_used(k["id"])
    assert keys.get("u1", k["id"])["last_used_at"] is not None
    with pytest.raises(NotFound):
        keys.revoke("u2", k["id"])
    revoked = keys.revoke("u1", k["id"])
    assert revoked["revoked_at"] is not None
    assert keys.find_by_hash("h" * 64) is None
    assert keys.find_by_hash("h" * 64, include_revoked=True)["id"] == k["id"]
