from __future__ import annotations

import threading

from shared.cache.memory import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_expired_entry_is_not_returned_and_is_removed_on_get():
    clock = FakeClock()
    store = MemoryStore(10, clock=clock)
    store.set("a", b"1", ttl=5)
    store.set("b", b"2")
    clock.now += 4.9
    assert store.get("a") == b"1"
    clock.now += 0.2
    assert len(store) == 2  # still stored until read
    assert store.get("a") is None
    assert len(store) == 1
    assert store.get("b") == b"2"  # no ttl: never expires


def test_lru_bound_evicts_least_recently_used():
    store = MemoryStore(3)
    for k in "abc":
        store.set(k, k.encode())
    assert store.get("a") == b"a"  # a becomes most recently used
    store.set("d", b"d")
    assert len(store) == 3
    assert store.get("b") is None
    assert [store.get(k) for k in "acd"] == [b"a", b"c", b"d"]


def test_incr_sets_expiry_only_on_creation():
    clock = FakeClock()
    store = MemoryStore(10, clock=clock)
    assert store.incr("n", 1, ttl=10) == 1
    clock.now += 6
    assert store.incr("n", 2, ttl=10) == 3
    assert store.ttl("n") == 4  # the window did not slide
    clock.now += 4
    assert store.incr("n", 1, ttl=10) == 1


def test_set_nx_and_delete():
    store = MemoryStore(10)
    assert store.set_nx("k", b"1", ttl=10)
    assert not store.set_nx("k", b"2", ttl=10)
    assert store.delete("k")
    assert not store.delete("k")
    store.set("k", b"x", ttl=0)
    assert store.get("k") is None


def test_incr_is_thread_safe():
    store = MemoryStore(10)

    def work() -> None:
        for _ in range(500):
            store.incr("n")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("n") == b"4000"
