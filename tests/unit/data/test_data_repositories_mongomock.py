"""Repository behaviour on mongomock (no validators here; the embedded-store tests cover those)."""

from __future__ import annotations

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from shared.data.factory import RepositoryFactory
from shared.data.repositories import (
    MongoChatRepository,
    MongoNoteRepository,
    MongoUserRepository,
    MongoWatchlistRepository,
    MongoWorkspaceRepository,
)
from shared.data.repository import MongoGenericRepository
from shared.errors import Conflict, DatabaseUnavailable, NotFound, PreconditionFailed, ValidationFailed
from tests.racing import RacingCollection


@pytest.fixture
def users(db, clock):
    db.users.create_index("email", unique=True)
    return MongoUserRepository(db, clock=clock)


@pytest.fixture
def workspaces(db, clock):
    db.workspaces.create_index([("owner_id", 1), ("name_key", 1)], unique=True)
    return MongoWorkspaceRepository(db, clock=clock)


def test_insert_sets_system_fields_and_get_round_trips(users):
    created = users.insert_one({"email": "Ada@Example.com", "version": 99, "created_at": "forged"})
    assert created["version"] == 1
    assert created["created_at"] == created["updated_at"] == "2026-01-01T00:00:00.001Z"
    assert created["email"] == "ada@example.com"
    assert users.get(created["id"]) == created
    assert users.find_by_email("ADA@example.com")["id"] == created["id"]
    assert users.count() == 1


def test_update_bumps_version_and_updated_at_and_ignores_system_fields(users):
    u = users.insert_one({"email": "a@b.co"})
    updated = users.update_one(u["id"], {"display_name": "Ada", "version": 50, "_id": "x", "created_at": None})
    assert updated["version"] == 2 and updated["display_name"] == "Ada"
    assert updated["created_at"] == u["created_at"] and updated["updated_at"] > u["updated_at"]


def test_expected_version_mismatch_is_412_and_match_succeeds(users):
    u = users.insert_one({"email": "a@b.co"})
    assert users.update_one(u["id"], {"x": 1}, expected_version=1)["version"] == 2
    with pytest.raises(PreconditionFailed) as info:
        users.update_one(u["id"], {"x": 2}, expected_version=1)
    assert info.value.status == 412 and info.value.extra["current_version"] == 2
    with pytest.raises(PreconditionFailed):
        users.delete_one(u["id"], expected_version=1)
    users.delete_one(u["id"], expected_version=2)
    assert users.find_one({"id": u["id"]}) is None


def test_concurrent_modification_without_expected_version_is_retried(users):
    u = users.insert_one({"email": "a@b.co"})
    users._collection = racing = RacingCollection(users._collection, also_set={"roles": ["user"]})
    updated = users.update_one(u["id"], {"display_name": "mine"})
    assert racing.races == 1 and updated["display_name"] == "mine" and updated["roles"] == ["user"]
    assert updated["version"] == 3


def test_modification_losing_every_retry_is_conflict(users):
    from shared.data.repository import CONTENTION_ATTEMPTS

    u = users.insert_one({"email": "a@b.co"})
    users._collection = racing = RacingCollection(users._collection, times=CONTENTION_ATTEMPTS)
    with pytest.raises(Conflict) as info:
        users.update_one(u["id"], {"display_name": "lost update"})
    assert info.value.status == 409 and racing.races == CONTENTION_ATTEMPTS
    assert "display_name" not in users.get(u["id"])


def test_concurrent_modification_after_an_if_match_check_is_conflict_at_once(users):
    u = users.insert_one({"email": "a@b.co"})
    users._collection = racing = RacingCollection(users._collection, times=5)
    with pytest.raises(Conflict):
        users.update_one(u["id"], {"display_name": "lost update"}, expected_version=1)
    assert racing.races == 1  # the client named a version: no retry on another one


def test_missing_and_malformed_ids_are_not_found(users):
    for bad in ("not-an-id", "", None, 42, "0" * 24):
        with pytest.raises(NotFound):
            users.get(bad)
        with pytest.raises(NotFound):
            users.update_one(bad, {"x": 1})
        with pytest.raises(NotFound):
            users.delete_one(bad)
    assert users.find_one({"_id": "zzz"}) is None
    assert users.find_many({"id": "zzz"}) == ([], None)
    assert users.count({"_id": "zzz"}) == 0


def test_duplicate_unique_key_is_conflict(users):
    users.insert_one({"email": "a@b.co"})
    with pytest.raises(Conflict):
        users.insert_one({"email": "A@b.co"})


def test_cursor_pagination_walks_all_pages_without_duplicates(workspaces):
    ids = [workspaces.insert_one("u1", {"name": f"w{i}"})["id"] for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = workspaces.find_many("u1", limit=3, cursor=cursor)
        seen += [i["id"] for i in items]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # default sort: newest first
    items, nxt = workspaces.find_many("u1", sort="name", limit=10)
    assert [i["name"] for i in items] == sorted(f"w{i}" for i in range(7)) and nxt is None


def test_cursor_from_other_sort_is_rejected(workspaces):
    for i in range(3):
        workspaces.insert_one("u1", {"name": f"w{i}"})
    _, cursor = workspaces.find_many("u1", limit=1)
    with pytest.raises(ValidationFailed):
        workspaces.find_many("u1", sort="name", limit=1, cursor=cursor)


def test_owner_scoping_hides_other_owners_documents(workspaces):
    a = workspaces.insert_one("owner-a", {"name": "A", "owner_id": "owner-b"})
    assert a["owner_id"] == "owner-a"  # from the argument, never the document
    with pytest.raises(NotFound):
        workspaces.get("owner-b", a["id"])
    with pytest.raises(NotFound):
        workspaces.update_one("owner-b", a["id"], {"description": "hijack"})
    with pytest.raises(NotFound):
        workspaces.delete_one("owner-b", a["id"])
    assert workspaces.find_one("owner-b", {"_id": a["id"]}) is None
    # a filter naming another owner cannot widen the scope
    assert workspaces.find_many("owner-b", {"owner_id": "owner-a"}) == ([], None)
    assert workspaces.count("owner-b", {"owner_id": "owner-a"}) == 0
    assert workspaces.get("owner-a", a["id"])["name"] == "A"
    with pytest.raises(ValueError):
        workspaces.find_many("", {})


def test_workspace_name_unique_per_owner_case_insensitive(workspaces):
    workspaces.insert_one("u1", {"name": "Tech Stocks"})
    with pytest.raises(Conflict):
        workspaces.insert_one("u1", {"name": "tech  stocks"})
    assert workspaces.insert_one("u2", {"name": "Tech Stocks"})["owner_id"] == "u2"
    assert workspaces.find_by_name("u1", "TECH STOCKS")["name"] == "Tech Stocks"


def test_watchlist_add_remove_symbols(db, clock):
    repo = MongoWatchlistRepository(db, clock=clock)
    w = repo.insert_one("u1", {"name": "Main", "symbols": ["aapl", "AAPL"]})
    assert w["symbols"] == ["AAPL"]
    w2 = repo.add_symbol("u1", w["id"], "msft")
    assert w2["symbols"] == ["AAPL", "MSFT"] and w2["version"] == 2
    assert repo.add_symbol("u1", w["id"], "MSFT")["symbols"] == ["AAPL", "MSFT"]
    assert repo.remove_symbol("u1", w["id"], "aapl")["symbols"] == ["MSFT"]
    with pytest.raises(NotFound):
        repo.add_symbol("u2", w["id"], "TSLA")


def test_notes_filter_by_tag_and_symbol(db, clock):
    repo = MongoNoteRepository(db, clock=clock)
    repo.insert_one("u1", {"content": "a", "tags": ["earnings", "tech"], "symbol": "aapl"})
    repo.insert_one("u1", {"content": "b", "tags": ["macro"]})
    repo.insert_one("u2", {"content": "c", "tags": ["earnings"]})
    assert [n["content"] for n in repo.list_notes("u1", tag="earnings")[0]] == ["a"]
    assert [n["content"] for n in repo.list_notes("u1", symbol="AAPL")[0]] == ["a"]
    assert len(repo.list_notes("u1")[0]) == 2


def test_chat_messages_are_stored_one_per_document_in_sequence(db, clock):
    repo = MongoChatRepository(db, clock=clock)
    chat = repo.insert_one("u1", {"title": "t"})
    assert chat["message_count"] == 0
    for i in range(3):
        out = repo.append_messages("u1", chat["id"], [{"role": "user", "content": f"q{i}"},
                                                      {"role": "assistant", "content": f"a{i}"}])
    assert out["message_count"] == 6 and out["version"] == 4 and "messages" not in out
    assert db["chats"].find_one({})["message_count"] == 6 and "messages" not in db["chats"].find_one({})
    assert sorted(d["_id"] for d in db["chat_messages"].find({}))[0] == f"{chat['id']}:00000001"
    recent = repo.recent_messages("u1", chat["id"], 3)
    assert [(m["seq"], m["content"]) for m in recent] == [(4, "a1"), (5, "q2"), (6, "a2")]
    assert set(recent[0]) == {"seq", "role", "content", "created_at"} and recent[0]["created_at"].endswith("Z")
    first, cursor = repo.page_messages("u1", chat["id"], limit=4)
    rest, end = repo.page_messages("u1", chat["id"], limit=4, cursor=cursor)
    assert [m["seq"] for m in first + rest] == [1, 2, 3, 4, 5, 6] and end is None
    assert repo.recent_messages("u1", chat["id"], 0) == []


def test_chat_messages_are_the_owners_only(db, clock):
    repo = MongoChatRepository(db, clock=clock)
    chat = repo.insert_one("u1", {"title": "t"})
    repo.append_messages("u1", chat["id"], [{"role": "user", "content": "secret"}])
    with pytest.raises(NotFound):
        repo.append_messages("u2", chat["id"], [{"role": "user", "content": "x"}])
    with pytest.raises(NotFound):
        repo.page_messages("u2", chat["id"])
    assert repo.recent_messages("u2", chat["id"], 10) == []
    with pytest.raises(NotFound):
        repo.delete_one("u2", chat["id"])
    repo.delete_one("u1", chat["id"])
    assert db["chat_messages"].count_documents({}) == 0


def test_a_chat_with_embedded_messages_is_moved_on_first_touch(db, clock):
    """Chats stored before chat_messages existed embed their messages: reading or appending moves them first."""
    repo = MongoChatRepository(db, clock=clock)
    legacy = [{"role": "user", "content": "old q", "created_at": "2026-01-01T00:00:00+00:00"},
              {"role": "assistant", "content": "old a", "sources": [{"symbol": "AAPL"}]}]
    for name in ("read", "append"):
        db["chats"].insert_one({"owner_id": "u1", "title": name, "messages": legacy, "created_at": clock(),
                                "updated_at": clock(), "version": 3})
    read_id, append_id = (str(d["_id"]) for d in db["chats"].find({}).sort("title", -1))
    chat = repo.get("u1", read_id)
    assert chat["message_count"] == 2 and "messages" not in chat
    out = repo.append_messages("u1", append_id, [{"role": "user", "content": "new"}])
    assert out["message_count"] == 3
    moved = repo.recent_messages("u1", append_id, 10)
    assert [(m["seq"], m["content"]) for m in moved] == [(1, "old q"), (2, "old a"), (3, "new")]
    assert moved[0]["created_at"] == "2026-01-01T00:00:00+00:00" and moved[1]["sources"] == [{"symbol": "AAPL"}]
    assert db["chats"].count_documents({"messages": {"$exists": True}}) == 0


class DownCollection:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused")

        return fail


class DownDatabase:
    def __getitem__(self, name):
        return DownCollection()

    def command(self, *args, **kwargs):
        raise ServerSelectionTimeoutError("down")


def test_every_public_method_translates_driver_errors():
    repo = MongoWorkspaceRepository(DownDatabase())
    calls = [
        lambda: repo.find_one("u1"),
        lambda: repo.find_many("u1"),
        lambda: repo.insert_one("u1", {"name": "x"}),
        lambda: repo.update_one("u1", "0" * 24, {"a": 1}),
        lambda: repo.delete_one("u1", "0" * 24),
        lambda: repo.count("u1"),
        lambda: repo.find_by_name("u1", "x"),
    ]
    for call in calls:
        with pytest.raises(DatabaseUnavailable):
            call()
    healthy, details = repo.health_check()
    assert healthy is False and details["status"] == "unavailable"


def test_subclass_methods_are_translated_automatically():
    class Custom(MongoGenericRepository):
        collection_name = "custom"

        def raw(self):
            return self._collection.find_one({})

    with pytest.raises(DatabaseUnavailable):
        Custom(DownDatabase()).raw()


def test_factory_returns_singletons_and_reports_health(db):
    factory = RepositoryFactory(db, None, description="embedded (.data)")
    assert factory.get_user_repository() is factory.get_user_repository()
    getters = [name for name in dir(factory) if name.startswith("get_") and name.endswith("_repository")]
    assert len(getters) >= 14
    for name in getters:
        assert isinstance(getattr(factory, name)(), MongoGenericRepository)
    healthy, details = factory.health_check()
    assert healthy is True and details["status"] == "healthy" and details["latency_ms"] >= 0
    assert details["backend"] == "embedded (.data)"
    down = RepositoryFactory(DownDatabase())
    assert down.health_check()[0] is False


def test_projection_keeps_sort_keys_for_the_cursor(workspaces):
    for i in range(3):
        workspaces.insert_one("u1", {"name": f"w{i}", "description": "d"})
    items, cursor = workspaces.find_many("u1", limit=2, projection={"name": 1})
    assert "description" not in items[0] and items[0]["name"] == "w2"
    rest, end = workspaces.find_many("u1", limit=2, cursor=cursor, projection={"name": 1})
    assert [i["name"] for i in rest] == ["w0"] and end is None


def test_changes_with_operators_are_rejected(users):
    u = users.insert_one({"email": "a@b.co"})
    with pytest.raises(ValueError):
        users.update_one(u["id"], {"$unset": {"email": ""}})
