"""A real Azurite queue service on a free loopback port, for integration tests (like redis_server.py).

    from tests.integration.azurite_server import azurite  # noqa: F401  (session fixture)

    def test_x(azurite):
        azurite.connection_string   # AzureWebJobsStorage value for it

Without node or the azurite package (`make tools` installs it into .tools/) the fixture SKIPS,
unless REQUIRE_AZURITE is set (`.ci/run` sets it): then it FAILS, so CI never skips these tests.
Data goes to a temporary directory; only 127.0.0.1 is bound.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from devhost.queues import Azurite, azurite_binary, free_port
from tests.integration.required import missing

__all__ = ["azurite", "require_azurite"]


def require_azurite() -> str:
    """Azurite's queue binary; pytest.skip when missing locally, pytest.fail when REQUIRE_AZURITE is set."""
    binary = azurite_binary()
    if binary is None:
        missing("azurite not found (needs node; `make tools` installs azurite into .tools/)", required_by="REQUIRE_AZURITE")
    return binary


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite for the session; tests keep apart by using queue names of their own."""
    location = Path(tempfile.mkdtemp(prefix="azurite-test-"))
    server = Azurite(require_azurite(), location=location, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(location, ignore_errors=True)
