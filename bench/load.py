"""`python -m bench.load '<json spec>'`: a small closed-loop load generator (asyncio + httpx), run in
its own process so it does not share an interpreter with the server it measures.

Spec: base_url, requests (list of {method, path, json?, auth?}; taken round-robin), keys (API keys,
rotated round-robin on requests with auth: true, so per-user rate limits are not what is measured),
concurrency, and either duration (seconds) or count (total requests). Prints one JSON line:
requests, ok (2xx), statuses, elapsed_s, rps (2xx per second), p50_ms, p99_ms (over 2xx responses).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

import httpx


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def run(spec: dict) -> dict:
    requests = itertools.cycle(spec["requests"])
    keys = itertools.cycle(spec.get("keys") or [""])
    duration = spec.get("duration")
    remaining = spec.get("count")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=spec["concurrency"], max_keepalive_connections=spec["concurrency"])
    async with httpx.AsyncClient(base_url=spec["base_url"], limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + duration if duration else None

        async def worker() -> None:
            nonlocal remaining
            while True:
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                req = next(requests)
                headers = {"X-API-Key": next(keys)} if req.get("auth") else {}
                t0 = time.perf_counter()
                resp = await client.request(req.get("method", "GET"), req["path"], json=req.get("json"), headers=headers)
                await resp.aread()
                dt = time.perf_counter() - t0
                statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1
                if 200 <= resp.status_code < 300:
                    latencies.append(dt * 1000)

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        elapsed = time.perf_counter() - started
    return {
        "requests": sum(statuses.values()), "ok": len(latencies), "statuses": statuses, "elapsed_s": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1), "p50_ms": _pct(latencies, 50), "p99_ms": _pct(latencies, 99),
    }


def main() -> None:
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))


if __name__ == "__main__":
    main()
