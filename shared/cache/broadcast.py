"""Fan-out of small messages to every instance over Redis pub/sub (used for invalidations).

Pub/sub delivers only to subscribers connected at the moment of `PUBLISH`, so a subscriber
cannot know what it missed while it was not listening. Every (re)subscription therefore
calls `on_gap()` first: the subscriber drops whatever such a message could have invalidated.
Consumers must keep their own bound (a TTL) for the time Redis is unreachable.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

logger = logging.getLogger(__name__)


class Subscription:
    """A daemon thread that listens on one channel and reconnects after failures.

    Guarantees: `on_gap()` runs each time the subscription is (re)established, before any
    message received on it; `on_message(text)` runs for each message after that, in order,
    on the listener thread. Exceptions raised by the callbacks are logged, never stop it.
    """

    def __init__(
        self,
        client: Any,
        channel: str,
        on_message: Callable[[str], None],
        on_gap: Callable[[], None],
        *,
        retry_s: float = 2.0,
        poll_s: float = 1.0,
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_message = on_message
        self._on_gap = on_gap
        self._retry_s = retry_s
        self._poll_s = poll_s
        self._stop = threading.Event()
        self.listening = threading.Event()  # set while subscribed (tests and health wait on it)
        self._thread = threading.Thread(target=self._run, name=f"pubsub-{channel}", daemon=True)

    def start(self) -> "Subscription":
        self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        down_logged = False
        while not self._stop.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=self._poll_s)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":  # also after redis-py's own reconnect
                        self._call(self._on_gap)
                        self.listening.set()
                        if down_logged:
                            logger.warning("pubsub %s: listening again", self._channel)
                            down_logged = False
                    elif message["type"] == "message":
                        data = message["data"]
                        self._call(self._on_message, data.decode() if isinstance(data, bytes) else str(data))
            except Exception as exc:  # noqa: BLE001 - any failure means "not listening": retry
                self.listening.clear()
                if not down_logged:
                    logger.warning("pubsub %s: not listening (%s); retrying every %.0fs",
                                   self._channel, type(exc).__name__, self._retry_s)
                    down_logged = True
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - closing a broken connection is best effort
                    pass
            self.listening.clear()
            self._stop.wait(self._retry_s)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a consumer bug must not stop the listener
            logger.exception("pubsub %s: handler failed", self._channel)
