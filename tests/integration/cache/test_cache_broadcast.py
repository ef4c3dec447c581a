"""CacheBackend.publish/subscribe on a real redis-server: delivery to every subscriber, `on_gap` on
each (re)subscription, and nothing without Redis."""

from __future__ import annotations

import queue
import threading

import pytest

from shared.cache import CacheBackend

pytestmark = pytest.mark.integration


class Listener:
    def __init__(self) -> None:
        self.messages: queue.Queue[str] = queue.Queue()
        self.gaps = 0
        self.gap_seen = threading.Event()

    def on_message(self, text: str) -> None:
        self.messages.put(text)

    def on_gap(self) -> None:
        self.gaps += 1
        self.gap_seen.set()


def test_every_subscriber_gets_each_message_in_order(make_backend):
    publisher, first, second = make_backend(), make_backend(), make_backend()
    listeners = [Listener(), Listener()]
    subs = [cache.subscribe("revocations", l.on_message, l.on_gap) for cache, l in zip((first, second), listeners)]
    assert all(s.listening.wait(10) for s in subs)
    assert [l.gaps for l in listeners] == [1, 1]
    for n in range(3):
        assert publisher.publish("revocations", f"key:{n}")
    for listener in listeners:
        assert [listener.messages.get(timeout=10) for _ in range(3)] == ["key:0", "key:1", "key:2"]
    assert publisher.publish("other-channel", "x")
    assert all(l.messages.empty() for l in listeners)


def test_a_subscriber_reports_a_gap_after_redis_comes_back(make_backend, redis_server):
    cache = make_backend(breaker_probe_interval_s=0.1)
    listener = Listener()
    sub = cache.subscribe("revocations", listener.on_message, listener.on_gap)
    assert sub.listening.wait(10)
    listener.gap_seen.clear()
    redis_server.kill()
    assert not make_backend().publish("revocations", "lost")  # nobody can publish meanwhile
    redis_server.start()
    assert listener.gap_seen.wait(15), "resubscribed and told its owner that messages may be lost"
    assert sub.listening.wait(10)
    assert cache.publish("revocations", "after")
    assert listener.messages.get(timeout=10) == "after"
    cache.close()
    assert not sub._thread.is_alive()


def test_without_redis_nothing_is_published_or_subscribed():
    cache = CacheBackend()
    assert cache.publish("revocations", "key:1") is False
    assert cache.subscribe("revocations", lambda m: None, lambda: None) is None
