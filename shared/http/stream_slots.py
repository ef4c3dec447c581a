"""Caps on chat turns in progress, per user and per instance (worker process).

A stream holds a worker thread for a whole model turn; without a cap, a burst of slow streams queues
every later one behind them (first events seconds late). Over a cap a new turn is refused at once,
before anything starts: 429 when the caller has too many of their own, 503 when the instance is full,
both with Retry-After.
"""

from __future__ import annotations

import threading
from types import TracebackType

from shared.errors import StreamCapacityFull, TooManyStreams

RETRY_AFTER_S = 5  # a chat turn takes seconds: try again after a few


class StreamSlot:
    """One admitted turn. `release()` frees it; it is idempotent, so every path that ends a turn may call
    it. As a context manager it is released on exit."""

    def __init__(self, slots: StreamSlots, user_id: str) -> None:
        self._slots = slots
        self._user_id = user_id
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._slots._free(self._user_id)

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class StreamSlots:
    """Counts turns in progress. Thread-safe; state is per process (per worker)."""

    def __init__(self, per_user: int, per_instance: int) -> None:
        self.per_user = per_user
        self.per_instance = per_instance
        self._lock = threading.Lock()
        self._total = 0
        self._by_user: dict[str, int] = {}

    def acquire(self, user_id: str) -> StreamSlot:
        """A slot for one turn of `user_id`; TooManyStreams (429) over the per-user cap, StreamCapacityFull
        (503) over the instance's."""
        with self._lock:
            mine = self._by_user.get(user_id, 0)
            if mine >= self.per_user:
                raise TooManyStreams(
                    f"At most {self.per_user} chat turns may be in progress at once; wait for one to finish",
                    retry_after=RETRY_AFTER_S)
            if self._total >= self.per_instance:
                raise StreamCapacityFull("This instance is serving as many chat turns as it can; retry shortly",
                                         retry_after=RETRY_AFTER_S)
            self._by_user[user_id] = mine + 1
            self._total += 1
        return StreamSlot(self, user_id)

    def _free(self, user_id: str) -> None:
        with self._lock:
            left = self._by_user.get(user_id, 0) - 1
            if left > 0:
                self._by_user[user_id] = left
            else:
                self._by_user.pop(user_id, None)
            self._total = max(0, self._total - 1)

    def in_use(self, user_id: str | None = None) -> int:
        """Turns in progress: of `user_id`, or on this instance."""
        with self._lock:
            return self._total if user_id is None else self._by_user.get(user_id, 0)
