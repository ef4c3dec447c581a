"""Domain repositories: thin subclasses of MongoGenericRepository / OwnedRepository.

Names follow the technology (`Mongo...Repository`). Every public method is translated
(pymongo errors -> shared.errors) by the base class.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.data.repository import MongoGenericRepository, OwnedRepository, Page, SortSpec
from shared.data.utils import batched, iso_utc, normalize_document
from shared.errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from pymongo.database import Database


def name_key(name: str) -> str:
    """Case- and space-insensitive key used for "unique name per owner"."""
    return " ".join(str(name).split()).casefold()


def normalize_symbol(symbol: str) -> str:
    """The one place a ticker is normalised: trimmed and upper-cased (validation is the caller's)."""
    return str(symbol).strip().upper()


def normalize_tags(tags: Iterable[Any] | None) -> list[str]:
    """Tags trimmed, empty ones dropped, duplicates removed keeping the first occurrence's order."""
    return list(dict.fromkeys(t for t in (str(x).strip() for x in tags or []) if t))


def _is_duplicate_key(exc: BaseException) -> bool:
    from pymongo.errors import PyMongoError

    from shared.data.errors import DUPLICATE_KEY_CODES

    cause = exc.__cause__
    if not isinstance(cause, PyMongoError):
        return False
    if getattr(cause, "code", None) in DUPLICATE_KEY_CODES:
        return True
    errors = (getattr(cause, "details", None) or {}).get("writeErrors") or []
    return any(e.get("code") in DUPLICATE_KEY_CODES for e in errors)


def bson_datetime(value: datetime) -> datetime:
    """UTC-aware, millisecond precision: the value MongoDB stores and gives back (so keys compare equal)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


def _same(existing: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    for key, value in fields.items():
        current = existing.get(key)
        if isinstance(value, datetime) and isinstance(current, datetime):
            if bson_datetime(value) != bson_datetime(current):
                return False
        elif current != value or type(current) is not type(value) and not (
                isinstance(current, (int, float)) and isinstance(value, (int, float))):
            return False
    return True


def bulk_upsert(collection: Any, prefix: Mapping[str, Any], key_field: str, rows: Sequence[Mapping[str, Any]], *,
                now: datetime, chunk_size: int, system_fields: bool,
                lookup: Callable[[list[Any]], Mapping[str, Any]] | None = None,
                update_chunk_size: int = 100) -> dict[str, int]:
    """Idempotent bulk upsert of `rows` keyed by `prefix` + `row[key_field]` (a unique key must cover it).

    Reads the existing rows of the chunk (`lookup(keys)` gives the filter; default
    `key_field $in keys`), `insert_many`s the new rows and `$set`s only rows whose
    values changed: the same end state as per-row upserts, with far fewer writes, and
    new rows take the batch insert path (per-row upserts are O(collection) each on the
    embedded store). Returns `{"inserted", "updated", "unchanged"}`.
    """
    from pymongo import UpdateOne
    from pymongo.errors import BulkWriteError

    inserted = updated = unchanged = 0
    for chunk in batched(rows, chunk_size):
        by_key = {row[key_field]: row for row in chunk}  # last one wins within a chunk
        keys = list(by_key)
        query = dict(lookup(keys)) if lookup else {**prefix, key_field: {"$in": keys}}
        existing = {d[key_field]: d for d in collection.find(query) if d.get(key_field) in by_key}
        new = [k for k in keys if k not in existing]
        to_update = []
        for k in keys:
            if k in existing:
                if _same(existing[k], by_key[k]):
                    unchanged += 1
                else:
                    to_update.append(k)
        if new:
            docs = []
            for k in new:
                doc = {**prefix, **by_key[k]}
                if system_fields:
                    doc.update(created_at=now, updated_at=now, version=1)
                docs.append(doc)
            try:
                inserted += len(collection.insert_many(docs, ordered=False).inserted_ids)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                inserted += exc.details.get("nInserted", 0)
                # Inserted concurrently by someone else since the lookup: update those instead.
                to_update += [new[e["index"]] for e in errors]
        ops = []
        for k in to_update:
            update: dict[str, Any] = {"$set": {f: v for f, v in by_key[k].items() if f != "_id"}}
            if system_fields:
                update["$set"]["updated_at"] = now
                update["$inc"] = {"version": 1}
            ops.append(UpdateOne({**prefix, key_field: k}, update))
        # Small update batches: each bulk_write is one operation under timeoutMS.
        for part in batched(ops, update_chunk_size):
            updated += collection.bulk_write(part, ordered=False).matched_count
    return {"inserted": inserted, "updated": updated, "unchanged": unchanged}


class _NamedOwnedRepository(OwnedRepository):
    """Owned collection whose `name` is unique per owner (case-insensitive, via `name_key`).

    A duplicate name is Conflict("<Entity> name already exists", extra={"field": "name"}),
    decided by the unique (owner_id, name_key) index, so racing writers get it too.
    """

    def _name_taken(self) -> Conflict:
        return Conflict(f"{self._entity()} name already exists", extra={"field": "name"})

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        doc = dict(document)
        if "name" in doc:
            doc["name_key"] = name_key(doc["name"])
        try:
            return super().insert_one(owner_id, doc)
        except Conflict as exc:
            if _is_duplicate_key(exc):
                raise self._name_taken() from exc
            raise

    def update_one(self, owner_id: str, id: Any, changes: Mapping[str, Any],  # type: ignore[override]
                   expected_version: int | None = None) -> dict[str, Any]:
        changes = dict(changes)
        changes.pop("name_key", None)
        if changes.get("name") is not None:
            changes["name_key"] = name_key(changes["name"])
        try:
            return super().update_one(owner_id, id, changes, expected_version)
        except Conflict as exc:
            if _is_duplicate_key(exc):
                raise self._name_taken() from exc
            raise

    def find_by_name(self, owner_id: str, name: str) -> dict[str, Any] | None:
        return self.find_one(owner_id, {"name_key": name_key(name)})


class _OnePerOwnerRepository(OwnedRepository):
    """At most one document per owner (unique index on owner_id)."""

    def get_for_owner(self, owner_id: str) -> dict[str, Any] | None:
        return self.find_one(owner_id)

    def upsert_for_owner(self, owner_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update the owner's document atomically; version bumps on each write."""
        from pymongo import ReturnDocument

        now = self._now()
        scoped = self._scope(owner_id)
        doc = self._collection.find_one_and_update(
            scoped,
            {"$set": {**self._clean_changes(changes), "updated_at": now},
             "$setOnInsert": {"created_at": now}, "$inc": {"version": 1}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        return self._normalize(doc)  # type: ignore[return-value]


# -- users & auth -----------------------------------------------------------------------

class MongoUserRepository(MongoGenericRepository):
    """Users; `email` is stored lower-cased and unique (duplicate -> Conflict)."""

    collection_name = "users"

    def insert_one(self, document: Mapping[str, Any]) -> dict[str, Any]:
        doc = dict(document)
        if "email" in doc:
            doc["email"] = str(doc["email"]).strip().lower()
        return super().insert_one(doc)

    def update_one(self, id: Any, changes: Mapping[str, Any], expected_version: int | None = None) -> dict[str, Any]:
        changes = dict(changes)
        if changes.get("email") is not None:
            changes["email"] = str(changes["email"]).strip().lower()
        return super().update_one(id, changes, expected_version)

    def find_by_email(self, email: str) -> dict[str, Any] | None:
        return self.find_one({"email": str(email).strip().lower()})


class MongoApiKeyRepository(OwnedRepository):
    """API keys (only hashes are stored). Lookup by hash/prefix is unscoped: it is how a caller is identified."""

    collection_name = "api_keys"

    def find_by_hash(self, key_hash: str, *, include_revoked: bool = False) -> dict[str, Any] | None:
        query: dict[str, Any] = {"key_hash": key_hash}
        if not include_revoked:
            query["revoked_at"] = None
        return self._normalize(self._collection.find_one(query))

    def find_by_prefix(self, prefix: str, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"prefix": prefix}
        if not include_revoked:
            query["revoked_at"] = None
        return [self._normalize(d) for d in self._collection.find(query).limit(20)]  # type: ignore[misc]

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        doc = {"revoked_at": None, "last_used_at": None, **document}
        return super().insert_one(owner_id, doc)

    def revoke(self, owner_id: str, id: Any) -> dict[str, Any]:
        """Mark the owner's key revoked (idempotent: revoking twice keeps the first timestamp)."""
        current = self.get(owner_id, id)
        if current.get("revoked_at"):
            return current
        return self._do_update(self._scoped_id(owner_id, id), {"$set": {"revoked_at": self._now()}}, check_version=False)

    def touch_last_used(self, id: Any, at: datetime | None = None) -> None:
        """Record use without bumping version (not a user edit); missing ids are ignored."""
        base = self._id_filter(id)
        if base is not None:
            self._collection.update_one(base, {"$set": {"last_used_at": at or self._now()}})


class MongoUserProfileRepository(_OnePerOwnerRepository):
    collection_name = "user_profiles"


class MongoUserPreferencesRepository(_OnePerOwnerRepository):
    collection_name = "user_preferences"


# -- workspaces & organisation ------------------------------------------------------------

class MongoWorkspaceRepository(_NamedOwnedRepository):
    collection_name = "workspaces"


class MongoWatchlistRepository(_NamedOwnedRepository):
    """Watchlists; symbols are upper-cased and kept unique within a list."""

    collection_name = "watchlists"

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        doc = dict(document)
        symbols = [normalize_symbol(s) for s in doc.get("symbols") or []]
        doc["symbols"] = list(dict.fromkeys(symbols))
        return super().insert_one(owner_id, doc)

    def add_symbol(self, owner_id: str, id: Any, symbol: str, *, max_symbols: int | None = None) -> dict[str, Any]:
        """Add `symbol` (idempotent) atomically; with `max_symbols`, ValidationFailed (422) when the list is full."""
        base = self._scoped_id(owner_id, id)
        sym = normalize_symbol(symbol)
        if base is None or max_symbols is None:
            return self._do_update(base, {"$addToSet": {"symbols": sym}}, check_version=False)
        # One conditional write: the symbol is already there, or there is room for it.
        room = {**base, "$or": [{"symbols": sym}, {f"symbols.{max_symbols - 1}": {"$exists": False}}]}
        try:
            return self._do_update(room, {"$addToSet": {"symbols": sym}}, check_version=False)
        except NotFound:
            if self._collection.count_documents(base, limit=1):
                raise ValidationFailed("Watchlist is full",
                                       errors={"symbol": [f"At most {max_symbols} symbols per watchlist"]}) from None
            raise

    def remove_symbol(self, owner_id: str, id: Any, symbol: str, expected_version: int | None = None) -> dict[str, Any]:
        """Pull `symbol`; with `expected_version` only from that version (PreconditionFailed otherwise)."""
        return self._do_update(self._scoped_id(owner_id, id), {"$pull": {"symbols": normalize_symbol(symbol)}},
                               expected_version=expected_version, check_version=False)


class MongoPortfolioRepository(OwnedRepository):
    collection_name = "portfolios"


class MongoPositionRepository(OwnedRepository):
    """Positions belong to a portfolio and an owner; listing is always by both."""

    collection_name = "positions"

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        doc = dict(document)
        if "symbol" in doc:
            doc["symbol"] = normalize_symbol(doc["symbol"])
        return super().insert_one(owner_id, doc)

    def list_for_portfolio(self, owner_id: str, portfolio_id: str, *, sort: SortSpec = None,
                           limit: int | None = None, cursor: str | None = None) -> Page:
        return self.find_many(owner_id, {"portfolio_id": str(portfolio_id)}, sort=sort or [("symbol", 1)],
                              limit=limit, cursor=cursor)

    def delete_for_portfolio(self, owner_id: str, portfolio_id: str) -> int:
        scoped = self._scope(owner_id, {"portfolio_id": str(portfolio_id)})
        return self._collection.delete_many(scoped).deleted_count  # type: ignore[arg-type]


class _TaggedOwnedRepository(OwnedRepository):
    """Owned documents with `tags` (see `normalize_tags`) and an optional `symbol`, normalised on insert and update."""

    @staticmethod
    def _normalized(fields: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(fields)
        if "tags" in out:
            out["tags"] = normalize_tags(out["tags"])
        if out.get("symbol"):
            out["symbol"] = normalize_symbol(out["symbol"])
        return out

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return super().insert_one(owner_id, self._normalized({"tags": [], "symbol": None, **document}))

    def update_one(self, owner_id: str, id: Any, changes: Mapping[str, Any],  # type: ignore[override]
                   expected_version: int | None = None) -> dict[str, Any]:
        return super().update_one(owner_id, id, self._normalized(changes), expected_version)


class MongoNoteRepository(_TaggedOwnedRepository):
    """Notes with tags and an optional symbol."""

    collection_name = "notes"

    def list_notes(self, owner_id: str, *, tag: str | None = None, symbol: str | None = None,
                   sort: SortSpec = None, limit: int | None = None, cursor: str | None = None) -> Page:
        query: dict[str, Any] = {}
        if tag:
            query["tags"] = tag
        if symbol:
            query["symbol"] = normalize_symbol(symbol)
        return self.find_many(owner_id, query, sort=sort, limit=limit, cursor=cursor)


class MongoInvestmentIdeaRepository(_TaggedOwnedRepository):
    collection_name = "investment_ideas"


def insert_new(collection: Any, docs: Sequence[Mapping[str, Any]]) -> int:
    """`insert_many` unordered, skipping documents whose `_id` already exists (a rerun, or a concurrent
    writer with the same deterministic ids); returns how many were inserted. Other errors are raised."""
    from pymongo.errors import BulkWriteError

    if not docs:
        return 0
    try:
        return len(collection.insert_many(list(docs), ordered=False).inserted_ids)
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise
        return int(exc.details.get("nInserted", 0))


class MongoChatMessageRepository(OwnedRepository):
    """The messages of conversations, one document each, keyed by chat id + sequence number.

    `_id` is `<chat_id>:<seq, 8 digits>`: unique on every backend by key lookup (the embedded store checks
    unique indexes over numbers by scanning), and within a chat `_id` order is sequence order, so pages are
    keyed by a string. Reads select one chat on the (chat_id, seq) index and take at most a page or the last
    few messages, so their cost does not grow with the conversation (on the embedded store every query
    scans its collection: there it grows with the number of messages stored, see EMBEDDED_STORE.md).
    """

    collection_name = "chat_messages"
    default_sort = (("_id", 1),)
    string_ids = True
    #: Fields of a stored message that are storage, not message (not returned).
    _INTERNAL = ("id", "chat_id", "owner_id")

    @staticmethod
    def message_id(chat_id: str, seq: int) -> str:
        return f"{chat_id}:{seq:08d}"

    @staticmethod
    def document(owner_id: str, chat_id: str, seq: int, message: Mapping[str, Any], created_at: Any) -> dict[str, Any]:
        """The stored form of `message` as number `seq` of the chat (`created_at` unless the message has one)."""
        return {**message, "_id": MongoChatMessageRepository.message_id(chat_id, seq), "chat_id": chat_id,
                "owner_id": owner_id, "seq": seq, "created_at": message.get("created_at") or created_at}

    def _public(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k not in self._INTERNAL}

    def insert_messages(self, owner_id: str, chat_id: str, first_seq: int, messages: Sequence[Mapping[str, Any]]) -> int:
        """Store `messages` as numbers `first_seq`, `first_seq + 1`, ... of the chat (ids already present are kept)."""
        now = self._now()
        docs = [self.document(owner_id, chat_id, first_seq + i, m, now) for i, m in enumerate(messages)]
        return insert_new(self._collection, docs)

    def recent(self, owner_id: str, chat_id: str, n: int) -> list[dict[str, Any]]:
        """The chat's last `n` messages, oldest first."""
        if n <= 0:
            return []
        query = self._scope(owner_id, {"chat_id": chat_id})
        docs = list(self._collection.find(query).sort([("seq", -1)]).limit(int(n)))
        return [self._public(self._normalize(d)) for d in reversed(docs)]  # type: ignore[arg-type]

    def page(self, owner_id: str, chat_id: str, *, limit: int | None = None, cursor: str | None = None) -> Page:
        """One page of the chat's messages in sequence order, with the cursor of the next."""
        items, next_cursor = self.find_many(owner_id, {"chat_id": chat_id}, limit=limit, cursor=cursor)
        return [self._public(d) for d in items], next_cursor

    def delete_for_chat(self, owner_id: str, chat_id: str) -> int:
        return self._collection.delete_many(self._scope(owner_id, {"chat_id": chat_id})).deleted_count  # type: ignore[arg-type]


def move_embedded_messages(chats: Any, messages: Any, chat_id: Any) -> int:
    """Move one chat's embedded `messages` array (the old storage) into `chat_messages` as numbers 1..n and
    replace it by `message_count`; returns how many were moved.

    Idempotent and safe to run concurrently with itself and with appends: the copies have deterministic
    ids, the array is removed only while it is still there, and appends wait until it is gone.
    """
    raw = chats.find_one({"_id": chat_id, "messages": {"$exists": True}})
    if raw is None:
        return 0
    embedded = list(raw.get("messages") or [])
    cid, owner = str(raw["_id"]), raw["owner_id"]
    insert_new(messages, [MongoChatMessageRepository.document(owner, cid, i + 1, m, raw.get("created_at"))
                          for i, m in enumerate(embedded)])
    chats.update_one({"_id": raw["_id"], "messages": {"$exists": True}},
                     {"$unset": {"messages": ""}, "$set": {"message_count": len(embedded)}})
    return len(embedded)


class MongoChatRepository(OwnedRepository):
    """Conversations: the record (title, `message_count`) here, the messages in `chat_messages` (`self.messages`).

    A turn reads the record and the last few messages and appends its own, so its cost does not grow with the
    conversation's length. Chats still holding an embedded `messages` array (stored before `chat_messages`
    existed) are moved on first touch (and all at once by migration 3).
    """

    collection_name = "chats"
    default_sort = (("updated_at", -1),)

    def __init__(self, db: Database, **kw: Any) -> None:
        super().__init__(db, **kw)
        self.messages = MongoChatMessageRepository(db, clock=self._clock, logger=self.logger.getChild("messages"),
                                                   breaker=self._breaker)

    def _move_embedded(self, owner_id: str, chat_id: Any) -> bool:
        """Move the chat's embedded messages if it still has some; False when the chat is not the owner's."""
        base = self._scoped_id(owner_id, chat_id)
        raw = None if base is None else self._collection.find_one(base, {"messages": 1})
        if raw is None:
            return False
        if "messages" in raw:
            move_embedded_messages(self._collection, self.messages.collection, raw["_id"])
        return True

    def insert_one(self, owner_id: str, document: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return super().insert_one(owner_id, {**document, "message_count": 0})

    def get(self, owner_id: str, id: Any) -> dict[str, Any]:  # type: ignore[override]
        """The conversation's record (with `message_count`, without messages); NotFound when not the owner's."""
        doc = super().get(owner_id, id)
        if "messages" in doc:  # stored before chat_messages existed: move it now
            self._move_embedded(owner_id, id)
            doc = super().get(owner_id, id)
        return doc

    def append_messages(self, owner_id: str, chat_id: Any, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Append `messages` (in order, after every message stored so far) and return the updated record.

        Sequence numbers are reserved first with one atomic `$inc` on the record, then the messages are
        inserted under them, so concurrent turns never collide (a failed insert leaves a gap, never a clash).
        """
        if not messages:
            return self.get(owner_id, chat_id)
        base = self._scoped_id(owner_id, chat_id)
        reserve = {"$inc": {"message_count": len(messages)}}
        moved = {**base, "messages": {"$exists": False}} if base is not None else None
        try:
            chat = self._do_update(moved, reserve, check_version=False)
        except NotFound:
            if not self._move_embedded(owner_id, chat_id):
                raise
            chat = self._do_update(moved, reserve, check_version=False)
        first = int(chat["message_count"]) - len(messages) + 1
        self.messages.insert_messages(owner_id, str(chat["id"]), first, messages)
        return chat

    def recent_messages(self, owner_id: str, chat_id: str, n: int) -> list[dict[str, Any]]:
        return self.messages.recent(owner_id, chat_id, n)

    def page_messages(self, owner_id: str, chat_id: str, *, limit: int | None = None,
                      cursor: str | None = None) -> Page:
        """A page of the owner's conversation's messages; NotFound when the conversation is not theirs."""
        self.get(owner_id, chat_id)
        return self.messages.page(owner_id, chat_id, limit=limit, cursor=cursor)

    def delete_one(self, owner_id: str, id: Any, expected_version: int | None = None) -> None:  # type: ignore[override]
        """Delete the record (If-Match checked there), then its messages."""
        super().delete_one(owner_id, id, expected_version)
        self.messages.delete_for_chat(owner_id, str(id))


# -- market data -------------------------------------------------------------------------------

class MongoSymbolRepository(MongoGenericRepository):
    """The symbol catalogue: unique upper-case `symbol`, prefix/substring search, bulk upsert."""

    collection_name = "symbols"
    default_sort = (("symbol", 1),)

    def get_by_symbol(self, symbol: str) -> dict[str, Any] | None:
        return self.find_one({"symbol": normalize_symbol(symbol)})

    def insert_one(self, document: Mapping[str, Any]) -> dict[str, Any]:
        doc = dict(document)
        if "symbol" in doc:
            doc["symbol"] = normalize_symbol(doc["symbol"])
        return super().insert_one(doc)

    def search(self, query: str, *, limit: int = 10, type: str | None = None) -> list[dict[str, Any]]:
        """Symbols whose ticker starts with `query` or whose name contains it (case-insensitive).

        Ranked: exact ticker, then ticker prefix (shorter first), then name matches.
        """
        text = str(query).strip()
        if not text:
            return []
        limit = max(1, min(int(limit), 100))
        base: dict[str, Any] = {"type": type} if type else {}
        prefix = {**base, "symbol": {"$regex": "^" + re.escape(text.upper())}}
        by_symbol = list(self._collection.find(prefix).sort([("symbol", 1)]).limit(limit * 3))
        seen = {d["_id"] for d in by_symbol}
        by_name = [d for d in self._collection.find(
            {**base, "name": {"$regex": re.escape(text), "$options": "i"}}).sort([("symbol", 1)]).limit(limit * 3)
            if d["_id"] not in seen]
        upper = text.upper()
        by_symbol.sort(key=lambda d: (d["symbol"] != upper, len(d["symbol"]), d["symbol"]))
        by_name.sort(key=lambda d: (not str(d.get("name", "")).lower().startswith(text.lower()), d["symbol"]))
        return [self._normalize(d) for d in (by_symbol + by_name)[:limit]]  # type: ignore[misc]

    def bulk_upsert(self, documents: Iterable[Mapping[str, Any]], *, chunk_size: int = 500) -> dict[str, int]:
        """Insert new symbols and update existing ones (by `symbol`) in bulk. Returns counts."""
        now = self._now()
        rows = []
        for d in documents:
            fields = {k: v for k, v in d.items() if k not in ("_id", "id", "created_at", "updated_at", "version")}
            fields["symbol"] = normalize_symbol(fields["symbol"])
            rows.append(fields)
        return bulk_upsert(self._collection, {}, "symbol", rows, now=now, chunk_size=chunk_size, system_fields=True)


class MongoMarketDataRepository(MongoGenericRepository):
    """Daily (or other interval) bars keyed by (symbol, interval, ts); writes are idempotent upserts."""

    collection_name = "market_data"
    default_sort = (("ts", 1),)
    string_ids = True

    @staticmethod
    def bar_id(symbol: str, interval: str, ts: datetime) -> str:
        """Deterministic `_id` for a bar: `SYMBOL|interval|ISO-ts`; this is what makes (symbol, interval, ts) unique.

        Why not a unique compound index: the embedded store checks unique indexes over
        date values by scanning the collection (O(n) per insert: 17 s for 1,000 bars),
        while `_id` uniqueness is a key lookup on every backend.
        """
        return f"{normalize_symbol(symbol)}|{interval}|{iso_utc(bson_datetime(ts))}"

    def bulk_upsert_bars(self, symbol: str, interval: str, bars: Iterable[Mapping[str, Any]], *,
                         chunk_size: int = 1000) -> dict[str, int]:
        """Each bar needs `ts` (datetime) and `close`; an existing bar at the same ts is updated field-wise."""
        sym = normalize_symbol(symbol)
        rows = []
        for bar in bars:
            fields = {k: v for k, v in bar.items() if k not in ("_id", "id", "symbol", "interval")}
            fields["ts"] = bson_datetime(fields["ts"])
            rows.append({"_id": self.bar_id(sym, interval, fields["ts"]), "symbol": sym, "interval": interval,
                         **fields})
        def lookup(ids: list[str]) -> dict[str, Any]:
            # A range on the (symbol, interval, ts) index: `_id $in` scans on the embedded store.
            wanted = set(ids)
            times = [r["ts"] for r in rows if r["_id"] in wanted]
            return {"symbol": sym, "interval": interval, "ts": {"$gte": min(times), "$lte": max(times)}}

        return bulk_upsert(self._collection, {}, "_id", rows, now=self._now(), chunk_size=chunk_size,
                           system_fields=False, lookup=lookup)

    def get_bars(self, symbol: str, interval: str = "1d", *, start: datetime | None = None,
                 end: datetime | None = None, limit: int = 5000) -> list[dict[str, Any]]:
        """Bars in ascending time order within [start, end]."""
        query: dict[str, Any] = {"symbol": normalize_symbol(symbol), "interval": interval}
        if start or end:
            query["ts"] = {**({"$gte": start} if start else {}), **({"$lte": end} if end else {})}
        cursor = self._collection.find(query, {"_id": 0}).sort([("ts", 1)]).limit(max(1, int(limit)))
        return [normalize_document(d) for d in cursor]  # type: ignore[misc]

    def latest_bar(self, symbol: str, interval: str = "1d") -> dict[str, Any] | None:
        doc = self._collection.find_one({"symbol": normalize_symbol(symbol), "interval": interval},
                                        {"_id": 0}, sort=[("ts", -1)])
        return normalize_document(doc)


class MongoMarketSnapshotRepository(MongoGenericRepository):
    """Short-lived snapshots by key; expired ones are never returned (TTL index removes them later)."""

    collection_name = "market_snapshots"

    def save(self, key: str, data: Mapping[str, Any], *, ttl_s: int, symbol: str | None = None) -> dict[str, Any]:
        from pymongo import ReturnDocument

        now = self._now()
        doc = self._collection.find_one_and_update(
            {"key": key},
            {"$set": {"data": dict(data), "symbol": normalize_symbol(symbol) if symbol else None,
                      "expires_at": now + timedelta(seconds=max(1, int(ttl_s))), "updated_at": now},
             "$setOnInsert": {"created_at": now}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        return self._normalize(doc)  # type: ignore[return-value]

    def load(self, key: str) -> dict[str, Any] | None:
        return self._normalize(self._collection.find_one({"key": key, "expires_at": {"$gt": self._now()}}))


def require(doc: dict[str, Any] | None, what: str = "Document") -> dict[str, Any]:
    """`doc` or NotFound: a helper for services turning an optional lookup into a 404."""
    if doc is None:
        raise NotFound(f"{what} not found")
    return doc


__all__: Sequence[str] = [
    "MongoApiKeyRepository", "MongoChatMessageRepository", "MongoChatRepository", "MongoInvestmentIdeaRepository", "MongoMarketDataRepository",
    "MongoMarketSnapshotRepository", "MongoNoteRepository", "MongoPortfolioRepository", "MongoPositionRepository",
    "MongoSymbolRepository", "MongoUserPreferencesRepository", "MongoUserProfileRepository", "MongoUserRepository",
    "MongoWatchlistRepository", "MongoWorkspaceRepository", "name_key", "normalize_symbol", "normalize_tags", "require",
]
