"""Data layer: MongoDB client (or embedded store), repositories, schema manager, migrations.

Importing this package imports no driver: names resolve lazily on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "build_database": "shared.data.client",
    "describe_backend": "shared.data.client",
    "DatabaseHandle": "shared.data.client",
    "EmbeddedMongoServer": "shared.data.embedded",
    "mongo_errors": "shared.data.errors",
    "MongoGenericRepository": "shared.data.repository",
    "OwnedRepository": "shared.data.repository",
    "RepositoryFactory": "shared.data.factory",
    "SchemaManager": "shared.data.schema",
    "run_migrations": "shared.data.migrations",
    "normalize_document": "shared.data.utils",
    "batched": "shared.data.utils",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
