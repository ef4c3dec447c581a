import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # helper modules (ai_fakes, fake_openai) in any import mode

from ai_fakes import FakeMarket, FakeUserData, MemoryBudget, MemoryChatStore  # noqa: E402
from fake_openai import FakeOpenAIServer  # noqa: E402



@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def user_data() -> FakeUserData:
    return FakeUserData()


@pytest.fixture
def store() -> MemoryChatStore:
    return MemoryChatStore()


@pytest.fixture
def budget() -> MemoryBudget:
    return MemoryBudget()


@pytest.fixture
def fake_openai():
    with FakeOpenAIServer() as srv:
        yield srv
