"""Repositories of the background-job machinery: receipts (idempotency) and poison messages.

`job_receipts` holds one document per job key (`<queue>:<dedupe key or job id>`): claiming it is
one atomic upsert, so of several deliveries of the same job (at-least-once queues redeliver) one
runs and the others see `done` or `busy`. `poison_messages` records every message that failed
maxDequeueCount times, so no job disappears silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.data.repository import MongoGenericRepository

ClaimOutcome = Literal["claimed", "done", "busy"]


class MongoJobReceiptRepository(MongoGenericRepository):
    """Job receipts: `running` with a lease while a consumer holds the job, `done` once it succeeded.

    Receipts expire `retention_s` after their last change (TTL index), longer than a queue message
    can live, so a duplicate that arrives later is still recognised.
    """

    collection_name = "job_receipts"
    string_ids = True

    def claim(self, key: str, *, queue: str, job_id: str, message_id: str, lease_s: float,
              retention_s: float) -> ClaimOutcome:
        """`claimed` when the caller now holds the job: new, a previous holder's lease ran out, or the holder
        held this very message (`message_id`): the queue hands a message out again only once the previous
        delivery's visibility has run out, so that holder is gone (crashed, or past functionTimeout) even if
        its lease, which began a little later, has not quite run out. `done` when the job already succeeded;
        `busy` while another message's consumer holds a live lease (its own message is retried if it fails)."""
        from pymongo.errors import DuplicateKeyError

        now = self._now()
        try:
            # No match for an existing done or leased receipt: the upsert then collides on _id.
            self.collection.update_one(
                {"_id": key, "status": "running",
                 "$or": [{"lease_until": {"$lte": now}}, {"message_id": message_id}]},
                {"$set": {"queue": queue, "job_id": job_id, "message_id": message_id,
                          "lease_until": now + timedelta(seconds=lease_s),
                          "claimed_at": now, "expires_at": now + timedelta(seconds=retention_s)},
                 "$inc": {"attempts": 1}},
                upsert=True,
            )
            return "claimed"
        except DuplicateKeyError:
            current = self.collection.find_one({"_id": key}, {"status": 1})
            return "done" if current is not None and current.get("status") == "done" else "busy"

    def complete(self, key: str, *, retention_s: float) -> None:
        """Mark the job done: later deliveries of the same key are duplicates."""
        now = self._now()
        self.collection.update_one({"_id": key}, {"$set": {"status": "done", "completed_at": now,
                                                           "expires_at": now + timedelta(seconds=retention_s)}})

    def release(self, key: str) -> None:
        """End a failed attempt's lease, so the job's next delivery can claim it at once."""
        self.collection.update_one({"_id": key, "status": "running"}, {"$set": {"lease_until": self._now()}})


@dataclass(frozen=True)
class PoisonRecord:
    """A message that failed maxDequeueCount times. `payload`/`request_id`/`job_id` are None when the
    message was not a readable envelope; `body` is what the trigger received, as text."""

    id: str
    queue: str
    message_id: str
    body: str
    recorded_at: str
    job_id: str | None = None
    request_id: str | None = None
    dedupe_key: str | None = None
    payload: dict[str, Any] | None = None
    queued_at: str | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "PoisonRecord":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in doc.items() if k in fields})


class MongoPoisonMessageRepository(MongoGenericRepository):
    """Poison messages by `<queue>:<job id>`: recording the same one twice keeps the first record."""

    collection_name = "poison_messages"
    string_ids = True
    default_sort = (("recorded_at", -1),)

    def record(self, *, queue: str, key: str, message_id: str, body: str, job_id: str | None, request_id: str | None, dedupe_key: str | None,
               payload: dict[str, Any] | None, queued_at: datetime | None) -> PoisonRecord:
        from pymongo import ReturnDocument

        doc = self.collection.find_one_and_update(
            {"_id": f"{queue}:{key}"},
            {"$setOnInsert": {"queue": queue, "message_id": message_id, "body": body,
                              "job_id": job_id, "request_id": request_id, "dedupe_key": dedupe_key,
                              "payload": payload, "queued_at": queued_at, "recorded_at": self._now()}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        return PoisonRecord.from_document(self._normalize(doc) or {})

    def list_recent(self, *, queue: str | None = None, limit: int | None = None,
                    cursor: str | None = None) -> tuple[list[PoisonRecord], str | None]:
        """Newest first, optionally of one queue; `(records, next_cursor)`."""
        items, next_cursor = self.find_many({"queue": queue} if queue else {}, limit=limit, cursor=cursor)
        return [PoisonRecord.from_document(doc) for doc in items], next_cursor
