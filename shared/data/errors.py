"""Translate pymongo errors into shared.errors classes (the adapter boundary), behind the database breaker.

Every public repository method runs inside `mongo_errors()`, so services see
only `DatabaseUnavailable` (503), `Conflict` (409) or `ValidationFailed` (422),
never a pymongo exception. Messages never include connection strings.

With a breaker (`shared.resilience.CircuitBreaker`, one per database, built by `RepositoryFactory`),
consecutive timeouts and connection failures open it; while it is open a call raises
`DatabaseUnavailable` (with the breaker's Retry-After) before it reaches pymongo, so a dead database
costs a request milliseconds instead of the server-selection timeout. After the cool-down one call
probes; its success closes the breaker.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from shared.errors import Conflict, DatabaseUnavailable, ValidationFailed

if TYPE_CHECKING:
    from shared.config.models import Settings
    from shared.resilience import BreakerPolicy, CircuitBreaker

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

DUPLICATE_KEY_CODES = frozenset({11000, 11001, 12582})
VALIDATION_CODE = 121
RETRY_AFTER_S = 5


def _validation_errors(err_info: Any) -> dict[str, list[str]] | None:
    """Best-effort field errors from a `Document failed validation` errInfo (no values echoed)."""
    if not isinstance(err_info, dict):
        return None
    errors: dict[str, list[str]] = {}
    details = err_info.get("details") or {}
    for rule in details.get("schemaRulesNotSatisfied") or []:
        for missing in rule.get("missingProperties") or []:
            errors.setdefault(str(missing), []).append("Field required")
        for prop in rule.get("propertiesNotSatisfied") or []:
            name = str(prop.get("propertyName", "document"))
            errors.setdefault(name, []).append("Invalid value")
    return errors or None


def _duplicate(detail_source: Any, collection: str | None) -> Conflict:
    fields: list[str] = []
    if isinstance(detail_source, dict):
        fields = list((detail_source.get("keyPattern") or {}).keys())
    what = ", ".join(fields) if fields else "unique key"
    where = f" in {collection}" if collection else ""
    return Conflict(f"A record with the same {what} already exists{where}")


def translate(exc: BaseException, collection: str | None = None) -> BaseException:
    """Map one pymongo exception to our error class; unknown errors are returned unchanged."""
    from pymongo import errors as pe

    if isinstance(exc, pe.DuplicateKeyError):
        return _duplicate(exc.details, collection)
    if isinstance(exc, pe.BulkWriteError):
        write_errors = (exc.details or {}).get("writeErrors") or []
        codes = {e.get("code") for e in write_errors}
        if codes & DUPLICATE_KEY_CODES:
            first = next(e for e in write_errors if e.get("code") in DUPLICATE_KEY_CODES)
            return _duplicate(first, collection)
        if VALIDATION_CODE in codes:
            first = next(e for e in write_errors if e.get("code") == VALIDATION_CODE)
            return ValidationFailed("Document failed validation", errors=_validation_errors(first.get("errInfo")))
        return exc
    # WriteError (insert/update) and plain OperationFailure (findAndModify) carry the same codes.
    if isinstance(exc, pe.OperationFailure):
        if exc.code in DUPLICATE_KEY_CODES:
            return _duplicate(exc.details, collection)
        if exc.code == VALIDATION_CODE:
            info = (exc.details or {}).get("errInfo")
            return ValidationFailed("Document failed validation", errors=_validation_errors(info))
        if not isinstance(exc, pe.ExecutionTimeout):
            return exc
    # ServerSelectionTimeoutError, NetworkTimeout, WaitQueueTimeoutError and AutoReconnect
    # are all ConnectionFailure subclasses; ExecutionTimeout is maxTimeMS/CSOT expiry.
    if isinstance(exc, (pe.ConnectionFailure, pe.ExecutionTimeout)) or (
        isinstance(exc, pe.PyMongoError) and getattr(exc, "timeout", False)
    ):
        return DatabaseUnavailable("The database is not reachable right now", retry_after=RETRY_AFTER_S)
    return exc


def database_breaker_policy(settings: Settings | None) -> BreakerPolicy:
    """The database breaker's policy from `mongodb.breaker_*` (defaults without settings)."""
    from shared.config.models import MongoSettings
    from shared.resilience import BreakerPolicy

    m = settings.mongodb if settings is not None else MongoSettings()
    # A database does not rate-limit us; a probe is one request, the rest keep failing fast meanwhile.
    return BreakerPolicy(failure_threshold=m.breaker_failure_threshold, cooldown_s=m.breaker_cooldown_s,
                         half_open_max_calls=1, open_on_rate_limit=False)


def breaker_open_error(breaker: CircuitBreaker) -> DatabaseUnavailable:
    """The 503 for a call the open breaker refused: Retry-After is the time left of the cool-down."""
    return DatabaseUnavailable("The database is not reachable right now",
                               retry_after=max(1, math.ceil(breaker.retry_in())))


# True while a breaker-guarded call runs in this context: nested repository calls (a subclass method
# calling its base class's) neither take a second breaker slot nor count their failure twice.
_guarded: ContextVar[bool] = ContextVar("mongo_guarded_call", default=False)


@contextmanager
def mongo_errors(collection: str | None = None, *, breaker: CircuitBreaker | None = None) -> Iterator[None]:
    """Run a block and re-raise any pymongo error as its shared.errors equivalent.

    With `breaker`: refused at once (DatabaseUnavailable) while it is open; a timeout or connection
    failure counts against it, an answer from the server (a result, a duplicate key, a validation
    error) closes it.
    """
    from pymongo.errors import OperationFailure, PyMongoError

    if breaker is not None and _guarded.get():
        breaker = None  # the outermost call accounts for the whole block
    if breaker is not None and not breaker.allow():
        raise breaker_open_error(breaker)
    token = _guarded.set(True) if breaker is not None else None
    try:
        yield
    except PyMongoError as exc:
        mapped = translate(exc, collection)
        if breaker is not None:
            if isinstance(mapped, DatabaseUnavailable):
                breaker.record_failure(error=type(exc).__name__)
            elif isinstance(exc, OperationFailure):
                breaker.record_success()  # the server answered
            else:
                breaker.release()  # a client-side error says nothing about the database
        if mapped is exc:
            raise
        if isinstance(mapped, DatabaseUnavailable):
            # Type name only: pymongo messages can include the host list.
            logger.warning("database unavailable (%s) on %s", type(exc).__name__, collection or "database")
        raise mapped from exc
    except BaseException as exc:
        if breaker is not None:
            if isinstance(exc, DatabaseUnavailable):  # translated by an inner block
                breaker.record_failure(error=exc.title)
            else:
                # NotFound & co. may come from code that never reached the server: no verdict.
                breaker.release()
        raise
    else:
        if breaker is not None:
            breaker.record_success()
    finally:
        if token is not None:
            _guarded.reset(token)


def translated(func: F) -> F:
    """Decorator form of `mongo_errors`, naming the collection from `self.collection_name` and guarding
    the call with `self._breaker` when the instance has one."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        owner = args[0] if args else None
        collection = getattr(owner, "collection_name", None)
        breaker = getattr(owner, "_breaker", None)
        with mongo_errors(collection if isinstance(collection, str) else None, breaker=breaker):
            return func(*args, **kwargs)

    wrapper.__mongo_translated__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
