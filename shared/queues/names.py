"""Queue names: the ones the app uses and Azure Storage's rules for them (stdlib only: function
modules import this at registration time)."""

from __future__ import annotations

import re

# Queue names (Azure Storage: 3-63 of a-z, 0-9, single hyphens). infra/ creates each with its poison queue.
MARKET_REFRESH = "market-refresh"

_QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")


def check_queue_name(name: str) -> str:
    """`name` when Azure Storage accepts it as a queue name; ValueError otherwise (a programming error)."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ValueError(f"invalid queue name {name!r}: 3-63 of a-z, 0-9 and single hyphens")
    return name


def poison_queue(queue: str) -> str:
    """Where the Functions host moves a message of `queue` that failed maxDequeueCount times."""
    return f"{check_queue_name(queue)}-poison"
