from shared.data.migrations import MIGRATIONS, load_seed_symbols
from shared.data.schema import KNOWN_COLLECTIONS, SPECS

CONVENTION_COLLECTIONS = {
    "users", "user_profiles", "user_preferences", "accounts", "sessions", "groups", "workspaces", "watchlists",
    "portfolios", "positions", "market_data", "symbols", "market_snapshots", "technical_indicators",
    "fundamental_analysis", "analyses", "reports", "investment_reports", "investment_ideas", "investment_styles",
    "strategies", "rules_policies", "trades", "chats", "notes", "tasks", "notifications", "news_events",
}
STANDARD_KEYWORDS = {
    "bsonType", "required", "properties", "enum", "minLength", "maxLength", "pattern", "minimum", "maximum",
    "items", "additionalProperties", "description", "minItems", "maxItems",
}


def _keywords(schema, found):
    for key, value in schema.items():
        found.add(key)
        if key == "properties":
            for sub in value.values():
                _keywords(sub, found)
        elif key == "items" and isinstance(value, dict):
            _keywords(value, found)
    return found


def test_every_convention_collection_plus_infrastructure_is_known():
    assert CONVENTION_COLLECTIONS | {"api_keys", "chat_messages", "schema_migrations", "job_receipts",
                                     "poison_messages"} == set(KNOWN_COLLECTIONS)


def test_validators_use_only_standard_json_schema_keywords():
    for spec in SPECS.values():
        if spec.validator is None:
            continue
        assert set(spec.validator) == {"$jsonSchema"}
        assert _keywords(spec.validator["$jsonSchema"], set()) <= STANDARD_KEYWORDS, spec.name


def test_required_unique_and_ttl_indexes_exist():
    def unique(name):
        return {tuple(k for k, _ in i.keys) for i in SPECS[name].indexes if i.unique}

    assert ("email",) in unique("users")
    assert ("key_hash",) in unique("api_keys")
    assert ("owner_id", "name_key") in unique("workspaces")
    assert ("owner_id", "name_key") in unique("watchlists")
    assert ("symbol",) in unique("symbols")
    assert any(i.keys == (("symbol", 1), ("interval", 1), ("ts", 1)) for i in SPECS["market_data"].indexes)
    for ttl in ("sessions", "market_snapshots", "job_receipts"):
        assert any(i.expire_after_seconds == 0 for i in SPECS[ttl].indexes), ttl
    assert any(i.keys == (("owner_id", 1), ("created_at", -1)) for i in SPECS["notes"].indexes)


def test_migrations_are_ordered_and_seed_is_a_real_ticker_list():
    assert [m.version for m in MIGRATIONS] == [1, 2, 3, 4]
    symbols = load_seed_symbols()
    assert len(symbols) >= 150
    tickers = {s["symbol"] for s in symbols}
    assert len(tickers) == len(symbols)
    assert {"AAPL", "MSFT", "SPY", "QQQ", "^GSPC"} <= tickers
    assert {s["type"] for s in symbols} == {"equity", "etf", "index"}
    assert all(set(s) == {"symbol", "name", "exchange", "type", "currency"} for s in symbols)
