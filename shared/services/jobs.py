"""Running queued jobs: the request-id context, exactly-once effects over at-least-once delivery,
and the record of poison messages.

A queue-triggered function hands its message to `JobRunner.run` with the handler to call. The
runner reads the envelope, binds the request id that queued the job to every log line, claims
the job's receipt (so a redelivered or duplicate message is skipped), calls the handler and marks
the receipt done. A handler that raises releases the receipt and re-raises: the host retries the
message and, after maxDequeueCount attempts, moves it to `<queue>-poison`, whose function calls
`record_poison`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.data.jobs import PoisonRecord
from shared.logging import bound_request_id
from shared.queues.envelope import Envelope, MalformedMessage
from shared.services.base import BaseService

MAX_BODY_CHARS = 64 * 1024
# Receipts outlive any message that could repeat them (a queue message lives at most 7 days).
RECEIPT_RETENTION_S = 8 * 24 * 3600


@dataclass(frozen=True)
class InboundMessage:
    """A message as the queue trigger delivers it: `body` already decoded by the host."""

    queue: str
    id: str
    body: bytes
    dequeue_count: int | None = None
    inserted_on: datetime | None = None


@dataclass(frozen=True)
class Job:
    """What a handler receives."""

    queue: str
    message_id: str
    envelope: Envelope
    dequeue_count: int | None

    @property
    def payload(self) -> dict[str, Any]:
        return self.envelope.payload


class JobRunner(BaseService):
    def __init__(self, *, receipts: Any, poison: Any, metrics: Any, max_dequeue_count: int, lease_s: float,
                 retention_s: float, **kw: Any) -> None:
        super().__init__(**kw)
        self._receipts = receipts
        self._poison = poison
        self._metrics = metrics
        self._max_dequeue_count = max_dequeue_count
        self._lease_s = lease_s
        self._retention_s = retention_s

    def run(self, message: InboundMessage, handler: Callable[[Job], Any]) -> str:
        """Run `handler` once per job key; returns "done", "duplicate" (already done) or "in_progress"
        (another consumer holds it). Raises what the handler raised (the message is then retried),
        MalformedMessage for a body that is not an envelope, DatabaseUnavailable when receipts cannot
        be read (retried as well)."""
        try:
            envelope = Envelope.from_body(message.body)
        except MalformedMessage:
            self._count(message.queue, "malformed")
            self.logger.error("message %s on %s is not a job envelope (attempt %s of %d)", message.id, message.queue,
                              message.dequeue_count, self._max_dequeue_count,
                              extra={"queue": message.queue, "message_id": message.id})
            raise
        job = Job(message.queue, message.id, envelope, message.dequeue_count)
        key = f"{message.queue}:{envelope.dedupe_key or envelope.id}"
        extra = {"queue": message.queue, "job_id": envelope.id, "message_id": message.id,
                 "dequeue_count": message.dequeue_count}
        with bound_request_id(envelope.request_id or envelope.id):
            claim = self._receipts.claim(key, queue=message.queue, job_id=envelope.id, message_id=message.id,
                                         lease_s=self._lease_s, retention_s=self._retention_s)
            if claim != "claimed":
                outcome = "duplicate" if claim == "done" else "in_progress"
                self._count(message.queue, outcome)
                self.logger.info("job %s on %s skipped: %s", envelope.id, message.queue,
                                 "already processed" if claim == "done" else "another consumer holds it",
                                 extra={**extra, "outcome": outcome})
                return outcome
            started = time.perf_counter()
            self.logger.info("job %s on %s started (attempt %s of %d)", envelope.id, message.queue,
                             message.dequeue_count, self._max_dequeue_count, extra=extra)
            try:
                handler(job)
            except Exception as exc:
                self._receipts.release(key)
                self._count(message.queue, "failed")
                self.logger.warning("job %s on %s failed (attempt %s of %d): %s: %s", envelope.id, message.queue,
                                    message.dequeue_count, self._max_dequeue_count, type(exc).__name__, exc,
                                    extra={**extra, "outcome": "failed"})
                raise
            self._receipts.complete(key, retention_s=self._retention_s)
            self._count(message.queue, "done")
            self.logger.info("job %s on %s done in %.0f ms", envelope.id, message.queue,
                             (time.perf_counter() - started) * 1000, extra={**extra, "outcome": "done"})
            return "done"

    def record_poison(self, message: InboundMessage, *, source_queue: str) -> PoisonRecord:
        """Record a message the host moved to `<source_queue>-poison` (idempotent per job): an
        ERROR log line with the originating request id, a `jobs` counter and a stored record."""
        try:
            envelope: Envelope | None = Envelope.from_body(message.body)
        except MalformedMessage:
            envelope = None
        with bound_request_id(envelope.request_id if envelope else None):
            # Logged before it is stored: if the database is down the log still has it.
            self.logger.error("job %s from %s failed maxDequeueCount (%d) times and was moved to %s",
                              envelope.id if envelope else "?", source_queue, self._max_dequeue_count, message.queue,
                              extra={"queue": source_queue, "poison_queue": message.queue, "message_id": message.id,
                                     "job_id": envelope.id if envelope else None})
            self._count(source_queue, "poison")
            return self._poison.record(
                queue=source_queue, key=envelope.id if envelope else message.id, message_id=message.id,
                body=message.body.decode("utf-8", errors="replace")[:MAX_BODY_CHARS],
                job_id=envelope.id if envelope else None,
                request_id=envelope.request_id if envelope else None,
                dedupe_key=envelope.dedupe_key if envelope else None,
                payload=envelope.payload if envelope else None,
                queued_at=envelope.created_at if envelope else None,
            )

    def list_poison(self, *, queue: str | None = None, limit: int | None = None,
                    cursor: str | None = None) -> tuple[list[PoisonRecord], str | None]:
        """Recorded poison messages, newest first."""
        return self._poison.list_recent(queue=queue, limit=limit, cursor=cursor)

    def _count(self, queue: str, outcome: str) -> None:
        self._metrics.incr("jobs", f"{queue}:{outcome}")

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"database": self._receipts})
