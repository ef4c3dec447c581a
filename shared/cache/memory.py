"""Bounded, thread-safe in-process LRU store with per-entry expiry (the cache's memory mode)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable


class MemoryStore:
    """An LRU map of bytes with optional expiry.

    Guarantees: never holds more than ``max_entries`` keys (least recently used are
    evicted first); an expired entry is never returned and is removed when read;
    every method is atomic with respect to the others (one lock).
    """

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def _live(self, key: str, now: float) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def _put(self, key: str, value: bytes, expires_at: float | None) -> None:
        self._data[key] = (value, expires_at)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._live(key, self._clock())
            if entry is None:
                return None
            self._data.move_to_end(key)
            return entry[0]

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._lock:
            now = self._clock()
            if ttl is not None and ttl <= 0:
                self._data.pop(key, None)
                return
            self._put(key, value, now + ttl if ttl is not None else None)

    def set_nx(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store only when the key is absent (or expired); True when stored."""
        with self._lock:
            now = self._clock()
            if self._live(key, now) is not None:
                return False
            self._put(key, value, now + ttl if ttl is not None else None)
            return True

    def delete(self, key: str) -> bool:
        with self._lock:
            entry = self._live(key, self._clock())
            self._data.pop(key, None)
            return entry is not None

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to an integer counter; the expiry is set only when the counter is created."""
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None:
                value, expires_at = amount, (now + ttl if ttl is not None and ttl > 0 else None)
            else:
                value, expires_at = int(entry[0]) + amount, entry[1]
            self._put(key, str(value).encode(), expires_at)
            return value

    def ttl(self, key: str) -> float | None:
        """Seconds left before expiry; None when missing or without expiry."""
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None or entry[1] is None:
                return None
            return entry[1] - now

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
