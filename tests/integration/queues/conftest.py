"""Queue tests run twice: against a real Azurite and against the in-process queues the local host
falls back to, through the same QueueBackend interface (the same semantics are the contract)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from shared.queues import InProcessQueues, QueueBackend
from shared.queues.azure_storage import AzureStorageQueues
from shared.queues.connection import resolve_queue_connection
from tests.integration.azurite_server import azurite  # noqa: F401 - fixture re-export

_names = itertools.count(1)


@pytest.fixture(params=["in_process", "azurite"])
def backend(request: pytest.FixtureRequest) -> Iterator[QueueBackend]:
    if request.param == "in_process":
        yield InProcessQueues()
        return
    server = request.getfixturevalue("azurite")
    queues = AzureStorageQueues(resolve_queue_connection({"AzureWebJobsStorage": server.connection_string}))
    yield queues
    queues.close()


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses (the Azurite instance is shared by the session)."""
    return f"t{os.getpid()}-{next(_names)}"
