"""The embedded wire server itself: batch-insert semantics, concurrency, the migrate CLI."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pymongo
import pytest

from shared.data.migrations import Migration, MigrationLocked, run_migrations
from shared.data.repositories import MongoNoteRepository
from shared.data.schema import CollectionSpec, IndexSpec, SchemaManager, schema

pytestmark = pytest.mark.integration


@pytest.fixture
def raw(client):
    db = client["it_raw"]
    db.drop_collection("v")
    db.create_collection("v", validator={"$jsonSchema": {"bsonType": "object", "required": ["a"]}})
    db.v.create_index("a", unique=True)
    return db


@pytest.mark.parametrize("ordered, inserted, errors, kept", [
    (True, 1, [(1, 11000)], ["x"]),
    (False, 2, [(1, 11000), (2, 121)], ["x", "z"]),
])
def test_insert_many_keeps_mongodb_ordered_semantics(raw, ordered, inserted, errors, kept):
    with pytest.raises(pymongo.errors.BulkWriteError) as info:
        raw.v.insert_many([{"a": "x"}, {"a": "x"}, {"b": 1}, {"a": "z"}], ordered=ordered)
    assert info.value.details["nInserted"] == inserted
    assert [(e["index"], e["code"]) for e in info.value.details["writeErrors"]] == errors
    assert sorted(d["a"] for d in raw.v.find()) == kept


def test_batch_insert_patch_is_active():
    from shared.data.embedded import install_batch_insert

    assert install_batch_insert() is True  # False would mean mongoeco's internals changed shape


def test_single_inserts_still_enforce_unique_id_and_validator(raw):
    doc = {"a": "one"}
    raw.v.insert_one(doc)
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        raw.v.insert_one({"_id": doc["_id"], "a": "two"})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        raw.v.insert_one({"a": "one"})
    with pytest.raises(pymongo.errors.WriteError) as info:
        raw.v.insert_one({"b": 1})
    assert info.value.code == 121
    raw.w.drop()
    raw.w.insert_one({"_id": 1})
    with pytest.raises(pymongo.errors.DuplicateKeyError):  # numeric ids keep mongoeco's cross-type check
        raw.w.insert_one({"_id": 1.0})


def test_concurrent_threads_through_one_client(client):
    repo = MongoNoteRepository(client["it_threads"])

    def work(i):
        for j in range(5):
            n = repo.insert_one(f"u{i}", {"content": str(j)})
            repo.update_one(f"u{i}", n["id"], {"content": f"{j}!"})
        return repo.count(f"u{i}")

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(work, range(4))) == [5, 5, 5, 5]
    assert repo.collection.count_documents({"content": {"$regex": "!$"}}) == 20


def test_concurrent_migration_runs_apply_each_step_once(client, settings):
    db = client["it_concurrent_migrations"]
    calls = []
    gate = threading.Event()

    def slow_step(db, settings):
        calls.append(threading.current_thread().name)
        gate.wait(5)  # hold the lock while the other run tries to take it
        spec = CollectionSpec("things", schema({"n": {"bsonType": "string"}}, ["n"], system=False),
                              (IndexSpec((("n", 1),), "things_n"),))
        return SchemaManager(db, specs=(spec,)).setup_all_collections()

    steps = [Migration(1, "slow", "slow step", slow_step)]
    results = {}

    def run(name, wait_s):
        try:
            results[name] = run_migrations(db, settings, migrations=steps, wait_s=wait_s)["status"]
        except MigrationLocked:
            results[name] = "locked"

    first = threading.Thread(target=run, args=("first", 0.0), name="first")
    first.start()
    while not calls:
        threading.Event().wait(0.01)
    run("second", 0.0)  # lock held: refused immediately
    waiter = threading.Thread(target=run, args=("waiter", 10.0), name="waiter")
    waiter.start()
    gate.set()
    first.join(10)
    waiter.join(15)
    assert results == {"first": "applied", "second": "locked", "waiter": "nothing to do"}
    assert calls == ["first"]


def test_migrate_cli_dry_run_then_apply(tmp_path, monkeypatch, capsys):
    import json

    from shared.data import migrate
    from shared.data.migrations import MIGRATIONS

    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    assert migrate.main(["--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["status"] == "dry run" and len(dry["pending"]) == len(MIGRATIONS)
    assert migrate.main([]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "applied"
    assert migrate.main([]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "nothing to do"
