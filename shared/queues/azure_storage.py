"""`QueueBackend` over Azure Storage Queues (azure-storage-queue), imported on first use.

Messages are sent and received as plain text: encoding is the producer's job (shared/queues/
envelope.py), so what is stored is byte for byte what the Functions host's trigger decodes.
SDK errors end here: a missing queue is QueueMissing, a stale pop receipt MessageLost, anything
else (network, authentication, 5xx) QueueUnavailable, naming the endpoint and never a key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.errors import QueueUnavailable
from shared.queues.backend import DEFAULT_TTL_S, MessageLost, QueueMissing, QueuedMessage
from shared.queues.connection import QueueConnection
from shared.queues.names import check_queue_name

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueServiceClient

# Short timeouts and two quick retries: a producer in an HTTP request must fail within seconds. The Storage
# SDK's own retry waits initial_backoff + increment_base**n (15 s, then 18 s, +-3 s of jitter): here about
# half a second each time.
CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 3, "read_timeout": 10, "retry_total": 2,
                                  "initial_backoff": 0.5, "increment_base": 0, "random_jitter_range": 0.2}


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


class AzureStorageQueues:
    """Azure Storage Queues through one `QueueServiceClient` per instance (created on first use)."""

    def __init__(self, connection: QueueConnection, *,
                 service_factory: Callable[[QueueConnection], QueueServiceClient] | None = None) -> None:
        if connection.kind == "in_process":
            raise ValueError("AzureStorageQueues needs a connection string or an identity-based account")
        self._connection = connection
        self._service_factory = service_factory or _service_client
        self._service: QueueServiceClient | None = None
        self._clients: dict[str, QueueClient] = {}
        self._lock = threading.Lock()
        self.description = connection.description

    def _client(self, queue: str) -> QueueClient:
        client = self._clients.get(queue)
        if client is None:
            with self._lock:
                if self._service is None:
                    self._service = self._service_factory(self._connection)
                client = self._clients.setdefault(queue, self._service.get_queue_client(check_queue_name(queue)))
        return client

    @contextmanager
    def _translated(self, queue: str) -> Iterator[None]:
        from azure.core.exceptions import AzureError

        try:
            yield
        except AzureError as exc:
            code = _error_code(exc)
            if code == "QueueNotFound":
                raise QueueMissing(queue) from None
            if code in ("MessageNotFound", "PopReceiptMismatch"):
                raise MessageLost(queue) from None
            raise QueueUnavailable(f"Queue service unavailable ({type(exc).__name__}{': ' + code if code else ''})",
                                   extra={"queue": queue}) from None

    def create_queue(self, queue: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        with self._translated(queue):
            try:
                self._client(queue).create_queue()
            except ResourceExistsError:
                pass  # idempotent: it exists (maybe created by another instance a moment ago)

    def send(self, queue: str, text: str, *, delay_s: int = 0, ttl_s: int = DEFAULT_TTL_S) -> str:
        with self._translated(queue):
            sent = self._client(queue).send_message(text, visibility_timeout=int(delay_s) or None, time_to_live=ttl_s)
        return str(sent.id)

    def receive(self, queue: str, *, max_messages: int, visibility_timeout_s: int) -> list[QueuedMessage]:
        with self._translated(queue):
            pages = self._client(queue).receive_messages(
                max_messages=max_messages, messages_per_page=max_messages, visibility_timeout=int(visibility_timeout_s))
            return [
                QueuedMessage(str(m.id), str(m.pop_receipt), str(m.content), int(m.dequeue_count or 0),
                              m.inserted_on, m.expires_on, m.next_visible_on)
                for m in pages
            ]

    def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        with self._translated(queue):
            self._client(queue).delete_message(message_id, pop_receipt)

    def release(self, queue: str, message_id: str, pop_receipt: str, *, visibility_timeout_s: int) -> str:
        with self._translated(queue):
            updated = self._client(queue).update_message(message_id, pop_receipt,
                                                         visibility_timeout=int(visibility_timeout_s))
        return str(updated.pop_receipt)

    def count(self, queue: str) -> int:
        with self._translated(queue):
            return int(self._client(queue).get_queue_properties().approximate_message_count or 0)

    def close(self) -> None:
        with self._lock:
            service, self._service = self._service, None
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        if service is not None:
            service.close()


def _service_client(connection: QueueConnection) -> QueueServiceClient:
    """The SDK client the Functions host's own connection settings describe."""
    from azure.storage.queue import QueueServiceClient

    if connection.kind == "connection_string":
        return QueueServiceClient.from_connection_string(connection.connection_string or "", **CLIENT_OPTIONS)
    if connection.credential == "managedidentity":
        from azure.identity import ManagedIdentityCredential

        credential: Any = ManagedIdentityCredential(client_id=connection.client_id) if connection.client_id \
            else ManagedIdentityCredential()
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return QueueServiceClient(account_url=connection.account_url or "", credential=credential, **CLIENT_OPTIONS)
