"""Translate pymongo errors into shared.errors classes (the adapter boundary).

Every public repository method runs inside `mongo_errors()`, so services see
only `DatabaseUnavailable` (503), `Conflict` (409) or `ValidationFailed` (422),
never a pymongo exception. Messages never include connection strings.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from shared.errors import Conflict, DatabaseUnavailable, ValidationFailed

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


@contextmanager
def mongo_errors(collection: str | None = None) -> Iterator[None]:
    """Run a block and re-raise any pymongo error as its shared.errors equivalent."""
    from pymongo.errors import PyMongoError

    try:
        yield
    except PyMongoError as exc:
        mapped = translate(exc, collection)
        if mapped is exc:
            raise
        if isinstance(mapped, DatabaseUnavailable):
            # Type name only: pymongo messages can include the host list.
            logger.warning("database unavailable (%s) on %s", type(exc).__name__, collection or "database")
        raise mapped from exc


def translated(func: F) -> F:
    """Decorator form of `mongo_errors`, naming the collection from `self.collection_name` when present."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        collection = getattr(args[0], "collection_name", None) if args else None
        with mongo_errors(collection if isinstance(collection, str) else None):
            return func(*args, **kwargs)

    wrapper.__mongo_translated__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
