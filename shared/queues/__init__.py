"""Background work on Azure Storage Queues (DESIGN.md decision 8).

`QueueProducer.enqueue` puts a versioned JSON envelope on a queue, encoded as the host's queue
trigger decodes it; queue-triggered functions in functions/ hand their messages to
`shared.services.jobs.JobRunner`. Importing this package loads only the queue names (function
modules import them at registration); everything else loads on first use, and no Azure SDK
before a queue is actually used.
"""

from __future__ import annotations

import importlib
from typing import Any

from shared.queues.names import MARKET_REFRESH, check_queue_name, poison_queue

_LAZY = {
    "Envelope": "shared.queues.envelope",
    "MalformedMessage": "shared.queues.envelope",
    "InProcessQueues": "shared.queues.backend",
    "MessageLost": "shared.queues.backend",
    "QueueBackend": "shared.queues.backend",
    "QueuedMessage": "shared.queues.backend",
    "QueueMissing": "shared.queues.backend",
    "QueueHostOptions": "shared.queues.options",
    "host_queue_options": "shared.queues.options",
    "QueueProducer": "shared.queues.producer",
    "build_queue_backend": "shared.queues.producer",
}

__all__ = ["MARKET_REFRESH", "check_queue_name", "poison_queue", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
