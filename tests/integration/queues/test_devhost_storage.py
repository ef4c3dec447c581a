"""How `make run` picks its queues: a configured storage as is, Azurite for the emulator, in-process without node."""

from __future__ import annotations

import pytest

import devhost.queues as dq
from shared.queues import QueueProducer
from shared.queues.azure_storage import AzureStorageQueues
from shared.queues.connection import resolve_queue_connection
from tests.integration.azurite_server import require_azurite

pytestmark = pytest.mark.integration


def test_a_configured_storage_is_used_as_is(tmp_path):
    conn = dq.azurite_connection_string(12345)
    environ = {"AzureWebJobsStorage": conn}
    storage = dq.provide_storage(tmp_path, environ)
    assert environ == {"AzureWebJobsStorage": conn} and storage.azurite is None
    assert "127.0.0.1:12345" in storage.description and "AccountKey" not in storage.description


@pytest.mark.parametrize("value", ["UseDevelopmentStorage=true", "UseDevelopmentStorage=true;", ""])
def test_without_node_the_local_host_says_it_uses_in_process_queues(tmp_path, monkeypatch, value):
    monkeypatch.setattr(dq.shutil, "which", lambda name: None)
    environ = {"AzureWebJobsStorage": value}
    storage = dq.provide_storage(tmp_path, environ)
    assert environ == {} and storage.azurite is None  # the core then builds in-process queues
    assert storage.description.startswith("in-process queues (node not found)")


def test_the_emulator_setting_starts_azurite_and_points_the_connection_at_it(tmp_path):
    require_azurite()
    environ = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AZURITE_QUEUE_PORT": str(dq.free_port())}
    storage = dq.provide_storage(tmp_path, environ)
    try:
        assert storage.azurite is not None and storage.azurite.running
        assert environ["AzureWebJobsStorage"] == storage.azurite.connection_string
        assert (tmp_path / "azurite").is_dir()
        queues = AzureStorageQueues(resolve_queue_connection(environ))
        QueueProducer(queues, encoding="base64").enqueue("devhost-check", {"ok": True})
        assert queues.count("devhost-check") == 1
        queues.close()
    finally:
        storage.close()
    assert not storage.azurite.running


def test_an_azurite_that_does_not_start_leaves_the_host_on_in_process_queues(tmp_path):
    broken = tmp_path / "azurite-queue"
    broken.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    environ = {"AZURITE_BIN": str(broken), "AZURITE_QUEUE_PORT": str(dq.free_port())}
    storage = dq.provide_storage(tmp_path, environ)
    assert "AzureWebJobsStorage" not in environ and storage.azurite is None
    assert "azurite did not start: azurite exited with 3: cannot start" in storage.description
