"""Issue 17's targets: throughput ratios to the trivial app (wrk), logging cost, the embedded store as it
fills, and the local host's start on an existing data dir. Every figure is measured in this run."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.util import Figure, LocalHost
from bench.wrk import Target, TrivialApp, interleaved, run_wrk

KEY = "local-dev-key"  # the demo admin of APP_ENV=local, as `make run` serves it
AUTH = (("X-API-Key", KEY),)
QUOTE = "/api/v1/market/AAPL/quote"
# The limiter still runs on every request (its cost is part of the path); the limits are only raised
# so that a load of thousands of requests per second measures serving, not 429s.
HIGH_LIMITS = ",".join(f"{g}=100000000/minute" for g in ("read", "write", "market", "chat", "auth_failures"))


def _host(data: Path, **env: str) -> LocalHost:
    host = LocalHost(data, {"LOG_LEVEL": "INFO", "RATE_LIMITS": HIGH_LIMITS, **env})
    host.wait_ready()
    return host


def _client(host: LocalHost) -> Any:
    import httpx

    return httpx.Client(base_url=host.base_url, headers=dict(AUTH), timeout=30)


def _post_workspaces(host: LocalHost, n: int, prefix: str, concurrency: int = 4) -> None:
    with _client(host) as c, ThreadPoolExecutor(concurrency) as pool:
        def one(i: int) -> None:
            r = c.post("/api/v1/workspaces", json={"name": f"{prefix}-{i}"})
            if r.status_code != 201:
                raise RuntimeError(f"create workspace: {r.status_code} {r.text[:200]}")

        list(pool.map(one, range(n)))


def _latency_ms(host: LocalHost, method: str, path: str, n: int, body: Any = None) -> float:
    """Median latency of ``n`` sequential requests (one client, keep-alive)."""
    samples = []
    with _client(host) as c:
        for i in range(n):
            t0 = time.perf_counter()
            r = c.request(method, path, json=(body(i) if callable(body) else body))
            samples.append((time.perf_counter() - t0) * 1000)
            if r.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:200]}")
    return statistics.median(samples)


def _deep_cursor(host: LocalHost, pages: int) -> tuple[str, int]:
    """The cursor of page ``pages`` of the caller's workspaces (20 a page), and how deep it got."""
    cursor, depth = None, 0
    with _client(host) as c:
        for depth in range(1, pages + 1):
            r = c.get("/api/v1/workspaces", params={"limit": 20, **({"cursor": cursor} if cursor else {})})
            r.raise_for_status()
            nxt = r.json().get("next_cursor")
            if not nxt:
                break
            cursor = nxt
    return cursor or "", depth


def _ratio_fig(key: str, name: str, r: dict[str, Any], target: float) -> Figure:
    return Figure(key, name, r["ratio"], "x", f">= {target:g}", r["ratio"] >= target and r["non_2xx"] == 0,
                  f"{r['rps']:.0f} req/s vs trivial {r['floor_rps']:.0f}; server CPU {r['cpu_ms_per_request']:.2f} ms/req; "
                  f"p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms; runs {r['ratios']}"
                  + (f"; {r['non_2xx']} non-2xx" if r["non_2xx"] else ""), r)


def fig_throughput(tmp: Path, redis_port: int) -> list[Figure]:
    trivial = TrivialApp()
    hosts: list[LocalHost] = []
    try:
        trivial.wait_ready()
        floor = trivial.target()
        info = _host(tmp / "info")
        hosts.append(info)
        warn = _host(tmp / "warning", LOG_LEVEL="WARNING")
        hosts.append(warn)
        red = _host(tmp / "redis", REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis_port))
        hosts.append(red)
        for h in hosts:
            with _client(h) as c:
                c.get(QUOTE).raise_for_status()  # the quote is cached from here on
        _post_workspaces(info, 100, "seed")
        ratios = interleaved(floor, [
            Target("health", info.base_url + "/api/health", info.proc.pid),
            Target("quote", info.base_url + QUOTE, info.proc.pid, AUTH),
            Target("quote_warning", warn.base_url + QUOTE, warn.proc.pid, AUTH),
            Target("quote_redis", red.base_url + QUOTE, red.proc.pid, AUTH),
            Target("users_me", info.base_url + "/api/v1/users/me", info.proc.pid, AUTH),
            Target("workspaces_page", info.base_url + "/api/v1/workspaces?limit=20", info.proc.pid, AUTH),
        ])
        logging_ratio = ratios["quote"]["rps"] / ratios["quote_warning"]["rps"] if ratios["quote_warning"]["rps"] else 0.0

        # The embedded store as it fills: one create at ~100 workspaces, a burst of 32 writers, fill to 2,000.
        insert_100 = _latency_ms(info, "POST", "/api/v1/workspaces", 30, lambda i: {"name": f"at100-{i}"})
        burst = run_wrk(Target("create", info.base_url + "/api/v1/workspaces", info.proc.pid, AUTH,
                               body='{"name": "burst-{n}"}'), connections=32)
        have = 100 + 30 + burst.requests - burst.non_2xx - burst.errors
        if have < 2000:
            _post_workspaces(info, 2000 - have, "fill")
        insert_2000 = _latency_ms(info, "POST", "/api/v1/workspaces", 30, lambda i: {"name": f"at2000-{i}"})
        deep, depth = _deep_cursor(info, 90)
        first_ms = _latency_ms(info, "GET", "/api/v1/workspaces?limit=20", 30)
        deep_ms = _latency_ms(info, "GET", f"/api/v1/workspaces?limit=20&cursor={deep}", 30)

        # Start on an existing data dir: the info host's, after it stops.
        info.close()
        hosts.remove(info)
        started = time.monotonic()
        again = LocalHost(tmp / "info", {"LOG_LEVEL": "INFO"})
        hosts.append(again)
        first_200 = _first_200(again, started)
    finally:
        for h in hosts:
            h.close()
        trivial.close()

    insert_ratio = insert_2000 / insert_100
    page_ratio = deep_ms / first_ms
    return [
        _ratio_fig("rps_health", "GET /api/health req/s ÷ trivial app", ratios["health"], 0.60),
        _ratio_fig("rps_quote", "cache-hit quote req/s ÷ trivial app (memory cache, INFO)", ratios["quote"], 0.50),
        _ratio_fig("rps_quote_redis", "cache-hit quote req/s ÷ trivial app (Redis)", ratios["quote_redis"], 0.40),
        _ratio_fig("rps_users_me", "GET /users/me req/s ÷ trivial app", ratios["users_me"], 0.40),
        _ratio_fig("rps_workspaces_page", "20-workspace page req/s ÷ trivial app (embedded store)", ratios["workspaces_page"], 0.15),
        Figure("logging_cost", "quote req/s at INFO ÷ at WARNING", round(logging_ratio, 3), "x", ">= 0.85", logging_ratio >= 0.85,
               f"INFO {ratios['quote']['rps']:.0f} req/s, WARNING {ratios['quote_warning']['rps']:.0f} req/s "
               f"(each the median of {len(ratios['quote']['ratios'])} wrk runs)", {}),
        Figure("insert_growth", "POST /workspaces latency at 2,000 ÷ at 100 documents", round(insert_ratio, 2), "x", "<= 1.5",
               insert_ratio <= 1.5, f"{insert_100:.1f} ms at ~100, {insert_2000:.1f} ms at >= 2,000 (median of 30 each)",
               {"at_100_ms": round(insert_100, 2), "at_2000_ms": round(insert_2000, 2)}),
        Figure("writers_32", "non-2xx answers to 32 concurrent writers (5 s)", burst.non_2xx + burst.errors, "answers", "0",
               burst.non_2xx + burst.errors == 0, f"{burst.requests} creates, {burst.rps:.0f} req/s, p99 {burst.p99_ms} ms",
               {"requests": burst.requests, "rps": burst.rps, "socket_errors": burst.errors}),
        Figure("page_depth", f"page latency at page {depth} ÷ first page", round(page_ratio, 2), "x", "<= 1.5",
               page_ratio <= 1.5, f"first {first_ms:.1f} ms, page {depth} {deep_ms:.1f} ms (median of 30 each)",
               {"first_ms": round(first_ms, 2), "deep_ms": round(deep_ms, 2), "depth": depth}),
        Figure("first_200", "local host: start to first 200 on an existing data dir", round(first_200, 2), "s", "< 1.5",
               first_200 < 1.5, "process start until GET /api/health answers 200", {}),
    ]


def _first_200(host: LocalHost, started: float, timeout: float = 60.0) -> float:
    import httpx

    while time.monotonic() - started < timeout:
        if host.proc.poll() is not None:
            raise RuntimeError(f"devhost exited: {host.log_path.read_text()[-2000:]}")
        try:
            if httpx.get(host.base_url + "/api/health", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError("devhost did not answer 200 in time")
