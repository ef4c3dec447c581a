"""`enqueue`: put a job on a queue in the envelope and encoding the queue trigger expects."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from shared.errors import ConfigError
from shared.logging import request_id_var
from shared.queues.backend import DEFAULT_TTL_S, InProcessQueues, QueueBackend, QueueMissing
from shared.queues.connection import QueueConnection, resolve_queue_connection
from shared.queues.envelope import MAX_MESSAGE_CHARS, Envelope, encode_text
from shared.queues.names import check_queue_name
from shared.queues.options import MessageEncoding

log = logging.getLogger("stockagent.queues")


class QueueProducer:
    """Sends jobs. Every message is a versioned `Envelope` carrying the current request id, encoded
    with the host's `messageEncoding`; a queue that does not exist yet is created on first send."""

    def __init__(self, backend: QueueBackend, *, encoding: MessageEncoding, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.backend = backend
        self._encoding = encoding
        self._ttl_s = ttl_s

    def enqueue(self, queue: str, payload: Mapping[str, Any], *, delay_s: int = 0,
                dedupe_key: str | None = None) -> Envelope:
        """Queue `payload` for the function triggered by `queue`; returns the envelope sent.

        `delay_s` keeps the message invisible that long (0 up to its time-to-live). Messages with the
        same `dedupe_key` are processed once (the consumer keeps a receipt per key); without one,
        each message is its own key, so a redelivered message is still processed once.
        Raises QueueUnavailable when the queue service cannot be reached.
        """
        check_queue_name(queue)
        if not 0 <= delay_s < self._ttl_s:
            raise ValueError(f"delay_s must be in [0, {self._ttl_s})")
        envelope = Envelope.new(dict(payload), request_id=request_id_var.get(), dedupe_key=dedupe_key)
        text = encode_text(envelope.to_json(), self._encoding)
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValueError(f"message of {len(text)} characters exceeds the queue limit of {MAX_MESSAGE_CHARS}")
        try:
            self.backend.send(queue, text, delay_s=int(delay_s), ttl_s=self._ttl_s)
        except QueueMissing:
            self.backend.create_queue(queue)
            self.backend.send(queue, text, delay_s=int(delay_s), ttl_s=self._ttl_s)
        log.info("queued job %s on %s", envelope.id, queue,
                 extra={"queue": queue, "job_id": envelope.id, "dedupe_key": dedupe_key, "delay_s": delay_s})
        return envelope


def build_queue_backend(*, local: bool, environ: Mapping[str, str] | None = None) -> QueueBackend:
    """The backend `environ` (default: the process environment) names, as the Functions host reads it.

    Without any storage setting the app runs on in-process queues, which only a local host consumes;
    outside local that is a configuration error (the Functions host needs AzureWebJobsStorage too).
    """
    connection = resolve_queue_connection(os.environ if environ is None else environ)
    return backend_for(connection, local=local)


def backend_for(connection: QueueConnection, *, local: bool) -> QueueBackend:
    if connection.kind == "in_process":
        if not local:
            raise ConfigError("AzureWebJobsStorage (or AzureWebJobsStorage__accountName) is not set: "
                              "queue-triggered functions need a storage account")
        return InProcessQueues()
    from shared.queues.azure_storage import AzureStorageQueues

    return AzureStorageQueues(connection)
