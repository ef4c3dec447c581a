"""What a queue service offers the producer and the local host, and the in-process implementation.

`QueueBackend` is the part of Azure Storage Queues the app and the local host use: send,
receive with a visibility timeout (a received message stays hidden from other consumers until
it is deleted, released or its timeout runs out), delete and release by pop receipt, and a
dequeue count that grows on every receive. `AzureStorageQueues` (shared/queues/azure_storage.py)
implements it over azure-storage-queue; `InProcessQueues` below implements the same semantics in
memory for a local host without Azurite.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol

from shared.queues.names import check_queue_name

DEFAULT_TTL_S = 7 * 24 * 3600  # Azure Storage's default message time-to-live


class QueueMissing(LookupError):
    """The queue does not exist (Azure: QueueNotFound)."""


class MessageLost(LookupError):
    """The pop receipt no longer holds: the message was deleted, or its visibility timeout ran out and
    another consumer received it (Azure: MessageNotFound / PopReceiptMismatch)."""


@dataclass(frozen=True)
class QueuedMessage:
    """A received message: `text` exactly as stored on the queue (still encoded)."""

    id: str
    pop_receipt: str
    text: str
    dequeue_count: int
    inserted_on: datetime | None = None
    expires_on: datetime | None = None
    next_visible_on: datetime | None = None


class QueueBackend(Protocol):
    """Azure Storage Queue operations, synchronous (call them off the event loop)."""

    description: str

    def create_queue(self, queue: str) -> None:
        """Create `queue` if it does not exist (idempotent)."""

    def send(self, queue: str, text: str, *, delay_s: int = 0, ttl_s: int = DEFAULT_TTL_S) -> str:
        """Append a message, invisible for `delay_s`; returns its id. QueueMissing when the queue does not exist."""

    def receive(self, queue: str, *, max_messages: int, visibility_timeout_s: int) -> list[QueuedMessage]:
        """Up to `max_messages` visible messages, each hidden for `visibility_timeout_s` and its dequeue count + 1."""

    def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        """Remove a received message; MessageLost when the receipt is stale."""

    def release(self, queue: str, message_id: str, pop_receipt: str, *, visibility_timeout_s: int) -> str:
        """Make a received message visible again after `visibility_timeout_s`; returns the new pop receipt."""

    def count(self, queue: str) -> int:
        """Messages on `queue`, visible or not (approximate on Azure). QueueMissing when it does not exist."""

    def close(self) -> None:
        """Release connections."""


@dataclass
class _Stored:
    message: QueuedMessage
    visible_at: float
    expires_at: float
    receipt: str = field(default_factory=lambda: uuid.uuid4().hex)


class InProcessQueues:
    """Queues in this process's memory with Azure Storage's semantics (visibility timeout, pop receipts,
    dequeue count, time-to-live). Messages are lost when the process ends: a local stand-in only."""

    description = "in-process (memory, this process only)"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._queues: dict[str, dict[str, _Stored]] = {}

    def create_queue(self, queue: str) -> None:
        with self._lock:
            self._queues.setdefault(check_queue_name(queue), {})

    def _queue(self, queue: str) -> dict[str, _Stored]:
        stored = self._queues.get(check_queue_name(queue))
        if stored is None:
            raise QueueMissing(queue)
        return stored

    def send(self, queue: str, text: str, *, delay_s: int = 0, ttl_s: int = DEFAULT_TTL_S) -> str:
        now = self._clock()
        message_id = str(uuid.uuid4())
        inserted = datetime.fromtimestamp(now, timezone.utc)
        with self._lock:
            self._queue(queue)[message_id] = _Stored(
                QueuedMessage(message_id, "", text, 0, inserted, datetime.fromtimestamp(now + ttl_s, timezone.utc)),
                visible_at=now + delay_s, expires_at=now + ttl_s)
        return message_id

    def receive(self, queue: str, *, max_messages: int, visibility_timeout_s: int) -> list[QueuedMessage]:
        now = self._clock()
        out: list[QueuedMessage] = []
        with self._lock:
            stored = self._queue(queue)
            for message_id in [k for k, s in stored.items() if s.expires_at <= now]:
                del stored[message_id]
            for entry in stored.values():  # insertion order, like the service's best-effort FIFO
                if len(out) >= max_messages:
                    break
                if entry.visible_at > now:
                    continue
                entry.receipt = uuid.uuid4().hex
                entry.visible_at = now + visibility_timeout_s
                entry.message = replace(entry.message, dequeue_count=entry.message.dequeue_count + 1,
                                        pop_receipt=entry.receipt,
                                        next_visible_on=datetime.fromtimestamp(entry.visible_at, timezone.utc))
                out.append(entry.message)
        return out

    def _held(self, queue: str, message_id: str, pop_receipt: str) -> _Stored:
        entry = self._queue(queue).get(message_id)
        if entry is None or entry.receipt != pop_receipt:
            raise MessageLost(message_id)
        return entry

    def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        with self._lock:
            self._held(queue, message_id, pop_receipt)
            del self._queue(queue)[message_id]

    def release(self, queue: str, message_id: str, pop_receipt: str, *, visibility_timeout_s: int) -> str:
        with self._lock:
            entry = self._held(queue, message_id, pop_receipt)
            entry.receipt = uuid.uuid4().hex
            entry.visible_at = self._clock() + visibility_timeout_s
            entry.message = replace(entry.message, pop_receipt=entry.receipt)
            return entry.receipt

    def count(self, queue: str) -> int:
        """Messages on `queue`, visible or not (Azure's approximate message count)."""
        with self._lock:
            return len(self._queue(queue))

    def close(self) -> None:
        """Nothing to release: the queues live as long as this object."""
