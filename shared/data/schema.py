"""Collection specs ($jsonSchema validators, indexes) for every collection, and SchemaManager.

Validators use only standard `$jsonSchema` keywords and `validationLevel: moderate`
(existing invalid documents are not re-checked on unrelated updates). They require
only what the repositories always write, so they catch bugs, not new fields.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

ASC, DESC = 1, -1


@dataclass(frozen=True)
class IndexSpec:
    keys: tuple[tuple[str, int], ...]
    name: str
    unique: bool = False
    expire_after_seconds: int | None = None

    def model(self) -> Any:
        from pymongo import IndexModel

        kwargs: dict[str, Any] = {"name": self.name}
        if self.unique:
            kwargs["unique"] = True
        if self.expire_after_seconds is not None:
            kwargs["expireAfterSeconds"] = self.expire_after_seconds
        return IndexModel(list(self.keys), **kwargs)


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    validator: dict[str, Any] | None
    indexes: tuple[IndexSpec, ...] = ()
    timeseries: dict[str, Any] | None = None


# -- validator building blocks --------------------------------------------------------

# Text people name things with. LINE_TEXT (names, titles, tags): no control character (C0, DEL, C1),
# no bidi embedding/override/isolate control, no line or paragraph separator, and at least one
# character that is not a space or invisible: Unicode spaces, and every Default_Ignorable_Code_Point
# (Unicode's list of what displays as nothing: zero-width characters, bidi marks, BOM, soft hyphen,
# Hangul fillers, variation selectors, invisible operators, tag characters...) plus the blank Braille
# pattern. Invisible characters stay allowed beside visible ones (ZWJ in emoji, ZWNJ in Persian, RLM in
# Hebrew, tags in subdivision flags); text made of nothing else is refused.
# TEXT (chat messages) also allows tab, LF and CR. The API validates with the same patterns, so what
# it accepts the validators accept. Code points up to U+00FF are \xHH escapes and the rest literal
# characters: one spelling that PCRE (MongoDB), Python re (the embedded store), Rust regex (pydantic)
# and ECMAScript in Unicode mode (the OpenAPI document; JSON Schema asks for the "u" flag) read alike.
_CONTROLS = "\\x00-\\x1f\\x7f-\\x9f"
_CONTROLS_BUT_TAB_LF_CR = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_SEPARATORS = "\u2028\u2029"
_INVISIBLE = ("\\x20\\xa0\\xad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f\u2000-\u200f\u202f\u205f-\u206f"
              "\u2800\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
              "\U000e0000-\U000e0fff")
_LINE_BAD = _CONTROLS + _BIDI_CONTROLS + _SEPARATORS
_TEXT_BAD = _CONTROLS_BUT_TAB_LF_CR + _BIDI_CONTROLS
LINE_TEXT = f"^[^{_LINE_BAD}]*[^{_LINE_BAD}{_INVISIBLE}][^{_LINE_BAD}]*$"
TEXT = f"^[^{_TEXT_BAD}]*[^{_TEXT_BAD}{_INVISIBLE}\\x09\\x0a\\x0d{_SEPARATORS}][^{_TEXT_BAD}]*$"

STR = {"bsonType": "string"}
NSTR = {"bsonType": ["string", "null"]}
DATE = {"bsonType": "date"}
NDATE = {"bsonType": ["date", "null"]}
INT = {"bsonType": ["int", "long"]}
NUM = {"bsonType": ["int", "long", "double", "decimal"]}
NNUM = {"bsonType": ["int", "long", "double", "decimal", "null"]}
BOOL = {"bsonType": "bool"}
OBJ = {"bsonType": "object"}
STR_LIST = {"bsonType": "array", "items": {"bsonType": "string"}}
NAME = {"bsonType": "string", "minLength": 1, "maxLength": 200, "pattern": LINE_TEXT}
NLINE = {"bsonType": ["string", "null"], "pattern": LINE_TEXT}
TAGS = {"bsonType": "array", "items": {"bsonType": "string", "pattern": LINE_TEXT}}
SYMBOL = {"bsonType": "string", "minLength": 1, "maxLength": 32}
CHAT_MESSAGE = {"bsonType": "object", "required": ["role", "content"],
                "properties": {"role": {"enum": ["system", "user", "assistant", "tool"]}, "content": STR}}

SYSTEM_PROPS = {"created_at": DATE, "updated_at": DATE, "version": {"bsonType": ["int", "long"], "minimum": 1}}
SYSTEM_REQUIRED = ["created_at", "updated_at", "version"]


def schema(
    properties: dict[str, Any] | None = None,
    required: list[str] | None = None,
    *,
    owned: bool = False,
    system: bool = True,
) -> dict[str, Any]:
    """A `{"$jsonSchema": ...}` validator; `owned` adds a required string `owner_id`."""
    props: dict[str, Any] = {}
    req: list[str] = []
    if system:
        props.update(SYSTEM_PROPS)
        req += SYSTEM_REQUIRED
    if owned:
        props["owner_id"] = {"bsonType": "string", "minLength": 1}
        req.append("owner_id")
    props.update(properties or {})
    req += [r for r in (required or []) if r not in req]
    body: dict[str, Any] = {"bsonType": "object", "properties": props}
    if req:
        body["required"] = req
    return {"$jsonSchema": body}


def by_owner(name: str, *extra: IndexSpec) -> tuple[IndexSpec, ...]:
    """The compound index every owned listing uses: newest first per owner."""
    return (IndexSpec((("owner_id", ASC), ("created_at", DESC)), f"{name}_owner_created"), *extra)


def _owned(name: str, properties: dict[str, Any] | None = None, required: list[str] | None = None,
           *indexes: IndexSpec) -> CollectionSpec:
    return CollectionSpec(name, schema(properties, required, owned=True), by_owner(name, *indexes))


COLLECTIONS: tuple[CollectionSpec, ...] = (
    # User & auth
    CollectionSpec(
        "users",
        schema({"email": {"bsonType": "string", "minLength": 3, "maxLength": 320, "pattern": "^[^@\\s]+@[^@\\s]+$"},
                "display_name": NLINE, "roles": STR_LIST, "status": STR}, ["email"]),
        (IndexSpec((("email", ASC),), "users_email_unique", unique=True),
         IndexSpec((("created_at", DESC),), "users_created")),
    ),
    _owned("api_keys", {"key_hash": {"bsonType": "string", "minLength": 16}, "prefix": {"bsonType": "string", "minLength": 1},
                        "name": NLINE, "scopes": STR_LIST, "revoked_at": NDATE, "last_used_at": NDATE, "expires_at": NDATE},
           ["key_hash", "prefix"],
           IndexSpec((("key_hash", ASC),), "api_keys_hash_unique", unique=True),
           IndexSpec((("prefix", ASC),), "api_keys_prefix")),
    _owned("user_profiles", {"display_name": NLINE, "bio": NSTR, "avatar_url": NSTR}, None,
           IndexSpec((("owner_id", ASC),), "user_profiles_owner_unique", unique=True)),
    _owned("user_preferences", {"preferences": OBJ}, None,
           IndexSpec((("owner_id", ASC),), "user_preferences_owner_unique", unique=True)),
    _owned("accounts", {"provider": STR, "provider_account_id": STR}, ["provider"],
           IndexSpec((("provider", ASC), ("provider_account_id", ASC)), "accounts_provider")),
    CollectionSpec(
        "sessions", schema({"owner_id": STR, "expires_at": DATE}, ["owner_id", "expires_at"]),
        (IndexSpec((("expires_at", ASC),), "sessions_ttl", expire_after_seconds=0),
         IndexSpec((("owner_id", ASC),), "sessions_owner")),
    ),
    _owned("groups", {"name": NAME, "members": STR_LIST}, ["name"]),
    # Workspaces & organization
    _owned("workspaces", {"name": NAME, "name_key": NAME, "description": NSTR}, ["name", "name_key"],
           IndexSpec((("owner_id", ASC), ("name_key", ASC)), "workspaces_owner_name_unique", unique=True)),
    _owned("watchlists", {"name": NAME, "name_key": NAME, "symbols": STR_LIST, "workspace_id": NSTR},
           ["name", "name_key", "symbols"],
           IndexSpec((("owner_id", ASC), ("name_key", ASC)), "watchlists_owner_name_unique", unique=True)),
    _owned("portfolios", {"name": NAME, "currency": {"bsonType": "string", "minLength": 3, "maxLength": 3},
                          "description": NSTR}, ["name"]),
    _owned("positions", {"portfolio_id": STR, "symbol": SYMBOL, "quantity": NUM, "cost_basis": NNUM},
           ["portfolio_id", "symbol", "quantity"],
           IndexSpec((("owner_id", ASC), ("portfolio_id", ASC), ("symbol", ASC)), "positions_owner_portfolio_symbol")),
    # Market data
    CollectionSpec(
        "market_data",
        schema({"symbol": SYMBOL, "interval": STR, "ts": DATE, "open": NNUM, "high": NNUM, "low": NNUM,
                "close": NUM, "volume": NNUM}, ["symbol", "interval", "ts", "close"], system=False),
        # (symbol, interval, ts) is unique through the deterministic `_id` the repository
        # writes (MongoMarketDataRepository.bar_id): see its docstring for why not a unique index.
        (IndexSpec((("symbol", ASC), ("interval", ASC), ("ts", ASC)), "market_data_symbol_interval_ts"),),
    ),
    CollectionSpec(
        "symbols",
        schema({"symbol": {"bsonType": "string", "minLength": 1, "maxLength": 32, "pattern": "^[A-Z0-9.^=\\-]+$"},
                "name": {"bsonType": "string", "minLength": 1}, "exchange": STR, "type": STR,
                "currency": STR}, ["symbol", "name"]),
        (IndexSpec((("symbol", ASC),), "symbols_symbol_unique", unique=True),
         IndexSpec((("type", ASC), ("symbol", ASC)), "symbols_type")),
    ),
    CollectionSpec(
        "market_snapshots", schema({"key": STR, "symbol": NSTR, "data": OBJ, "expires_at": DATE},
                                   ["key", "data", "expires_at"], system=False),
        (IndexSpec((("expires_at", ASC),), "market_snapshots_ttl", expire_after_seconds=0),
         IndexSpec((("key", ASC),), "market_snapshots_key_unique", unique=True)),
    ),
    CollectionSpec(
        "technical_indicators", schema({"symbol": SYMBOL, "indicator": STR, "interval": NSTR}, ["symbol", "indicator"]),
        (IndexSpec((("symbol", ASC), ("indicator", ASC), ("interval", ASC)), "technical_indicators_lookup"),),
    ),
    # Analysis & reports
    CollectionSpec(
        "fundamental_analysis", schema({"symbol": SYMBOL, "owner_id": NSTR}, ["symbol"]),
        (IndexSpec((("symbol", ASC), ("created_at", DESC)), "fundamental_analysis_symbol_created"),),
    ),
    _owned("analyses", {"symbol": NSTR, "kind": NSTR}),
    _owned("reports", {"title": NSTR, "symbol": NSTR}),
    _owned("investment_reports", {"title": NSTR, "symbols": STR_LIST}),
    # Investment management
    _owned("investment_ideas", {"title": NAME, "symbol": NSTR, "thesis": NSTR, "tags": TAGS, "status": NSTR},
           ["title"], IndexSpec((("owner_id", ASC), ("symbol", ASC)), "investment_ideas_owner_symbol")),
    _owned("investment_styles", {"name": NAME}, ["name"]),
    _owned("strategies", {"name": NAME}, ["name"]),
    _owned("rules_policies", {"name": NAME}, ["name"]),
    _owned("trades", {"symbol": SYMBOL, "side": {"enum": ["buy", "sell"]}, "quantity": NUM, "price": NNUM,
                      "executed_at": NDATE}, ["symbol", "side", "quantity"],
           IndexSpec((("owner_id", ASC), ("symbol", ASC), ("executed_at", DESC)), "trades_owner_symbol_executed")),
    # Collaboration
    # A conversation's record; its messages are in chat_messages (`messages` is the old embedded storage,
    # moved out by migration 3 or on first touch).
    _owned("chats", {"title": NSTR, "message_count": {"bsonType": ["int", "long"], "minimum": 0},
                     "messages": {"bsonType": "array", "items": CHAT_MESSAGE}},
           None, IndexSpec((("owner_id", ASC), ("updated_at", DESC)), "chats_owner_updated")),
    # One document per message, `_id` "<chat_id>:<seq>" (MongoChatMessageRepository): reads are ranges of one chat.
    CollectionSpec(
        "chat_messages",
        schema({**CHAT_MESSAGE["properties"], "owner_id": {"bsonType": "string", "minLength": 1},
                "chat_id": {"bsonType": "string", "minLength": 1}, "seq": {"bsonType": ["int", "long"], "minimum": 1}},
               ["owner_id", "chat_id", "seq", *CHAT_MESSAGE["required"]], system=False),
        (IndexSpec((("chat_id", ASC), ("seq", ASC)), "chat_messages_chat_seq"),),
    ),
    _owned("notes", {"title": NLINE, "content": NSTR, "tags": TAGS, "symbol": NSTR}, None,
           IndexSpec((("owner_id", ASC), ("tags", ASC)), "notes_owner_tags"),
           IndexSpec((("owner_id", ASC), ("symbol", ASC)), "notes_owner_symbol")),
    _owned("tasks", {"title": NAME, "status": NSTR, "due_at": NDATE}, ["title"]),
    _owned("notifications", {"message": STR, "kind": NSTR, "read": BOOL}, ["message"],
           IndexSpec((("owner_id", ASC), ("read", ASC), ("created_at", DESC)), "notifications_owner_unread")),
    CollectionSpec(
        "news_events", schema({"symbol": NSTR, "title": STR, "url": NSTR, "published_at": NDATE}, ["title"]),
        (IndexSpec((("symbol", ASC), ("published_at", DESC)), "news_events_symbol_published"),),
    ),
    # Infrastructure
    CollectionSpec("schema_migrations", None),
    # Background jobs (shared/data/jobs.py): idempotency receipts and poison messages
    CollectionSpec(
        "job_receipts", schema({"queue": STR, "job_id": STR, "status": {"enum": ["running", "done"]},
                                "lease_until": DATE, "expires_at": DATE}, ["queue", "status", "expires_at"], system=False),
        (IndexSpec((("expires_at", ASC),), "job_receipts_ttl", expire_after_seconds=0),),
    ),
    CollectionSpec(
        "poison_messages", schema({"queue": STR, "message_id": STR, "body": STR, "recorded_at": DATE,
                                   "job_id": NSTR, "request_id": NSTR}, ["queue", "message_id", "body", "recorded_at"],
                                  system=False),
        (IndexSpec((("recorded_at", DESC),), "poison_messages_recorded"),
         IndexSpec((("queue", ASC), ("recorded_at", DESC)), "poison_messages_queue_recorded")),
    ),
)

JOB_COLLECTIONS = ("job_receipts", "poison_messages")

SPECS: dict[str, CollectionSpec] = {c.name: c for c in COLLECTIONS}
KNOWN_COLLECTIONS: tuple[str, ...] = tuple(SPECS)

MARKET_DATA_TIMESERIES = {"timeField": "ts", "metaField": "symbol", "granularity": "hours"}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _is_unsupported(exc: Exception) -> bool:
    code = getattr(exc, "code", None)
    text = str(exc).lower()
    return code in (59, 115) or "unsupported" in text or "not supported" in text or "no such command" in text


class SchemaManager:
    """Creates collections with validators and indexes; idempotent (a second run changes nothing).

    `market_data` is a regular collection by default: its bars are keyed by a
    deterministic `_id` (symbol|interval|ts) so the bulk upsert is idempotent, and
    time-series collections neither allow updating bars in place on older servers nor
    unique keys. Pass `use_timeseries=True` to opt in on a server that supports them.
    """

    def __init__(self, db: Database, *, specs: tuple[CollectionSpec, ...] = COLLECTIONS,
                 use_timeseries: bool = False, logger: logging.Logger | None = None) -> None:
        self._db = db
        self._specs = specs
        self._use_timeseries = use_timeseries
        self.logger = logger or logging.getLogger(f"{__name__}.SchemaManager")

    def discover_collections(self) -> tuple[dict[str, dict[str, Any]], bool]:
        """({name: info}, fallback_used). Follows the conventions' listCollections-with-fallback pattern."""
        from pymongo.errors import OperationFailure

        try:
            result = self._db.command("listCollections")
            batch = result["cursor"]["firstBatch"]
            return {c["name"]: c for c in batch}, False
        except OperationFailure:
            # Unauthorized (code 13) and friends: restricted users may not list collections.
            self.logger.warning("Unauthorized to list collections; assuming known collections exist")
            return {name: {"name": name, "options": {}} for name in KNOWN_COLLECTIONS}, True

    def _spec_options(self, spec: CollectionSpec) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if spec.validator is not None:
            opts.update(validator=spec.validator, validationLevel="moderate", validationAction="error")
        if spec.name == "market_data" and self._use_timeseries:
            opts["timeseries"] = MARKET_DATA_TIMESERIES
        return opts

    def plan(self) -> dict[str, Any]:
        """What `setup_all_collections()` would do, without changing anything."""
        existing, fallback = self.discover_collections()
        missing = [s.name for s in self._specs if s.name not in existing]
        stale = [s.name for s in self._specs if s.name in existing and s.validator is not None and not fallback
                 and _canonical(existing[s.name].get("options", {}).get("validator")) != _canonical(s.validator)]
        missing_indexes: list[str] = []
        for spec in self._specs:
            have = set() if spec.name not in existing else set(self._index_names(spec.name))
            missing_indexes += [f"{spec.name}.{i.name}" for i in spec.indexes if i.name not in have]
        return {"create_collections": missing, "update_validators": stale, "create_indexes": missing_indexes,
                "discovery_fallback": fallback}

    def _index_names(self, name: str) -> list[str]:
        return [ix["name"] for ix in self._db[name].list_indexes()]

    def ensure_collection(self, spec: CollectionSpec, info: dict[str, Any] | None, fallback: bool) -> str:
        """Create `spec` or bring its validator up to date; returns what was done."""
        from pymongo.errors import CollectionInvalid, OperationFailure

        options = self._spec_options(spec)
        if info is None:
            try:
                self._db.create_collection(spec.name, **options)
                return "created"
            except CollectionInvalid:
                return "exists"  # created concurrently by another process
            except OperationFailure as exc:
                if exc.code == 48:  # NamespaceExists
                    return "exists"
                raise
        if spec.validator is None:
            return "unchanged"
        current = (info.get("options") or {}).get("validator")
        if not fallback and _canonical(current) == _canonical(spec.validator):
            return "unchanged"
        try:
            self._db.command("collMod", spec.name, validator=spec.validator,
                             validationLevel="moderate", validationAction="error")
            return "validator_updated"
        except OperationFailure as exc:
            if not _is_unsupported(exc) and exc.code != 13:
                raise
        # collMod unsupported (e.g. the embedded store) or not allowed: recreate only when empty.
        if not fallback and self._db[spec.name].count_documents({}, limit=1) == 0:
            self._db.drop_collection(spec.name)
            self._db.create_collection(spec.name, **options)
            return "recreated"
        self.logger.warning("cannot update validator of %s (collMod unavailable); keeping the existing one", spec.name)
        return "validator_skipped"

    def ensure_indexes(self, spec: CollectionSpec) -> list[str]:
        """Create the missing indexes of `spec`; returns their names. An existing index is never dropped."""
        from pymongo.errors import OperationFailure

        if not spec.indexes:
            return []
        have = set(self._index_names(spec.name))
        created = []
        for index in spec.indexes:
            if index.name in have:
                continue
            try:
                self._db[spec.name].create_indexes([index.model()])
                created.append(index.name)
            except OperationFailure as exc:
                if exc.code in (85, 86):  # same keys under another name/options: leave it
                    self.logger.warning("index %s.%s conflicts with an existing index; skipped", spec.name, index.name)
                    continue
                raise
        return created

    def setup_all_collections(self) -> dict[str, Any]:
        """Ensure every collection, validator and index. Returns a summary of changes."""
        existing, fallback = self.discover_collections()
        summary: dict[str, Any] = {"created": [], "validator_updated": [], "recreated": [],
                                   "validator_skipped": [], "indexes_created": [], "discovery_fallback": fallback}
        for spec in self._specs:
            action = self.ensure_collection(spec, existing.get(spec.name), fallback)
            if action in summary:
                summary[action].append(spec.name)
            summary["indexes_created"] += [f"{spec.name}.{n}" for n in self.ensure_indexes(spec)]
        summary["changed"] = bool(summary["created"] or summary["validator_updated"] or summary["recreated"]
                                  or summary["indexes_created"])
        return summary
