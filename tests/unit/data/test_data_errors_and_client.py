import pytest
from pydantic import SecretStr
from pymongo import errors as pe

from shared.config.models import Settings
from shared.data.client import client_options, describe_backend, describe_uri, merge_password
from shared.data.errors import mongo_errors, translate
from shared.errors import ConfigError, Conflict, DatabaseUnavailable, ValidationFailed


@pytest.mark.parametrize(
    "exc",
    [
        pe.ServerSelectionTimeoutError("no servers"),
        pe.AutoReconnect("reconnect"),
        pe.NetworkTimeout("timed out"),
        pe.ConnectionFailure("refused"),
        pe.ExecutionTimeout("maxTimeMS", code=50),
    ],
)
def test_unreachable_and_timeouts_become_database_unavailable_with_retry_after(exc):
    with pytest.raises(DatabaseUnavailable) as info:
        with mongo_errors("users"):
            raise exc
    assert info.value.status == 503
    assert info.value.headers["Retry-After"] == "5"
    assert "no servers" not in info.value.detail


def test_duplicate_key_becomes_conflict_naming_fields_not_values():
    exc = pe.DuplicateKeyError("E11000", 11000, {"keyPattern": {"email": 1}, "keyValue": {"email": "a@b.c"}})
    mapped = translate(exc, "users")
    assert isinstance(mapped, Conflict) and mapped.status == 409
    assert "email" in mapped.detail and "a@b.c" not in mapped.detail


def test_validation_write_error_becomes_422_with_field_errors():
    details = {"code": 121, "errInfo": {"details": {"schemaRulesNotSatisfied": [
        {"operatorName": "required", "missingProperties": ["email"]}]}}}
    mapped = translate(pe.WriteError("Document failed validation", 121, details))
    assert isinstance(mapped, ValidationFailed) and mapped.status == 422
    assert mapped.errors == {"email": ["Field required"]}


def test_bulk_write_error_duplicate_becomes_conflict():
    exc = pe.BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "keyPattern": {"symbol": 1}}]})
    assert isinstance(translate(exc, "symbols"), Conflict)


def test_other_operation_failures_pass_through_unchanged():
    exc = pe.OperationFailure("bad", code=2)
    with pytest.raises(pe.OperationFailure):
        with mongo_errors():
            raise exc


def test_merge_password_encodes_and_replaces():
    uri = "mongodb://alice@db.example.net:27017/stock?authSource=admin"
    assert merge_password(uri, "p@ss:w/rd") == "mongodb://alice:p%40ss%3Aw%2Frd@db.example.net:27017/stock?authSource=admin"
    assert merge_password("mongodb+srv://bob:old@c.example.net/", "new") == "mongodb+srv://bob:new@c.example.net/"
    assert merge_password(uri, None) == uri
    with pytest.raises(ConfigError):
        merge_password("mongodb://h:1/", "secret")


def test_describe_never_shows_credentials_or_options():
    assert describe_uri("mongodb://u:secret@h1:27017,h2:27018/prod?tls=true", "x") == "mongodb://h1:27017,h2:27018/prod"
    assert describe_uri("mongodb+srv://u:secret@c.example.net/?retryWrites=true", "stockagent") == \
        "mongodb+srv://c.example.net/stockagent"
    s = Settings.model_validate({"mongodb": {"uri": "mongodb://u:pw@h:1/db", "password": "other"}})
    text = describe_backend(s)
    assert "pw" not in text and "other" not in text and text == "mongodb://h:1/db"
    assert describe_backend(Settings.model_validate({"mongodb": {"local_data_dir": ".data"}})) == "embedded (.data)"


def test_client_options_from_settings():
    s = Settings.model_validate({"mongodb": {"uri": SecretStr("mongodb://h:1"), "retry_writes": False}})
    opts = client_options(s)
    assert opts["serverSelectionTimeoutMS"] == 1500 and opts["timeoutMS"] == 1500  # a dead database is a 503 within 2.5 s
    assert opts["retryWrites"] is False and opts["appname"] == "stockagent-api" and opts["tz_aware"] is True


class _DeadCollection:
    """A collection whose server never answers: every operation times out (counted)."""

    def __init__(self, inner):
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def dead(*args, **kwargs):
            self.calls += 1
            raise pe.ServerSelectionTimeoutError("127.0.0.1:1: connection refused")

        return dead


def test_breaker_counts_a_nested_repository_call_once_and_then_refuses_without_calling(db):
    from shared.data.repositories import MongoWorkspaceRepository
    from shared.resilience import BreakerPolicy, CircuitBreaker

    now = [0.0]
    breaker = CircuitBreaker("database", BreakerPolicy(failure_threshold=2, cooldown_s=5), clock=lambda: now[0])
    repo = MongoWorkspaceRepository(db, breaker=breaker)
    dead = repo._collection = _DeadCollection(repo._collection)
    with pytest.raises(DatabaseUnavailable):
        repo.insert_one("u1", {"name": "W"})  # _NamedOwnedRepository.insert_one -> OwnedRepository.insert_one
    assert breaker.snapshot()["consecutive_failures"] == 1 and breaker.state == "closed"
    with pytest.raises(DatabaseUnavailable):
        repo.find_many("u1")
    assert breaker.state == "open" and dead.calls == 2
    with pytest.raises(DatabaseUnavailable) as info:
        repo.get("u1", "0" * 24)
    assert dead.calls == 2 and info.value.headers["Retry-After"] == "5"
    now[0] += 5
    repo._collection = dead._inner  # the database is back: the half-open probe succeeds and closes it
    assert repo.find_many("u1") == ([], None)
    assert breaker.state == "closed"


def test_answers_from_the_server_are_not_breaker_failures(db):
    from shared.data.repositories import MongoUserRepository
    from shared.errors import NotFound
    from shared.resilience import BreakerPolicy, CircuitBreaker

    breaker = CircuitBreaker("database", BreakerPolicy(failure_threshold=1))
    db["users"].create_index("email", unique=True)
    repo = MongoUserRepository(db, breaker=breaker)
    repo.insert_one({"email": "a@b.co"})
    for _ in range(3):
        with pytest.raises(Conflict):
            repo.insert_one({"email": "A@b.co"})  # duplicate key: the server answered
        with pytest.raises(NotFound):
            repo.get("0" * 24)
    assert breaker.state == "closed"
