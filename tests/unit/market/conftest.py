"""Fixtures for the market-data tests; the fakes themselves live in market_fakes.py."""

from __future__ import annotations

import pytest

from tests.unit.market.market_fakes import FakeCache, FakeClock, FakeSingleFlight


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> FakeCache:
    return FakeCache(clock)


@pytest.fixture
def sf() -> FakeSingleFlight:
    return FakeSingleFlight()


