"""The queue trigger's behaviour as host.json configures it (`extensions.queues`, `functionTimeout`).

One reader for the producer (which must encode messages the way the trigger decodes them) and
for the local host (which plays the Functions host's part). Keys missing from host.json take the
Functions host's documented defaults, so both read the same values the host would use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"

MessageEncoding = Literal["base64", "none"]

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def parse_timespan(value: str) -> float:
    """Seconds in a .NET TimeSpan string as host.json writes them: "hh:mm:ss", "d.hh:mm:ss", optional fraction."""
    match = _TIMESPAN.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not a timespan (hh:mm:ss): {value!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class QueueHostOptions:
    """What the queue trigger does with a message (defaults: the Functions host's own).

    - `batch_size`: messages fetched at once per queue function and run in parallel (at most 32).
    - `new_batch_threshold`: another batch is fetched when fewer than this many are still running.
    - `max_dequeue_count`: attempts before a message moves to `<queue>-poison`.
    - `visibility_timeout_s`: how long a failed message stays hidden before its next attempt.
    - `max_polling_interval_s`: longest wait between polls of an empty queue.
    - `message_encoding`: how message text is encoded on the queue ("base64" or "none").
    - `function_timeout_s`: the longest an invocation may run; a message stays hidden that long.
    """

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout_s: float = 0.0
    max_polling_interval_s: float = 60.0
    message_encoding: MessageEncoding = "base64"
    function_timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 32:
            raise ValueError("queues.batchSize must be 1..32")
        if self.new_batch_threshold < 0 or self.max_dequeue_count < 1:
            raise ValueError("queues.newBatchThreshold must be >= 0 and maxDequeueCount >= 1")
        if self.message_encoding not in ("base64", "none"):
            raise ValueError("queues.messageEncoding must be base64 or none")


def host_queue_options(host_json: Path = HOST_JSON) -> QueueHostOptions:
    """The options in `host_json` (the host's defaults for keys it leaves out; all defaults without the file)."""
    try:
        doc: dict[str, Any] = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return QueueHostOptions()
    queues: dict[str, Any] = (doc.get("extensions") or {}).get("queues") or {}
    defaults = QueueHostOptions()
    batch_size = int(queues.get("batchSize", defaults.batch_size))
    return QueueHostOptions(
        batch_size=batch_size,
        new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout_s=parse_timespan(queues["visibilityTimeout"]) if "visibilityTimeout" in queues
        else defaults.visibility_timeout_s,
        max_polling_interval_s=parse_timespan(queues["maxPollingInterval"]) if "maxPollingInterval" in queues
        else defaults.max_polling_interval_s,
        message_encoding=str(queues.get("messageEncoding", defaults.message_encoding)).lower(),  # type: ignore[arg-type]
        function_timeout_s=parse_timespan(doc["functionTimeout"]) if "functionTimeout" in doc
        else defaults.function_timeout_s,
    )
