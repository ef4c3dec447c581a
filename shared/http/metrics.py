"""In-process counters: requests, latency buckets, cache, upstream and LLM usage.

Counters are plain dicts behind a lock: cheap on the hot path, read as one JSON
snapshot by `GET /api/v1/admin/metrics`, and mirrored to OpenTelemetry when configured.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
        self._counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._otel: Any = None

    def attach_otel(self, meter: Any) -> None:
        self._otel = {
            "requests": meter.create_counter("http.server.requests"),
            "duration": meter.create_histogram("http.server.duration", unit="ms"),
            "events": meter.create_counter("stockagent.events"),
        }

    def observe_request(self, method: str, route: str, status: int, duration_ms: float) -> None:
        bucket = next((i for i, edge in enumerate(LATENCY_BUCKETS_MS) if duration_ms <= edge), len(LATENCY_BUCKETS_MS))
        with self._lock:
            self._requests[(method, route, status)] += 1
            self._latency[route][bucket] += 1
        if self._otel:
            attrs = {"http.method": method, "http.route": route, "http.status_code": status}
            self._otel["requests"].add(1, attrs)
            self._otel["duration"].record(duration_ms, attrs)

    def incr(self, group: str, name: str, amount: int = 1) -> None:
        """Count an event, e.g. incr("upstream", "yahoo:ok") or incr("llm_tokens", "openai")."""
        with self._lock:
            self._counters[group][name] += amount
        if self._otel:
            self._otel["events"].add(amount, {"group": group, "name": name})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            requests = [
                {"method": m, "route": r, "status": s, "count": c} for (m, r, s), c in sorted(self._requests.items())
            ]
            latency = {
                route: {
                    "buckets_ms": [*(str(b) for b in LATENCY_BUCKETS_MS), "+Inf"],
                    "counts": list(counts),
                }
                for route, counts in sorted(self._latency.items())
            }
            counters = {group: dict(values) for group, values in sorted(self._counters.items())}
        return {"requests": requests, "latency": latency, "counters": counters}
