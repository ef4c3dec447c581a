"""Fixtures for data-layer unit tests: mongomock databases and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import mongomock
import pytest


class StepClock:
    """Deterministic clock: each call advances one millisecond."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def db():
    client = mongomock.MongoClient(tz_aware=True)
    yield client["stockagent_test"]
    client.close()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()
