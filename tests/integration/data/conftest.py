"""Embedded store (mongoeco SQLite over the wire) started once per session on a temp dir, used through pymongo."""

from __future__ import annotations

import pytest

from shared.config.models import Settings
from shared.data.client import create_client
from shared.data.embedded import EmbeddedMongoServer
from shared.data.migrations import run_migrations

APP_COLLECTIONS = ("users", "workspaces", "watchlists", "notes", "chats", "positions", "market_data",
                   "market_snapshots", "api_keys", "user_preferences")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    server = EmbeddedMongoServer(tmp_path_factory.mktemp("embedded"))
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def client(embedded_server, settings):
    c = create_client(embedded_server.uri, settings, retryWrites=False)
    yield c
    c.close()


@pytest.fixture(scope="session")
def migrated(client, settings):
    """(db, summary of the first migration run) on a database nobody else touches first."""
    db = client["it_migrated"]
    return db, run_migrations(db, settings)


@pytest.fixture
def db(migrated):
    db, _ = migrated
    for name in APP_COLLECTIONS:
        db[name].delete_many({})
    return db
