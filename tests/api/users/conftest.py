"""Fixtures for the users API tests."""

import pytest


@pytest.fixture
def user(make_user):
    return make_user()
