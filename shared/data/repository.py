"""MongoGenericRepository (CRUD, cursor pagination, optimistic concurrency) and OwnedRepository.

Every public method of these classes and of their subclasses runs inside
`mongo_errors()` (wrapped automatically in `__init_subclass__`), so callers only
ever see shared.errors classes. Documents come back normalized (see
`normalize_document`): `id` as a string, datetimes as ISO 8601 UTC strings.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from shared.data.errors import translated
from shared.data.utils import cursor_field_types, decode_cursor, encode_cursor, keyset_filter, normalize_document, utc_now
from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

    from shared.resilience import CircuitBreaker

SortSpec = Sequence[tuple[str, int]] | str | None
Page = tuple[list[dict[str, Any]], str | None]

#: Tries of an optimistic update without If-Match before it is Conflict, and the first back-off (doubling).
CONTENTION_ATTEMPTS = 8
CONTENTION_BACKOFF_S = 0.005

#: Fields callers can never set through insert/update `changes`: the repository owns them.
SYSTEM_FIELDS = frozenset({"_id", "id", "created_at", "updated_at", "version", "owner_id"})


def check_version(version: Any, expected_version: int | None, entity: str = "Resource") -> None:
    """PreconditionFailed (412, `current_version` in extra) when `expected_version` is given and differs."""
    if expected_version is not None and version != expected_version:
        raise PreconditionFailed(f"{entity} is at version {version}, not {expected_version}",
                                 extra={"current_version": version})


_check_version = check_version  # `_do_update` has a parameter named check_version


def coerce_object_id(value: Any) -> Any | None:
    """ObjectId for an ObjectId or a 24-hex string; None for anything malformed (callers answer 404)."""
    from bson import ObjectId
    from bson.errors import InvalidId

    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str):
        try:
            return ObjectId(value)
        except (InvalidId, TypeError):
            return None
    return None


def parse_sort(sort: SortSpec, default: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Normalise `"-created_at,name"` or `[("created_at", -1)]` to a list ending with `_id` as tiebreak."""
    if sort is None or sort == "" or sort == []:
        keys = list(default)
    elif isinstance(sort, str):
        keys = []
        for part in sort.split(","):
            part = part.strip()
            if not part:
                continue
            direction = -1 if part.startswith("-") else 1
            keys.append((part.lstrip("+-"), direction))
    else:
        keys = [(str(f), -1 if int(d) < 0 else 1) for f, d in sort]
    keys = [("_id" if f == "id" else f, d) for f, d in keys]
    for field, _ in keys:
        if not field or field.startswith("$"):
            raise ValidationFailed(f"Invalid sort field {field!r}", errors={"sort": ["Not a sortable field"]})
    if not any(f == "_id" for f, _ in keys):
        keys.append(("_id", keys[-1][1] if keys else 1))
    return keys


#: Public methods that report instead of raising (and account for the breaker themselves).
_UNWRAPPED = frozenset({"health_check"})


def _wrap_public_methods(cls: type) -> None:
    """Run every public method defined on `cls` inside mongo_errors()."""
    for name, value in list(vars(cls).items()):
        if (name.startswith("_") or name in _UNWRAPPED or not inspect.isfunction(value)
                or getattr(value, "__mongo_translated__", False)):
            continue
        setattr(cls, name, translated(value))


def ping_database(db: Database, breaker: CircuitBreaker | None = None,
                  *, clock: Callable[[], float] = time.perf_counter) -> tuple[bool, dict[str, Any]]:
    """(healthy, details) from one `ping` through the database breaker; never raises.

    While the breaker is open no ping is sent: details say `breaker: open` at once. A failed ping
    counts against the breaker and a successful one closes it, like any other call.
    """
    if breaker is not None and not breaker.allow():
        return False, {"status": "unavailable", "error": "breaker_open", "breaker": breaker.state}
    started = clock()
    try:
        db.command("ping")
    except Exception as exc:  # reported, not raised: health endpoints must answer
        if breaker is not None:
            breaker.record_failure(error=type(exc).__name__)
        details: dict[str, Any] = {"status": "unavailable", "error": type(exc).__name__}
        return False, details | ({"breaker": breaker.state} if breaker is not None else {})
    if breaker is not None:
        breaker.record_success()
    details = {"status": "healthy", "latency_ms": round((clock() - started) * 1000, 2)}
    return True, details | ({"breaker": breaker.state} if breaker is not None else {})


class MongoGenericRepository:
    """CRUD over one collection with system fields, cursor pagination and optimistic concurrency.

    Guarantees: inserts set `created_at`, `updated_at` and `version=1`; every update
    bumps `version` and `updated_at`; a malformed id is NotFound (never a 500);
    pymongo errors surface as shared.errors classes.
    """

    collection_name: ClassVar[str] = ""
    default_sort: ClassVar[tuple[tuple[str, int], ...]] = (("created_at", -1),)
    default_page_size: ClassVar[int] = 50
    max_page_size: ClassVar[int] = 500
    #: Keys whose values are ids (stringified by normalization even if stored as ObjectId).
    id_fields: ClassVar[tuple[str, ...]] = ("_id",)
    #: Collections whose `_id` is a natural string key (not an ObjectId) set this.
    string_ids: ClassVar[bool] = False

    def __init__(
        self,
        db: Database,
        *,
        collection_name: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        logger: logging.Logger | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        name = collection_name or self.collection_name
        if not name:
            raise ValueError(f"{type(self).__name__} needs a collection_name")
        self.collection_name = name
        self._db = db
        self._breaker = breaker  # read by `translated`: every public method goes through it
        self._collection: Collection = db[name]
        self._clock = clock
        self.logger = logger or logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_public_methods(cls)

    @property
    def collection(self) -> Collection:
        return self._collection

    # -- helpers shared with subclasses -------------------------------------------------

    def _now(self) -> datetime:
        return self._clock()

    def _normalize(self, doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return normalize_document(doc, self.id_fields)

    def _coerce_id(self, id: Any) -> Any | None:
        if self.string_ids:
            return id if isinstance(id, str) and id else None
        return coerce_object_id(id)

    def _id_filter(self, id: Any) -> dict[str, Any] | None:
        oid = self._coerce_id(id)
        return None if oid is None else {"_id": oid}

    def _prepare_filter(self, filter: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Copy of `filter` with `id` renamed to `_id` and string ids coerced; None when an id is malformed."""
        out = dict(filter or {})
        if "id" in out:
            out["_id"] = out.pop("id")
        if "_id" in out and not isinstance(out["_id"], Mapping):
            oid = self._coerce_id(out["_id"])
            if oid is None:
                return None
            out["_id"] = oid
        return out

    @staticmethod
    def _clean_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
        if any(str(k).startswith("$") for k in changes):
            raise ValueError("changes are plain field values, not update operators")
        return {k: v for k, v in changes.items() if k not in SYSTEM_FIELDS}

    def _stamp_new(self, document: Mapping[str, Any]) -> dict[str, Any]:
        doc = {k: v for k, v in document.items() if k not in SYSTEM_FIELDS}
        if "_id" in document:
            doc["_id"] = document["_id"]
        now = self._now()
        doc.update(created_at=now, updated_at=now, version=1)
        return doc

    def _do_find_one(self, filter: dict[str, Any] | None, projection: Any = None) -> dict[str, Any] | None:
        if filter is None:
            return None
        return self._normalize(self._collection.find_one(filter, projection))

    def _do_find_many(
        self,
        filter: dict[str, Any] | None,
        sort: SortSpec,
        limit: int | None,
        cursor: str | None,
        projection: Any,
    ) -> Page:
        if filter is None:
            return [], None
        keys = parse_sort(sort, self.default_sort)
        size = self.default_page_size if limit is None else max(1, min(int(limit), self.max_page_size))
        query = filter
        if cursor:
            types = cursor_field_types(self.collection_name, keys, string_ids=self.string_ids)
            after = keyset_filter(keys, decode_cursor(cursor, keys, types))
            query = {"$and": [filter, after]} if filter else after
        if isinstance(projection, Mapping) and projection and any(bool(v) for v in projection.values()):
            # Inclusion projections must keep the sort keys so the cursor can be built.
            projection = {**projection, **{f: 1 for f, _ in keys}}
        raw = list(self._collection.find(query, projection).sort(keys).limit(size + 1))
        next_cursor = encode_cursor(keys, raw[size - 1]) if len(raw) > size else None
        return [self._normalize(d) for d in raw[:size]], next_cursor  # type: ignore[misc]

    def _do_insert(self, document: Mapping[str, Any]) -> dict[str, Any]:
        return self._write_new(self._stamp_new(document))

    def _write_new(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Insert an already stamped document and return it normalized."""
        result = self._collection.insert_one(doc)
        doc["_id"] = result.inserted_id
        return self._normalize(doc)  # type: ignore[return-value]

    def _do_update(
        self,
        base: dict[str, Any] | None,
        update: dict[str, Any],
        *,
        expected_version: int | None = None,
        check_version: bool = True,
    ) -> dict[str, Any]:
        """Apply `update` to the one document matching `base`, bumping version and updated_at.

        With `check_version` the write is conditional on the version just read, so each write
        lands on a version it saw. `expected_version` (the client's If-Match) that does not match
        the stored one is PreconditionFailed (412), and a concurrent writer after that check is
        Conflict (409). Without `expected_version` the update does not depend on what the caller
        read, so losing the race to another writer re-reads the version and tries again (up to
        `CONTENTION_ATTEMPTS` in all, with a short random back-off) before it is Conflict.
        """
        from pymongo import ReturnDocument

        if base is None:
            raise NotFound(f"{self._entity()} not found")
        update = {op: dict(v) for op, v in update.items()}
        update.setdefault("$set", {})["updated_at"] = self._now()
        update.setdefault("$inc", {})["version"] = 1
        conditional = check_version or expected_version is not None
        attempts = CONTENTION_ATTEMPTS if conditional and expected_version is None else 1
        for attempt in range(attempts):
            query = dict(base)
            if conditional:
                current = self._collection.find_one(base, {"version": 1})
                if current is None:
                    raise NotFound(f"{self._entity()} not found")
                version = current.get("version")
                _check_version(version, expected_version, self._entity())
                query["version"] = version
            doc = self._collection.find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
            if doc is not None:
                return self._normalize(doc)  # type: ignore[return-value]
            if self._collection.count_documents(base, limit=1) == 0:
                raise NotFound(f"{self._entity()} not found")
            if attempt + 1 < attempts:
                # Random, growing back-off: writers that collided do not collide again in lockstep.
                time.sleep(random.uniform(0, CONTENTION_BACKOFF_S * 2 ** attempt))
        raise Conflict(f"{self._entity()} was modified concurrently; reload and retry")

    def _do_delete(self, base: dict[str, Any] | None, expected_version: int | None = None) -> None:
        if base is None:
            raise NotFound(f"{self._entity()} not found")
        query = dict(base)
        if expected_version is not None:
            current = self._collection.find_one(base, {"version": 1})
            if current is None:
                raise NotFound(f"{self._entity()} not found")
            _check_version(current.get("version"), expected_version, self._entity())
            query["version"] = expected_version
        result = self._collection.delete_one(query)
        if result.deleted_count == 0:
            if expected_version is not None and self._collection.count_documents(base, limit=1):
                raise Conflict(f"{self._entity()} was modified concurrently; reload and retry")
            raise NotFound(f"{self._entity()} not found")

    def _entity(self) -> str:
        return self.collection_name.rstrip("s").replace("_", " ").capitalize() or "Document"

    # -- public, unscoped API -------------------------------------------------------------

    def find_one(self, filter: Mapping[str, Any] | None = None, *, projection: Any = None) -> dict[str, Any] | None:
        """First document matching `filter` (`id` accepted for `_id`), or None."""
        return self._do_find_one(self._prepare_filter(filter), projection)

    def get(self, id: Any) -> dict[str, Any]:
        """Document by id; NotFound when missing or when `id` is malformed."""
        doc = self._do_find_one(self._id_filter(id))
        if doc is None:
            raise NotFound(f"{self._entity()} not found")
        return doc

    def find_many(
        self,
        filter: Mapping[str, Any] | None = None,
        sort: SortSpec = None,
        limit: int | None = None,
        cursor: str | None = None,
        projection: Any = None,
    ) -> Page:
        """One page: `(items, next_cursor)`; `next_cursor` is None on the last page.

        Keyset pagination on the sort keys plus `_id`, so pages are stable under inserts.
        """
        return self._do_find_many(self._prepare_filter(filter), sort, limit, cursor, projection)

    def insert_one(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Insert and return the stored document (system fields set by the repository)."""
        return self._do_insert(document)

    def update_one(self, id: Any, changes: Mapping[str, Any], expected_version: int | None = None) -> dict[str, Any]:
        """`$set` the given fields with optimistic concurrency; returns the updated document."""
        return self._do_update(self._id_filter(id), {"$set": self._clean_changes(changes)}, expected_version=expected_version)

    def delete_one(self, id: Any, expected_version: int | None = None) -> None:
        """Delete by id; NotFound when missing; PreconditionFailed on a version mismatch."""
        self._do_delete(self._id_filter(id), expected_version)

    def count(self, filter: Mapping[str, Any] | None = None) -> int:
        prepared = self._prepare_filter(filter)
        return 0 if prepared is None else self._collection.count_documents(prepared)

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) from a ping through the breaker (see `ping_database`); never raises."""
        ok, details = ping_database(self._db, self._breaker)
        return ok, {"component": f"{self.collection_name}_repository", **details}


class OwnedRepository(MongoGenericRepository):
    """A repository whose every method takes `owner_id` first and always filters on it.

    An unscoped query cannot be written through this class: the owner condition is
    ANDed at the top level of every filter (overriding any `owner_id` the caller
    put there), and inserts take `owner_id` from the argument, never the document.
    Another owner's document is NotFound, exactly like a missing one.
    """

    owner_field: ClassVar[str] = "owner_id"

    def _scope(self, owner_id: str, filter: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        if not isinstance(owner_id, str) or not owner_id:
            raise ValueError("owner_id must be a non-empty string")
        prepared = self._prepare_filter(filter)
        if prepared is None:
            return None
        prepared[self.owner_field] = owner_id
        return prepared

    def _scoped_id(self, owner_id: str, id: Any) -> dict[str, Any] | None:
        base = self._id_filter(id)
        return None if base is None else self._scope(owner_id, base)

    def find_one(self, owner_id: str, filter: Mapping[str, Any] | None = None, *, projection: Any = None) -> dict[str, Any] | None:  # type: ignore[override]
        return self._do_find_one(self._scope(owner_id, filter), projection)

    def get(self, owner_id: str, id: Any) -> dict[str, Any]:  # type: ignore[override]
        doc = self._do_find_one(self._scoped_id(owner_id, id))
        if doc is None:
            raise NotFound(f"{self._entity()} not found")
        return doc

    def find_many(  # type: ignore[override]
        self,
        owner_id: str,
        filter: Mapping[str, Any] | None = None,
        sort: SortSpec = None,
        limit: int | None = None,
        cursor: str | None = None,
        projection: Any = None,
    ) -> Page:
        return self._do_find_many(self._scope(owner_id, filter), sort, limit, cursor, projection)

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        self._scope(owner_id)  # validates owner_id
        doc = self._stamp_new(document)
        doc[self.owner_field] = owner_id
        return self._write_new(doc)

    def update_one(  # type: ignore[override]
        self, owner_id: str, id: Any, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        return self._do_update(
            self._scoped_id(owner_id, id), {"$set": self._clean_changes(changes)}, expected_version=expected_version
        )

    def delete_one(self, owner_id: str, id: Any, expected_version: int | None = None) -> None:  # type: ignore[override]
        self._do_delete(self._scoped_id(owner_id, id), expected_version)

    def count(self, owner_id: str, filter: Mapping[str, Any] | None = None) -> int:  # type: ignore[override]
        scoped = self._scope(owner_id, filter)
        return 0 if scoped is None else self._collection.count_documents(scoped)


_wrap_public_methods(MongoGenericRepository)
