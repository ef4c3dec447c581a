"""Fixtures for user-data API tests: fresh users per test and a switchable fake market."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from userdata_helpers import FakeMarket  # noqa: E402


@pytest.fixture
def use_market(core, monkeypatch):
    """Route the user-data services' market calls to a FakeMarket for this test only."""

    def install(market: FakeMarket) -> FakeMarket:
        monkeypatch.setattr(core.services.market_access, "_resolve", lambda: market)
        return market

    return install


@pytest.fixture
def alice(make_user):
    return make_user()


@pytest.fixture
def bob(make_user):
    return make_user()
