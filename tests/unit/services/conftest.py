"""Repositories over mongomock and `build_*_service()` helpers for the user-data services."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def db():
    import mongomock

    return mongomock.MongoClient().db


@pytest.fixture
def repos(db):
    from shared.data.factory import RepositoryFactory

    return RepositoryFactory(db)
