"""Skip a test whose server binary is missing, unless the environment says it must be there (CI)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(message: str, *, required_by: str) -> NoReturn:
    """pytest.skip with `message`, or pytest.fail when the environment variable `required_by` is set."""
    if os.environ.get(required_by):
        pytest.fail(f"{message}; {required_by} is set, so this is an error", pytrace=False)
    pytest.skip(message)
