"""Ordered, versioned, idempotent migrations recorded in `schema_migrations`.

Guarantees: a step recorded as applied never runs again (a second run reports
"nothing to do"); each step is itself idempotent, so a run that failed midway
resumes at the first unapplied step; a lock document with an expiry keeps two
concurrent runs from interleaving (a crashed run's lock expires after `lock_ttl_s`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.data.repositories import insert_new, move_embedded_messages
from shared.data.schema import JOB_COLLECTIONS, SPECS, SchemaManager
from shared.data.utils import utc_now
from shared.errors import ApiError, Conflict

if TYPE_CHECKING:
    from pymongo.database import Database

    from shared.config.models import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_COLLECTION = "schema_migrations"
LOCK_ID = "__migration_lock__"
SEED_SYMBOLS_PATH = Path(__file__).with_name("seed") / "symbols.json"


class MigrationLocked(Conflict):
    """Another run holds the migration lock."""

    type, title = "migration-locked", "Migrations are already running"


class MigrationError(ApiError):
    """A step failed; `summary` (also in `extra`, so in the problem response) says what was applied before it.

    A rerun resumes at the failed step.
    """

    status, type, title = 500, "migration-failed", "Migration failed"

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message, extra={"summary": summary})
        self.summary = summary


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    description: str
    apply: Callable[[Database, Any], dict[str, Any]]
    plan: Callable[[Database, Any], dict[str, Any]] | None = None

    @property
    def id(self) -> str:
        return f"{self.version:04d}_{self.name}"


# -- steps ------------------------------------------------------------------------------------

def _schema_apply(db: Database, settings: Any) -> dict[str, Any]:
    return SchemaManager(db).setup_all_collections()


def _schema_plan(db: Database, settings: Any) -> dict[str, Any]:
    return SchemaManager(db).plan()


def load_seed_symbols(path: Path = SEED_SYMBOLS_PATH) -> list[dict[str, Any]]:
    """The shipped starter list of exchange-listed tickers (symbol, name, exchange, type, currency)."""
    return json.loads(path.read_text(encoding="utf-8"))


def _seed_symbols_apply(db: Database, settings: Any) -> dict[str, Any]:
    from shared.data.errors import mongo_errors

    now = utc_now()
    seed = load_seed_symbols()
    with mongo_errors("symbols"):
        # Insert only the missing ones: a rerun (or a resumed run) never overwrites curated
        # data, and insert_many is the embedded store's fast path (upserts are not).
        present = {d["symbol"] for d in db["symbols"].find({"symbol": {"$in": [s["symbol"] for s in seed]}},
                                                          {"symbol": 1, "_id": 0})}
        missing = [{**s, "created_at": now, "updated_at": now, "version": 1} for s in seed if s["symbol"] not in present]
        inserted = insert_new(db["symbols"], missing)  # one inserted concurrently by someone else is skipped
    return {"inserted": inserted, "already_present": len(present), "total": len(seed)}


def _seed_symbols_plan(db: Database, settings: Any) -> dict[str, Any]:
    symbols = load_seed_symbols()
    return {"would_upsert": len(symbols)}


CHAT_SPECS = tuple(SPECS[name] for name in ("chats", "chat_messages"))


def _chat_messages_apply(db: Database, settings: Any) -> dict[str, Any]:
    """chat_messages with its validator and index (deployments that ran step 1 before it existed), then every
    chat's embedded messages moved into it (see `move_embedded_messages`: resumable, safe beside live appends)."""
    from shared.data.errors import mongo_errors

    schema = SchemaManager(db, specs=CHAT_SPECS).setup_all_collections()
    chats = moved = 0
    with mongo_errors("chats"):
        for chat in db["chats"].find({"messages": {"$exists": True}}, {"_id": 1}):
            moved += move_embedded_messages(db["chats"], db["chat_messages"], chat["_id"])
            chats += 1
    return {"schema": schema, "chats": chats, "messages_moved": moved}


def _chat_messages_plan(db: Database, settings: Any) -> dict[str, Any]:
    return {"schema": SchemaManager(db, specs=CHAT_SPECS).plan(),
            "chats_to_move": db["chats"].count_documents({"messages": {"$exists": True}})}


JOB_SPECS = tuple(SPECS[name] for name in JOB_COLLECTIONS)


def _job_collections_apply(db: Database, settings: Any) -> dict[str, Any]:
    return SchemaManager(db, specs=JOB_SPECS).setup_all_collections()


def _job_collections_plan(db: Database, settings: Any) -> dict[str, Any]:
    return SchemaManager(db, specs=JOB_SPECS).plan()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "collections_validators_indexes", "Create collections with $jsonSchema validators and indexes",
              _schema_apply, _schema_plan),
    Migration(2, "seed_symbols", "Seed the symbols collection with the starter list", _seed_symbols_apply,
              _seed_symbols_plan),
    Migration(3, "chat_messages", "Move chat messages out of the chats documents into chat_messages",
              _chat_messages_apply, _chat_messages_plan),
    # Databases created before the job collections existed get them (step 1 already ran there).
    Migration(4, "job_collections", "Create the background-job collections (job_receipts, poison_messages)",
              _job_collections_apply, _job_collections_plan),
)


# -- lock -------------------------------------------------------------------------------------

def _acquire_lock(db: Database, owner: str, ttl_s: float, now: datetime) -> bool:
    from pymongo import ReturnDocument
    from pymongo.errors import DuplicateKeyError

    try:
        db[MIGRATIONS_COLLECTION].find_one_and_update(
            {"_id": LOCK_ID, "$or": [{"expires_at": {"$lte": now}}, {"owner": owner}]},
            {"$set": {"owner": owner, "acquired_at": now, "expires_at": now + timedelta(seconds=ttl_s)}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        return True
    except DuplicateKeyError:  # the lock document exists, is unexpired and owned by someone else
        return False


def _renew_lock(db: Database, owner: str, ttl_s: float, now: datetime) -> None:
    """Extend our lock; MigrationLocked when it is no longer ours (expired and taken, or removed)."""
    result = db[MIGRATIONS_COLLECTION].update_one(
        {"_id": LOCK_ID, "owner": owner}, {"$set": {"expires_at": now + timedelta(seconds=ttl_s)}})
    if result.matched_count == 0:
        raise MigrationLocked("This run lost the migration lock (it expired); stopped before the next step")


def _release_lock(db: Database, owner: str) -> None:
    db[MIGRATIONS_COLLECTION].delete_one({"_id": LOCK_ID, "owner": owner})


def applied_versions(db: Database) -> dict[str, dict[str, Any]]:
    """Applied steps by id (reads only; ignores the lock document and failed attempts)."""
    return {d["_id"]: d for d in db[MIGRATIONS_COLLECTION].find({"status": "applied"})}


# -- runner -----------------------------------------------------------------------------------

def run_migrations(
    db: Database,
    settings: Settings | None = None,
    dry_run: bool = False,
    *,
    migrations: Sequence[Migration] = MIGRATIONS,
    lock_ttl_s: float = 300.0,
    step_timeout_s: float = 120.0,
    wait_s: float = 0.0,
    owner: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Apply pending migrations in version order and return a summary dict.

    Summary keys: `status` ("applied", "nothing to do", "dry run"), `applied`,
    `already_applied`, `pending`, `results` (per-step detail), `dry_run`, `duration_ms`.
    Raises MigrationLocked when the lock is held for longer than `wait_s`, and
    MigrationError (with `.summary`) when a step fails; a rerun resumes at that step.
    """
    import pymongo

    from shared.data.errors import mongo_errors

    started = time.perf_counter()
    ordered = sorted(migrations, key=lambda m: m.version)
    if len({m.version for m in ordered}) != len(ordered):
        raise ValueError("migration versions must be unique")
    with mongo_errors(MIGRATIONS_COLLECTION):
        done = applied_versions(db)
    pending = [m for m in ordered if m.id not in done]
    summary: dict[str, Any] = {
        "dry_run": dry_run,
        "already_applied": [m.id for m in ordered if m.id in done],
        "pending": [m.id for m in pending],
        "applied": [],
        "results": {},
    }

    def finish(status: str) -> dict[str, Any]:
        summary["status"] = status
        summary["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return summary

    if not pending:
        logger.info("migrations: nothing to do")
        return finish("nothing to do")
    if dry_run:
        with mongo_errors():
            for m in pending:
                summary["results"][m.id] = {"description": m.description,
                                            **(m.plan(db, settings) if m.plan else {})}
        return finish("dry run")

    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_s
    with mongo_errors(MIGRATIONS_COLLECTION):
        while not _acquire_lock(db, owner, lock_ttl_s, clock()):
            if time.monotonic() >= deadline:
                raise MigrationLocked("Another migration run holds the lock; retry later")
            sleep(min(1.0, max(0.05, wait_s / 10)))
    try:
        # Re-read under the lock: a concurrent run may have finished steps meanwhile.
        with mongo_errors(MIGRATIONS_COLLECTION):
            done = applied_versions(db)
        for m in ordered:
            if m.id in done:
                continue
            step_started = time.perf_counter()
            try:
                # Schema work and seeding can legitimately outlast the per-request timeoutMS.
                with pymongo.timeout(step_timeout_s):
                    result = m.apply(db, settings)
            except Exception as exc:
                logger.error("migration %s failed: %s", m.id, type(exc).__name__)
                with mongo_errors(MIGRATIONS_COLLECTION):
                    db[MIGRATIONS_COLLECTION].update_one(
                        {"_id": m.id},
                        {"$set": {"version": m.version, "name": m.name, "status": "failed",
                                  "error": type(exc).__name__, "failed_at": clock()}},
                        upsert=True)
                summary["pending"] = [x.id for x in ordered if x.id not in done and x.id not in summary["applied"]]
                summary["failed"] = m.id
                finish("failed")
                raise MigrationError(f"migration {m.id} failed: {type(exc).__name__}", summary) from exc
            duration = round((time.perf_counter() - step_started) * 1000, 1)
            with mongo_errors(MIGRATIONS_COLLECTION):
                db[MIGRATIONS_COLLECTION].update_one(
                    {"_id": m.id},
                    {"$set": {"version": m.version, "name": m.name, "status": "applied", "applied_at": clock(),
                              "duration_ms": duration, "result": _bson_safe(result)},
                     "$unset": {"error": "", "failed_at": ""}},
                    upsert=True)
                _renew_lock(db, owner, lock_ttl_s, clock())
            summary["applied"].append(m.id)
            summary["results"][m.id] = result
            logger.info("migration %s applied in %.1f ms", m.id, duration)
        summary["pending"] = []
        return finish("applied" if summary["applied"] else "nothing to do")
    finally:
        try:
            with mongo_errors(MIGRATIONS_COLLECTION):
                _release_lock(db, owner)
        except Exception:  # the lock expires on its own; never mask the real outcome
            logger.warning("could not release the migration lock; it expires in %.0f s", lock_ttl_s)


def _bson_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
