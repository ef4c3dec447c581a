"""shared/queues without a server: host.json options, the envelope and its encoding (checked against the
Storage SDK's own base64 policy, which mirrors the host's), in-process queue semantics on a fake clock,
the producer, and reading the host's connection settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.logging import bound_request_id
from shared.queues import Envelope, InProcessQueues, MalformedMessage, MessageLost, QueueMissing, QueueProducer
from shared.queues.connection import queue_description, resolve_queue_connection
from shared.queues.envelope import decode_text, encode_text
from shared.queues.names import check_queue_name, poison_queue
from shared.queues.options import QueueHostOptions, host_queue_options, parse_timespan
from shared.queues.producer import backend_for, build_queue_backend

ROOT = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------- host.json


def test_host_json_sets_every_queue_option_deliberately():
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert set(queues) >= {"batchSize", "newBatchThreshold", "maxDequeueCount", "visibilityTimeout", "messageEncoding"}
    options = host_queue_options()
    assert options == QueueHostOptions(batch_size=4, new_batch_threshold=2, max_dequeue_count=5, visibility_timeout_s=10,
                                       max_polling_interval_s=2, message_encoding="base64", function_timeout_s=600)
    assert options.new_batch_threshold < options.batch_size
    # Every retry fits well inside one refresh period, so a failing batch is in the poison queue before the next run.
    assert options.max_dequeue_count * options.visibility_timeout_s < 15 * 60


def test_missing_keys_take_the_hosts_defaults(tmp_path):
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"queues": {"batchSize": 10}}}))
    options = host_queue_options(tmp_path / "host.json")
    assert (options.batch_size, options.new_batch_threshold, options.max_dequeue_count) == (10, 5, 5)
    assert options.message_encoding == "base64" and options.visibility_timeout_s == 0
    assert host_queue_options(tmp_path / "absent.json") == QueueHostOptions()


@pytest.mark.parametrize("text,seconds", [("00:00:10", 10), ("00:10:00", 600), ("1.02:00:00", 93600), ("00:00:01.5", 1.5)])
def test_timespans(text, seconds):
    assert parse_timespan(text) == seconds


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        parse_timespan("10s")
    with pytest.raises(ValueError):
        QueueHostOptions(batch_size=64)
    with pytest.raises(ValueError):
        QueueHostOptions(message_encoding="utf8")  # type: ignore[arg-type]


# ---------------------------------------------------------------- envelope and encoding


def test_base64_messages_decode_with_the_storage_sdks_policy_to_the_envelope_json():
    from azure.storage.queue import TextBase64DecodePolicy

    envelope = Envelope.new({"symbols": ["BRK.B"], "text": "naïve ✓"}, request_id="r-1")
    text = encode_text(envelope.to_json(), "base64")
    assert TextBase64DecodePolicy().decode(text, None) == envelope.to_json()
    assert decode_text(text, "base64") == envelope.to_json().encode("utf-8")
    assert Envelope.from_body(decode_text(text, "base64")) == envelope
    assert encode_text("{}", "none") == "{}" and decode_text("{}", "none") == b"{}"


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"v": 2, "id": "x", "payload": {}}', b'[1]',
                                  b'{"v": 1, "id": "x", "request_id": "has space", "created_at": "2026-01-01T00:00:00Z", "payload": {}}',
                                  b'{"v": 1, "id": "x", "created_at": "2026-01-01T00:00:00Z"}'])
def test_a_body_that_is_not_a_v1_envelope_is_malformed(body):
    with pytest.raises(MalformedMessage):
        Envelope.from_body(body)


def test_invalid_base64_is_malformed():
    with pytest.raises(MalformedMessage):
        decode_text("not base64!", "base64")


@pytest.mark.parametrize("name", ["ab", "Market", "-a-b", "a--b", "a-b-", "a_b", "x" * 64])
def test_queue_names_follow_azure_rules(name):
    with pytest.raises(ValueError):
        check_queue_name(name)


def test_poison_queue_name():
    assert poison_queue("market-refresh") == "market-refresh-poison"


# ---------------------------------------------------------------- in-process queues


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_in_process_visibility_dequeue_count_and_receipts():
    clock = Clock()
    q = InProcessQueues(clock=clock)
    with pytest.raises(QueueMissing):
        q.send("jobs", "a")
    q.create_queue("jobs")
    q.create_queue("jobs")  # idempotent
    q.send("jobs", "a")
    (m,) = q.receive("jobs", max_messages=5, visibility_timeout_s=30)
    assert (m.text, m.dequeue_count) == ("a", 1)
    assert q.receive("jobs", max_messages=5, visibility_timeout_s=30) == []  # hidden while held
    clock.now += 31  # the holder's time ran out: visible again, and its receipt no longer works
    (again,) = q.receive("jobs", max_messages=5, visibility_timeout_s=30)
    assert again.id == m.id and again.dequeue_count == 2
    with pytest.raises(MessageLost):
        q.delete("jobs", m.id, m.pop_receipt)
    receipt = q.release("jobs", again.id, again.pop_receipt, visibility_timeout_s=10)
    assert q.receive("jobs", max_messages=5, visibility_timeout_s=30) == []
    clock.now += 10
    (third,) = q.receive("jobs", max_messages=5, visibility_timeout_s=30)
    assert third.dequeue_count == 3 and third.pop_receipt != receipt
    q.delete("jobs", third.id, third.pop_receipt)
    assert q.count("jobs") == 0


def test_in_process_delay_batch_size_and_time_to_live():
    clock = Clock()
    q = InProcessQueues(clock=clock)
    q.create_queue("jobs")
    q.send("jobs", "later", delay_s=60)
    for i in range(5):
        q.send("jobs", str(i), ttl_s=100)
    assert [m.text for m in q.receive("jobs", max_messages=3, visibility_timeout_s=1)] == ["0", "1", "2"]
    clock.now += 101  # the five expired; the delayed one is visible now
    assert [m.text for m in q.receive("jobs", max_messages=10, visibility_timeout_s=1)] == ["later"]


# ---------------------------------------------------------------- producer


def test_enqueue_carries_the_request_id_and_creates_the_queue():
    q = InProcessQueues()
    producer = QueueProducer(q, encoding="base64")
    with bound_request_id("req-42"):
        sent = producer.enqueue("reports", {"id": 1}, dedupe_key="report:1")
    (m,) = q.receive("reports", max_messages=1, visibility_timeout_s=1)
    received = Envelope.from_body(decode_text(m.text, "base64"))
    assert received == sent and received.request_id == "req-42" and received.dedupe_key == "report:1"
    assert producer.enqueue("reports", {"id": 2}).request_id is None  # outside any request


def test_enqueue_refuses_what_the_service_would():
    producer = QueueProducer(InProcessQueues(), encoding="base64")
    with pytest.raises(ValueError):
        producer.enqueue("reports", {"blob": "x" * 60_000})  # over 64 KiB once base64-encoded
    with pytest.raises(ValueError):
        producer.enqueue("Reports", {})
    with pytest.raises(ValueError):
        producer.enqueue("reports", {}, delay_s=8 * 24 * 3600)


# ---------------------------------------------------------------- connection settings


def test_connection_string_wins_like_on_the_host():
    conn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;" \
           "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    c = resolve_queue_connection({"AzureWebJobsStorage": conn, "AzureWebJobsStorage__accountName": "ignored"})
    assert c.kind == "connection_string"
    assert c.description == "azure storage http://127.0.0.1:10001/devstoreaccount1 (connection string)"
    assert "c2VjcmV0" not in repr(c) and "c2VjcmV0" not in c.description
    dev = resolve_queue_connection({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert "127.0.0.1:10001" in dev.description


def test_identity_based_settings():
    c = resolve_queue_connection({"AzureWebJobsStorage__accountName": "stabc", "AzureWebJobsStorage__credential":
                                  "managedidentity", "AzureWebJobsStorage__clientId": "cid"})
    assert (c.kind, c.account_url, c.credential, c.client_id) == (
        "identity", "https://stabc.queue.core.windows.net", "managedidentity", "cid")
    uri = resolve_queue_connection({"AzureWebJobsStorage__queueServiceUri": "https://q.example.net/",
                                    "AzureWebJobsStorage__accountName": "stabc"})
    assert uri.account_url == "https://q.example.net" and "DefaultAzureCredential" in uri.description


def test_identity_connection_builds_a_managed_identity_client_without_any_key():
    from azure.identity import ManagedIdentityCredential

    from shared.queues.azure_storage import _service_client

    client = _service_client(resolve_queue_connection({
        "AzureWebJobsStorage__accountName": "stabc", "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001"}))
    assert client.url.startswith("https://stabc.queue.core.windows.net")
    assert isinstance(client.credential, ManagedIdentityCredential)
    client.close()


def test_without_storage_settings_queues_are_in_process_locally_and_an_error_elsewhere():
    assert resolve_queue_connection({}).kind == "in_process"
    assert isinstance(build_queue_backend(local=True, environ={}), InProcessQueues)
    with pytest.raises(ConfigError, match="AzureWebJobsStorage"):
        build_queue_backend(local=False, environ={})
    assert queue_description({}) == "in-process (memory, this process only)"
    azure = backend_for(resolve_queue_connection({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}), local=False)
    assert "emulator" in azure.description


def test_a_queue_service_that_refuses_connections_fails_the_producer_within_seconds(monkeypatch):
    """The producer runs inside HTTP requests (the admin route, later alerts and reports): with the Storage SDK's
    own retry defaults (15 s, then 18 s, ...) a refused connection held the request for about 40 s. The real SDK
    is driven against a loopback port nobody listens on; its retry waits are recorded instead of slept."""
    from azure.core.pipeline.transport import HttpTransport

    from devhost.queues import azurite_connection_string, free_port
    from shared.errors import QueueUnavailable
    from shared.queues.azure_storage import AzureStorageQueues

    waits: list[float] = []
    monkeypatch.setattr(HttpTransport, "sleep", lambda self, seconds: waits.append(seconds))  # every transport's
    backend = AzureStorageQueues(resolve_queue_connection({"AzureWebJobsStorage": azurite_connection_string(free_port())}))
    with pytest.raises(QueueUnavailable):
        QueueProducer(backend, encoding="base64").enqueue("unit-refused", {"n": 1})
    backend.close()
    assert len(waits) == 2 and sum(waits) <= 2.0, waits  # it did retry, briefly
