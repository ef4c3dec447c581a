"""Repositories over mongomock and `build_*_service()` helpers for the user-data services."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def db():
    import mongomock

    from shared.data.schema import COLLECTIONS, SchemaManager

    db = mongomock.MongoClient().db
    # The unique indexes (name per owner, one profile per owner, ...) are part of the contract.
    manager = SchemaManager(db)
    for spec in COLLECTIONS:
        manager.ensure_indexes(spec)
    return db


@pytest.fixture
def repos(db):
    from shared.data.factory import RepositoryFactory

    return RepositoryFactory(db)
