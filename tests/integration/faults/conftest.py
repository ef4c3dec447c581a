"""Fault-injection fixtures: a Core built per test from custom settings, served through the real ASGI app."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401 - fixture re-export
except ImportError:  # run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
