"""Background work on Azure Storage Queues (DESIGN.md decision 8).

`QueueProducer.enqueue` puts a versioned JSON envelope on a queue, encoded as the host's queue
trigger decodes it; queue-triggered functions in functions/ hand their messages to
`shared.services.jobs.JobRunner`. Importing this package imports no Azure SDK.
"""

from shared.queues.backend import InProcessQueues, MessageLost, QueueBackend, QueuedMessage, QueueMissing
from shared.queues.envelope import Envelope, MalformedMessage, poison_queue
from shared.queues.options import QueueHostOptions, host_queue_options
from shared.queues.producer import QueueProducer, build_queue_backend

# Queue names (Azure Storage: 3-63 of a-z, 0-9, single hyphens). infra/ creates each with its poison queue.
MARKET_REFRESH = "market-refresh"

__all__ = [
    "MARKET_REFRESH", "Envelope", "InProcessQueues", "MalformedMessage", "MessageLost", "QueueBackend",
    "QueueHostOptions", "QueueMissing", "QueueProducer", "QueuedMessage", "build_queue_backend", "host_queue_options",
    "poison_queue",
]
