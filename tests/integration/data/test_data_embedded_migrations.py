"""Migrations, schema manager, persistence and connectivity on the embedded store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.config.models import Settings
from shared.data.client import build_database, create_client
from shared.data.embedded import EmbeddedMongoServer
from shared.data.migrations import (
    LOCK_ID,
    MIGRATIONS_COLLECTION,
    Migration,
    MigrationError,
    MigrationLocked,
    run_migrations,
)
from shared.data.repositories import MongoUserRepository
from shared.data.schema import KNOWN_COLLECTIONS, SPECS, CollectionSpec, IndexSpec, SchemaManager, schema
from shared.errors import DatabaseUnavailable

pytestmark = pytest.mark.integration


def _names(db):
    return {c["name"] for c in db.command("listCollections")["cursor"]["firstBatch"]}


def test_first_run_creates_everything_and_second_run_has_nothing_to_do(migrated, settings):
    db, first = migrated
    assert first["status"] == "applied"
    assert first["applied"] == ["0001_collections_validators_indexes", "0002_seed_symbols", "0003_chat_messages",
                                "0004_job_collections"]
    assert set(KNOWN_COLLECTIONS) <= _names(db)
    assert "users_email_unique" in db.users.index_information()
    assert db.sessions.index_information()["sessions_ttl"]["expireAfterSeconds"] == 0
    assert first["results"]["0002_seed_symbols"]["inserted"] >= 150
    before = {n: db[n].index_information() for n in ("users", "symbols", "market_data")}
    count = db.symbols.count_documents({})
    second = run_migrations(db, settings)
    assert second["status"] == "nothing to do" and second["applied"] == [] and second["pending"] == []
    assert db.symbols.count_documents({}) == count
    assert {n: db[n].index_information() for n in before} == before
    # The schema step itself is idempotent too (no migration record involved).
    assert SchemaManager(db).setup_all_collections()["changed"] is False
    assert db[MIGRATIONS_COLLECTION].count_documents({"_id": LOCK_ID}) == 0


def test_dry_run_changes_nothing(client, settings):
    db = client["it_dry_run"]
    summary = run_migrations(db, settings, dry_run=True)
    assert summary["status"] == "dry run"
    assert summary["pending"] == ["0001_collections_validators_indexes", "0002_seed_symbols", "0003_chat_messages",
                                "0004_job_collections"]
    assert "users" in summary["results"]["0001_collections_validators_indexes"]["create_collections"]
    assert _names(db) == set()


def _tiny_schema_step(db, settings):
    spec = CollectionSpec("things", schema({"name": {"bsonType": "string"}}, ["name"], system=False),
                          (IndexSpec((("name", 1),), "things_name_unique", unique=True),))
    return SchemaManager(db, specs=(spec,)).setup_all_collections()


def test_resumes_after_a_failure_midway(client, settings):
    db = client["it_resume"]
    calls = {"seed": 0}

    def seed_once(db, settings):
        calls["seed"] += 1
        if calls["seed"] == 1:
            db.things.insert_many([{"name": "a"}, {"name": "b"}])
            raise RuntimeError("crash after a partial write")
        existing = {d["name"] for d in db.things.find()}
        db.things.insert_many([{"name": n} for n in ("a", "b", "c") if n not in existing])
        return {"ok": True}

    steps = [Migration(1, "schema", "tiny schema", _tiny_schema_step), Migration(2, "seed", "seed", seed_once)]
    with pytest.raises(MigrationError) as info:
        run_migrations(db, settings, migrations=steps)
    assert info.value.summary["applied"] == ["0001_schema"] and info.value.summary["failed"] == "0002_seed"
    assert db[MIGRATIONS_COLLECTION].find_one({"_id": "0002_seed"})["status"] == "failed"
    assert db[MIGRATIONS_COLLECTION].count_documents({"_id": LOCK_ID}) == 0  # released after failure

    resumed = run_migrations(db, settings, migrations=steps)
    assert resumed["already_applied"] == ["0001_schema"] and resumed["applied"] == ["0002_seed"]
    assert sorted(d["name"] for d in db.things.find()) == ["a", "b", "c"]
    assert run_migrations(db, settings, migrations=steps)["status"] == "nothing to do"
    assert calls["seed"] == 2


def test_lock_held_by_another_run_is_respected_until_it_expires(client, settings):
    db = client["it_lock"]
    steps = [Migration(1, "schema", "tiny schema", _tiny_schema_step)]
    now = datetime.now(UTC)
    db[MIGRATIONS_COLLECTION].insert_one({"_id": LOCK_ID, "owner": "other-host:1", "expires_at": now + timedelta(minutes=5)})
    with pytest.raises(MigrationLocked) as info:
        run_migrations(db, settings, migrations=steps)
    assert info.value.status == 409
    assert "things" not in _names(db)
    assert db[MIGRATIONS_COLLECTION].find_one({"_id": LOCK_ID})["owner"] == "other-host:1"

    db[MIGRATIONS_COLLECTION].update_one({"_id": LOCK_ID}, {"$set": {"expires_at": now - timedelta(seconds=1)}})
    assert run_migrations(db, settings, migrations=steps)["applied"] == ["0001_schema"]
    assert db[MIGRATIONS_COLLECTION].count_documents({"_id": LOCK_ID}) == 0


def test_validator_change_without_collmod_recreates_only_empty_collections(client):
    db = client["it_collmod"]
    v1 = CollectionSpec("c1", schema({"a": {"bsonType": "string"}}, ["a"], system=False))
    v2 = CollectionSpec("c1", schema({"a": {"bsonType": "string"}, "b": {"bsonType": "int"}}, ["a", "b"], system=False))
    assert SchemaManager(db, specs=(v1,)).setup_all_collections()["created"] == ["c1"]
    assert SchemaManager(db, specs=(v2,)).setup_all_collections()["recreated"] == ["c1"]
    db.c1.insert_one({"a": "x", "b": 1})
    assert SchemaManager(db, specs=(v1,)).setup_all_collections()["validator_skipped"] == ["c1"]
    assert db.c1.count_documents({}) == 1


def test_data_survives_a_restart_of_the_embedded_store(tmp_path, settings):
    with EmbeddedMongoServer(tmp_path) as server:
        c = create_client(server.uri, settings, retryWrites=False)
        repo = MongoUserRepository(c["persist"])
        created = repo.insert_one({"email": "kept@example.com"})
        c.close()
    with EmbeddedMongoServer(tmp_path) as server:
        c = create_client(server.uri, settings, retryWrites=False)
        assert MongoUserRepository(c["persist"]).get(created["id"])["email"] == "kept@example.com"
        c.close()


def test_build_database_embedded_shares_one_client_per_process(tmp_path):
    s = Settings.model_validate({"mongodb": {"local_data_dir": str(tmp_path / "store")}})
    first = build_database(s)
    second = build_database(s)
    try:
        assert first.embedded and first.description == f"embedded ({tmp_path / 'store'})"
        assert first.db.client is second.db.client
        assert first.db.command("ping")["ok"] == 1
        db, description, closer = first
        assert db.name == "stockagent" and description == first.description
    finally:
        first.close()
        assert second.db.command("ping")["ok"] == 1  # still referenced by `second`
        second.close()
    assert (tmp_path / "store").is_dir() and any((tmp_path / "store").iterdir())


def test_closed_port_is_database_unavailable_within_bound():
    s = Settings.model_validate({"mongodb": {"uri": "mongodb://127.0.0.1:1/stockagent"}})
    handle = build_database(s)
    try:
        repo = MongoUserRepository(handle.db)
        took = []
        for _ in range(2):  # best of two: the bound is about configuration, not a loaded CI machine
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable) as info:
                repo.find_by_email("a@b.co")
            took.append(time.monotonic() - started)
            if took[-1] < 2.5:
                break
        assert min(took) < 2.5, took
        assert info.value.status == 503 and info.value.headers["Retry-After"]
        assert handle.description == "mongodb://127.0.0.1:1/stockagent"
    finally:
        handle.close()


def test_discovery_falls_back_to_known_schema_when_unauthorized():
    from pymongo.errors import OperationFailure

    class RestrictedDb:
        def command(self, *args, **kwargs):
            raise OperationFailure("not authorized on stockagent to execute command", code=13)

    found, fallback = SchemaManager(RestrictedDb()).discover_collections()
    assert fallback is True and set(found) == set(SPECS)


def test_a_run_that_lost_its_lock_stops_before_the_next_step(client, settings):
    db = client["it_lost_lock"]
    ran: list[str] = []

    def steal_lock(db, settings):
        ran.append("first")
        # Our lock expired and another run took it while this step was running.
        db[MIGRATIONS_COLLECTION].update_one({"_id": LOCK_ID}, {"$set": {"owner": "other-host:2"}})
        return {}

    def second(db, settings):
        ran.append("second")
        return {}

    steps = [Migration(1, "first", "first", steal_lock), Migration(2, "second", "second", second)]
    with pytest.raises(MigrationLocked):
        run_migrations(db, settings, migrations=steps)
    assert ran == ["first"]
    assert db[MIGRATIONS_COLLECTION].find_one({"_id": LOCK_ID})["owner"] == "other-host:2"  # not released by us


def test_migration_error_is_an_api_error_carrying_the_summary(client, settings):
    from shared.errors import ApiError

    db = client["it_migration_error"]

    def boom(db, settings):
        raise RuntimeError("boom")

    with pytest.raises(MigrationError) as info:
        run_migrations(db, settings, migrations=[Migration(1, "boom", "boom", boom)])
    assert isinstance(info.value, ApiError)
    assert info.value.status == 500 and info.value.type == "migration-failed"
    assert info.value.extra["summary"]["failed"] == "0001_boom"
    assert info.value.extra["summary"] is info.value.summary


def test_chat_messages_migration_moves_embedded_messages_of_an_older_deployment(client, settings):
    """A deployment that ran steps 1-2 before chat_messages existed, with conversations embedding their
    messages: step 3 creates chat_messages (validator, index) and moves every conversation's messages."""
    from shared.data.migrations import MIGRATIONS
    from shared.data.repositories import MongoChatRepository

    db = client["it_chat_messages"]
    assert run_migrations(db, settings, migrations=MIGRATIONS[:2])["status"] == "applied"
    db.drop_collection("chat_messages")  # did not exist then
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(3):
        db["chats"].insert_one({"owner_id": f"u{n}", "title": f"t{n}", "created_at": now, "updated_at": now,
                                "version": 1 + n, "messages": [{"role": "user", "content": f"q{n}.{i}"} for i in range(n)]})
    plan = run_migrations(db, settings, dry_run=True)["results"]["0003_chat_messages"]
    assert plan["chats_to_move"] == 3 and "chat_messages" in plan["schema"]["create_collections"]
    summary = run_migrations(db, settings)
    assert summary["applied"] == ["0003_chat_messages", "0004_job_collections"]
    assert summary["results"]["0003_chat_messages"] | {"schema": None} == {"schema": None, "chats": 3,
                                                                          "messages_moved": 3}
    assert "chat_messages_chat_seq" in db["chat_messages"].index_information()
    assert db["chats"].count_documents({"messages": {"$exists": True}}) == 0
    assert sorted(d["message_count"] for d in db["chats"].find({})) == [0, 1, 2]
    repo = MongoChatRepository(db)
    two = db["chats"].find_one({"owner_id": "u2"})
    assert [m["content"] for m in repo.recent_messages("u2", str(two["_id"]), 10)] == ["q2.0", "q2.1"]
    with pytest.raises(Exception) as info:  # the validator holds for moved messages too
        db["chat_messages"].insert_one({"_id": "x:00000001", "owner_id": "u2", "chat_id": "x", "seq": 1, "role": "robot",
                                        "content": "x"})
    assert getattr(info.value, "code", None) == 121
    assert run_migrations(db, settings)["status"] == "nothing to do"
