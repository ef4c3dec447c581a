"""One function per figure of the issue. Each returns `Figure`s; none asserts a time."""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import subprocess
import sys
import threading
import time
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from bench.util import (PY, ROOT, AsgiCaller, Figure, LocalHost, admin_key, bench_settings, free_port, median,
                        new_core, percentile, run_load, vm_hwm_kib)

HEAVY = ("openai", "yfinance", "pandas", "numpy", "azure.identity", "azure.keyvault")
QUOTE = "/api/v1/market/AAPL/quote"
CHAT_BODY = {"message": "Latest news on AAPL"}


# ---------------------------------------------------------------- 1. import cost


def fig_import(runs: int = 7) -> list[Figure]:
    """Wall time of `python -c "import X"` minus `python -c "pass"`, fresh interpreters, runs interleaved."""
    stmts = {"pass": "pass", "azure.functions": "import azure.functions", "function_app": "import function_app",
             # What the worker loads anyway for HTTP streams: a second, informational denominator.
             "sdk+streams": "import azure.functions, azurefunctions.extensions.http.fastapi"}
    times: dict[str, list[float]] = {k: [] for k in stmts}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # never write .pyc into the tree; caches exist already
    for _ in range(runs):
        for name, stmt in stmts.items():
            t0 = time.perf_counter()
            subprocess.run([PY, "-c", stmt], cwd=ROOT, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    base = median(times["pass"])
    fa, az = median(times["function_app"]) - base, median(times["azure.functions"]) - base
    ratio = fa / az
    sdk_streams = median(times["sdk+streams"]) - base

    probe = "import function_app, sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([PY, "-X", "importtime", "-c", probe], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in modules)]
    top = _importtime_top(out.stderr, 8)
    floor_ratio = fa / sdk_streams
    return [
        Figure("import_ratio", "import function_app / import azure.functions + HTTP-streams extension", round(floor_ratio, 2),
               "x", "<= 1.25", floor_ratio <= 1.25,
               f"{fa * 1000:.0f} ms vs {sdk_streams * 1000:.0f} ms, the floor the worker pays anyway (median of {runs}, "
               f"interpreter start {base * 1000:.0f} ms subtracted); vs azure.functions alone ({az * 1000:.0f} ms): "
               f"{ratio:.2f}x; largest nested imports (ms): "
               + ", ".join(f"{k} {v:.0f}" for k, v in list(top.items())[:4]),
               {"function_app_ms": round(fa * 1000, 1), "azure_functions_ms": round(az * 1000, 1),
                "interpreter_ms": round(base * 1000, 1), "runs": runs,
                "sdk_plus_streams_ms": round(sdk_streams * 1000, 1), "ratio_vs_sdk_plus_streams": round(fa / sdk_streams, 2), "largest_imports_ms": top}),
        Figure("heavy_modules", "heavy modules loaded by import function_app", len(heavy), "modules", "none",
               not heavy, ", ".join(heavy) or f"none of {', '.join(HEAVY)}; {len(modules)} modules in sys.modules",
               {"heavy": heavy, "modules_loaded": len(modules)}),
    ]


def _importtime_top(stderr: str, n: int) -> dict[str, float]:
    """Largest imports under function_app (cumulative ms, nested ones included) from `-X importtime`."""
    top: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (p for p in line[len("import time:"):].split("|"))
        if not cumulative.strip().isdigit() or name.strip() == "function_app":
            continue  # the header line, or the root itself
        top[name.strip()] = round(int(cumulative) / 1000, 1)
    return dict(sorted(top.items(), key=lambda kv: -kv[1])[:n])


# ---------------------------------------------------------------- 2. pipeline overhead vs a Redis GET


async def _time_pipeline(caller: AsgiCaller, n: int, warmup: int = 200) -> tuple[list[float], int]:
    headers = {"X-API-Key": admin_key()}
    errors = 0
    for _ in range(warmup):
        await caller.get(QUOTE, headers)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, _ = await caller.get(QUOTE, headers)
        samples.append(time.perf_counter() - t0)
        errors += status != 200
    return samples, errors


async def _interleaved(caller: AsgiCaller, redis_port: int, n: int, blocks: int = 10) -> dict[str, Any]:
    """Redis GET, pipeline at INFO and pipeline at WARNING, measured in alternating blocks so that
    load from other processes on this shared machine hits all three alike."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_port)
    client.set("bench:small", b"x" * 64)
    root = logging.getLogger()
    out: dict[str, Any] = {"redis": [], "info": [], "warning": [], "errors": 0}
    await _time_pipeline(caller, 0, warmup=300)
    for _ in range(300):
        client.get("bench:small")
    per_block = n // blocks
    for _ in range(blocks):
        for _ in range(per_block):
            t0 = time.perf_counter()
            client.get("bench:small")
            out["redis"].append(time.perf_counter() - t0)
        for level, name in ((logging.INFO, "info"), (logging.WARNING, "warning")):
            root.setLevel(level)
            samples, errs = await _time_pipeline(caller, per_block, warmup=0)
            out[name].extend(samples)
            out["errors"] += errs
    client.close()
    return out


async def _time_thread_hop(executor: Any, n: int = 2000) -> float:
    """Median cost of one `run_in_executor` round trip of a no-op (what `ctx.run` pays per call)."""
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await loop.run_in_executor(executor, int)
        samples.append(time.perf_counter() - t0)
    return median(samples)


def fig_pipeline(tmp: Path, redis_port: int, n: int = 2000) -> tuple[list[Figure], str]:
    """Per-request time of the ASGI app called in-process for a cache-hit quote, over a Redis GET."""
    from devhost.app import build_asgi_app
    from shared.logging import configure_logging
    from shared.runtime import set_core

    core, previous = new_core(bench_settings(tmp))
    devnull = open(os.devnull, "w")
    root = logging.getLogger()
    level_before = root.level
    try:
        caller = AsgiCaller(build_asgi_app())
        configure_logging("INFO")
        for handler in [h for h in root.handlers if isinstance(h, logging.StreamHandler)]:  # keep formatting and filtering (their cost is measured), drop the output
            handler.setStream(devnull)
        timings = asyncio.run(_interleaved(caller, redis_port, n))
        redis_get, info, warn = median(timings["redis"]), timings["info"], timings["warning"]
        errs_info = errs_warn = timings["errors"]
        hop = asyncio.run(_time_thread_hop(core.executor))
        components = _component_costs(core, hop)
        components.update(asyncio.run(_framework_costs(core, caller)))
        root.setLevel(logging.WARNING)
        profile = _profile_pipeline(core, caller, n // 2)
        serializers = _serializer_costs(core)
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h.stream is devnull]:
            handler.setStream(sys.stderr)
        root.setLevel(level_before)
        set_core(previous)
        core.close()
        devnull.close()
    figures = []
    for key, label, samples, errs in (("pipeline_info", "INFO (2 JSON log lines/request, to /dev/null)", info, errs_info),
                                      ("pipeline_warning", "WARNING (no request log lines)", warn, errs_warn)):
        med = median(samples)
        figures.append(Figure(
            key, f"pipeline / Redis GET, logging {label}", round(med / redis_get, 2), "x", "<= 0.5", med / redis_get <= 0.5,
            f"pipeline {med * 1e6:.0f} us (p99 {percentile(samples, 99) * 1e6:.0f} us) vs Redis GET {redis_get * 1e6:.0f} us"
            + (f"; {errs} non-200 (both rows)" if errs else ""),
            {"pipeline_us": round(med * 1e6, 1), "pipeline_p99_us": round(percentile(samples, 99) * 1e6, 1),
             "redis_get_us": round(redis_get * 1e6, 1), "calls": n, "non_200": errs}))
    for fig in figures:
        fig.data["components_us"] = components
    figures[1].notes += "; breakdown below the table"
    winner = min(serializers, key=serializers.get)
    figures.append(Figure("json_serializer", "response body serializer for a quote", serializers[winner], "us", "informational",
                          None, f"fastest: {winner}; " + ", ".join(f"{k} {v} us" for k, v in serializers.items()),
                          {"serializers_us": serializers, "fastest": winner}))
    return figures, profile


class _InlineExecutor(Executor):
    """Runs submitted work at once on the calling thread, so cProfile (one thread) sees all of it."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)
        return future


def _profile_pipeline(core: Any, caller: AsgiCaller, n: int) -> str:
    """cProfile of `n` cache-hit calls with the core's thread pool replaced by inline execution
    (the thread hops are measured separately), top entries by own time."""
    pool = core.executor
    core.executor = _InlineExecutor()
    prof = cProfile.Profile()
    try:
        prof.enable()
        asyncio.run(_time_pipeline(caller, n, warmup=0))
        prof.disable()
    finally:
        core.executor = pool
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime")
    stats.print_stats(10)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return "\n".join(lines[start:start + 11])


def _median_us(fn: Any, n: int = 1000) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return round(median(samples) * 1e6, 1)


def _component_costs(core: Any, hop_s: float) -> dict[str, float]:
    """Median cost (us) of the parts of a cache-hit quote request, each called directly."""
    from shared.http.api import dump_json

    headers = {"x-api-key": admin_key()}
    user = core.services.auth.authenticate(headers)
    quote = core.services.market.get_quote("AAPL")
    log = logging.getLogger("stockagent.http")
    logging.getLogger().setLevel(logging.INFO)
    costs = {
        "one thread-pool hop (the handler; a new API key adds one)": round(hop_s * 1e6, 1),
        "auth.authenticate": _median_us(lambda: core.services.auth.authenticate(headers)),
        "limiter.hit": _median_us(lambda: core.limiter.hit("market", f"user:{user.id}:parts")),
        "market.get_quote (cache hit)": _median_us(lambda: core.services.market.get_quote("AAPL")),
        "dump_json(quote)": _median_us(lambda: dump_json(quote)),
        "one INFO log line (JSON + redaction)": _median_us(lambda: log.info("request end", extra={
            "method": "GET", "route": "/api/v1/market/{symbol}/quote", "status": 200, "duration_ms": 0.4})),
    }
    logging.getLogger().setLevel(logging.WARNING)
    return costs


async def _framework_costs(core: Any, caller: AsgiCaller) -> dict[str, float]:
    """Where the rest goes: Starlette alone, Starlette with the app's route table (the quote route is
    tried after most others), and the whole pipeline with the thread pool replaced by inline calls."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def trivial(request: Any) -> Response:
        return Response(b"{}", media_type="application/json")

    template = "/api/v1/market/{symbol}/quote"
    routes = list(caller.app.routes)
    position = next(i for i, r in enumerate(routes) if getattr(r, "path", "") == template)
    same_table = [Route(template, trivial) if getattr(r, "path", "") == template else r for r in routes]
    out = {}
    for label, app in (("Starlette, 1 route, trivial handler", Starlette(routes=[Route(template, trivial)])),
                       (f"Starlette, app route table (quote is route {position + 1} of {len(routes)}), trivial handler",
                        Starlette(routes=same_table))):
        samples, _ = await _time_pipeline(AsgiCaller(app), 1000)
        out[label] = round(median(samples) * 1e6, 1)
    pool = core.executor
    core.executor = _InlineExecutor()
    try:
        samples, _ = await _time_pipeline(caller, 1000)
    finally:
        core.executor = pool
    out["whole pipeline, thread pool replaced by inline calls"] = round(median(samples) * 1e6, 1)
    return out


def _serializer_costs(core: Any, n: int = 5000) -> dict[str, float]:
    """Median-of-5 per-call cost (us) of serializing a quote: the app's pydantic path, orjson and stdlib json."""
    import orjson

    from shared.http.api import dump_json

    quote = core.services.market.get_quote("AAPL")
    as_dict = json.loads(dump_json(quote))
    candidates = {
        "pydantic to_json (what render() uses for models)": lambda: dump_json(quote),
        "orjson.dumps(dict)": lambda: orjson.dumps(as_dict),
        "json.dumps(dict).encode()": lambda: json.dumps(as_dict).encode(),
    }
    out = {}
    for name, fn in candidates.items():
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n // 5):
                fn()
            rounds.append((time.perf_counter() - t0) / (n // 5))
        out[name] = round(median(rounds) * 1e6, 2)
    return out


# ---------------------------------------------------------------- 3. Redis round trips per cache hit


class _RoundTripCounter:
    """Counts redis-py `send_packed_command` calls (one per request/pipeline written = one round trip)."""

    def __init__(self) -> None:
        self.count = 0
        self.active = False
        self._lock = threading.Lock()
        self._original = None

    def __enter__(self) -> "_RoundTripCounter":
        from redis.connection import AbstractConnection

        self._original = original = AbstractConnection.send_packed_command
        counter = self

        def counting(conn: Any, command: Any, check_health: bool = True) -> Any:
            if counter.active:
                with counter._lock:
                    counter.count += 1
            return original(conn, command, check_health)

        AbstractConnection.send_packed_command = counting
        return self

    def __exit__(self, *exc: Any) -> None:
        from redis.connection import AbstractConnection

        AbstractConnection.send_packed_command = self._original


def fig_redis_round_trips(tmp: Path, redis_port: int, n: int = 200) -> list[Figure]:
    import redis

    from devhost.app import build_asgi_app
    from shared.runtime import set_core

    settings = bench_settings(tmp, redis={"host": "127.0.0.1", "port": redis_port})
    core, previous = new_core(settings)
    probe = redis.Redis(host="127.0.0.1", port=redis_port)
    try:
        if core.cache.mode != "redis":
            raise RuntimeError(f"cache is in {core.cache.mode} mode, not redis")
        caller = AsgiCaller(build_asgi_app())
        headers = {"X-API-Key": admin_key()}

        async def requests(count: int) -> int:
            bad = 0
            for _ in range(count):
                status, _ = await caller.get(QUOTE, headers)
                bad += status != 200
            return bad

        with _RoundTripCounter() as counter:
            asyncio.run(requests(20))  # warm: the quote is cached, connections are open, auth is warm
            before = probe.info("all")
            counter.active = True
            bad = asyncio.run(requests(n))
            counter.active = False
            after = probe.info("all")
    finally:
        set_core(previous)
        core.close()
        probe.close()
    commands = after["total_commands_processed"] - before["total_commands_processed"] - 1  # the first INFO
    per_cmd = {}
    for key, stat in after.items():
        if key.startswith("cmdstat_"):
            delta = stat["calls"] - before.get(key, {}).get("calls", 0)
            if key == "cmdstat_info":
                delta -= 1
            if delta:
                per_cmd[key[len("cmdstat_"):]] = round(delta / n, 2)
    trips = counter.count / n
    return [Figure("redis_round_trips", "Redis round trips per cache-hit quote", round(trips, 2), "per request", "<= 2",
                   trips <= 2, f"client-side sends; server counted {commands / n:.2f} commands/request: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(per_cmd.items())) + (f"; {bad} non-200" if bad else ""),
                   {"commands_per_request": round(commands / n, 2), "commands_by_name": per_cmd, "requests": n})]


# ---------------------------------------------------------------- 4 + 7. local host: req/s and peak RSS


def _create_users(base_url: str, count: int) -> list[str]:
    """Users with their own API key (the local host's per-user limits are 120 market/20 chat per minute)."""
    import httpx

    keys = []
    with httpx.Client(base_url=base_url, headers={"X-API-Key": "local-dev-key"}, timeout=10) as client:
        stamp = int(time.time() * 1000)
        for i in range(count):
            r = client.post("/api/v1/users", json={"email": f"bench{i}-{stamp}@example.com", "name": f"Bench {i}"})
            r.raise_for_status()
            keys.append(r.json()["api_key"]["secret"])
    return keys


def fig_local_host(tmp: Path, mixed: int = 1000) -> list[Figure]:
    """Starts `python -m devhost`; peak RSS after start and after `mixed` requests of every kind (chat
    streams included, which is why this load is the Python generator: wrk cannot read SSE)."""
    host = LocalHost(tmp / "data")
    try:
        ready_s = host.wait_ready()
        rss_start = vm_hwm_kib(host.proc.pid)
        keys = _create_users(host.base_url, 50)
        mix = [{"path": "/api/health"}, {"path": QUOTE, "auth": True},
               {"path": "/api/v1/market/AAPL/history?period=3mo&interval=1d", "auth": True},
               {"path": "/api/v1/market/AAPL/news?limit=5", "auth": True},
               {"method": "POST", "path": "/api/v1/chat/stream", "json": CHAT_BODY, "auth": True}]
        mixed_result = run_load({"base_url": host.base_url, "requests": mix, "keys": keys, "concurrency": 8, "count": mixed})
        rss_after = vm_hwm_kib(host.proc.pid)
    finally:
        host.close()
    return [
        Figure("rss_start", "local host peak RSS after start", round(rss_start / 1024, 1), "MiB", "informational", None,
               f"ready in {ready_s:.1f} s", {"vm_hwm_kib": rss_start}),
        Figure("rss_after_mixed", f"local host peak RSS after {mixed} mixed requests", round(rss_after / 1024, 1), "MiB",
               "informational", None,
               f"+{(rss_after - rss_start) / 1024:.1f} MiB; health/quote/history/news/chat round-robin, c=8, "
               f"statuses {mixed_result['statuses']}, {mixed_result['elapsed_s']:.1f} s",
               {"vm_hwm_kib": rss_after, "load": mixed_result}),
    ]


# ---------------------------------------------------------------- 5. single-flight under a cold stampede


class CountingProvider:
    """Wraps a market provider; counts `get_quote` calls and adds a fixed upstream latency so the
    concurrent requests really overlap (an instant provider would let them finish one by one)."""

    def __init__(self, inner: Any, latency_s: float) -> None:
        self._inner = inner
        self._latency_s = latency_s
        self._lock = threading.Lock()
        self.quote_calls = 0

    def get_quote(self, symbol: str) -> Any:
        with self._lock:
            self.quote_calls += 1
        time.sleep(self._latency_s)
        return self._inner.get_quote(symbol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def fig_single_flight(tmp: Path, n: int = 100, latency_s: float = 0.2) -> list[Figure]:
    import httpx

    from devhost.app import build_asgi_app
    from shared.market.providers.offline import OfflineProvider
    from shared.runtime import set_core

    counting = CountingProvider(OfflineProvider(), latency_s)
    core, previous = new_core(bench_settings(tmp), market_providers={"offline": counting})
    try:
        app = build_asgi_app()

        async def stampede() -> tuple[dict[int, int], float]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=30) as client:
                t0 = time.perf_counter()
                responses = await asyncio.gather(*(client.get("/api/v1/market/MSFT/quote", headers={"X-API-Key": admin_key()})
                                                   for _ in range(n)))
                elapsed = time.perf_counter() - t0
            statuses: dict[int, int] = {}
            for r in responses:
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            return statuses, elapsed

        statuses, elapsed = asyncio.run(stampede())
        stats = core.services.market.stats()
    finally:
        set_core(previous)
        core.close()
    calls = counting.quote_calls
    return [Figure("upstream_calls_stampede", f"upstream calls for {n} concurrent cold identical quotes", calls, "calls", "1",
                   calls == 1, f"provider latency {latency_s * 1000:.0f} ms; all answered in {elapsed * 1000:.0f} ms; "
                   f"statuses {statuses}; DataManager.stats upstream {stats.get('upstream')}",
                   {"statuses": {str(k): v for k, v in statuses.items()}, "elapsed_ms": round(elapsed * 1000, 1),
                    "manager_stats": stats.get("upstream"), "cache": stats.get("cache")})]


# ---------------------------------------------------------------- 5b. database down: the breaker fails fast


def fig_database_down(tmp: Path, n: int = 50, timeout_ms: int = 500) -> list[Figure]:
    """`n` concurrent requests that need the database, on a closed port, once the breaker has opened."""
    import httpx

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    # production: the core build does no start-up database work, as a worker coming up during an outage
    settings = bench_settings(tmp, app={"env": "production", "log_level": "CRITICAL"}, mongodb={
        "uri": f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        "server_selection_timeout_ms": timeout_ms, "timeout_ms": timeout_ms})
    core = build_core(settings)
    previous = set_core(core)
    headers = {"X-API-Key": admin_key()}
    try:
        app = build_asgi_app()

        async def run() -> tuple[list[float], list[float], dict[int, int]]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=30) as client:
                async def timed(path: str) -> tuple[int, float]:
                    t0 = time.perf_counter()
                    r = await client.get(path, headers=headers)
                    return r.status_code, (time.perf_counter() - t0) * 1000

                opening = [(await timed("/api/v1/workspaces"))[1]
                           for _ in range(settings.mongodb.breaker_failure_threshold)]
                results = await asyncio.gather(*(timed(("/api/v1/workspaces", "/api/v1/users/me")[i % 2]) for i in range(n)))
            statuses: dict[int, int] = {}
            for status, _ in results:
                statuses[status] = statuses.get(status, 0) + 1
            return opening, [ms for _, ms in results], statuses

        opening, times, statuses = asyncio.run(run())
        state = core.repos.breaker.state
    finally:
        set_core(previous)
        core.close()
    p50 = median(times)
    return [Figure("database_down_p50", f"{n} concurrent requests, database on a closed port, breaker open: p50",
                   round(p50, 1), "ms", "<= 300 ms", p50 <= 300 and statuses == {503: n},
                   f"max {max(times):.1f} ms; statuses {statuses}; breaker {state}; the {len(opening)} requests that "
                   f"opened it took {', '.join(f'{ms:.0f}' for ms in opening)} ms (server selection {timeout_ms} ms)",
                   {"p50_ms": round(p50, 1), "max_ms": round(max(times), 1), "statuses": {str(k): v for k, v in statuses.items()},
                    "opening_ms": [round(ms, 1) for ms in opening]})]


# ---------------------------------------------------------------- 6. SSE time to first event / first delta


class _Uvicorn:
    """uvicorn serving the ASGI app in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def _sse_timings(base_url: str) -> tuple[float, float | None, list[str]]:
    """(first event s, first delta s, event names) of one POST /api/v1/chat/stream."""
    import httpx

    first = delta = None
    names = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        t0 = time.perf_counter()
        with client.stream("POST", "/api/v1/chat/stream", json=CHAT_BODY, headers={"X-API-Key": admin_key()}) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"chat stream answered {resp.status_code}: {resp.read()[:300]!r}")
            for line in resp.iter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                    names.append(name)
                    now = time.perf_counter() - t0
                    first = now if first is None else first
                    if name == "delta" and delta is None:
                        delta = now
    return first, delta, names


def fig_sse(tmp: Path, runs: int = 5, first_token_s: float = 0.1) -> list[Figure]:
    from devhost.app import build_asgi_app
    from shared.runtime import set_core
    from tests.unit.ai.fake_openai import FakeOpenAIServer, text_reply

    figures = []
    app = build_asgi_app()
    with FakeOpenAIServer(responder=lambda body: text_reply("AAPL news: nothing market-moving today.",
                                                           first_delay=first_token_s)) as srv:
        variants = {
            "offline": bench_settings(tmp / "offline"),
            "compatible": bench_settings(tmp / "compatible", models={
                "provider": "compatible", "allow_fallback": False,
                "compatible": {"base_url": srv.base_url, "model": "fake", "api_key": "x"}}),
        }
        with _Uvicorn(app) as base_url:
            for name, settings in variants.items():
                core, previous = new_core(settings)
                try:
                    cold = _sse_timings(base_url)
                    warm = [_sse_timings(base_url) for _ in range(runs)]
                finally:
                    set_core(previous)
                    core.close()
                first = median([w[0] for w in warm])
                deltas = [w[1] for w in warm if w[1] is not None]
                delta = median(deltas) if deltas else None
                events = sorted(set(warm[-1][2]))
                notes = (f"first event {first * 1000:.0f} ms, first delta "
                         f"{'none' if delta is None else f'{delta * 1000:.0f} ms'} (median of {runs} warm); cold first request: "
                         f"event {cold[0] * 1000:.0f} ms, delta {'none' if cold[1] is None else f'{cold[1] * 1000:.0f} ms'}")
                data = {"first_event_ms": round(first * 1000, 1), "first_delta_ms": None if delta is None else round(delta * 1000, 1),
                        "cold_first_event_ms": round(cold[0] * 1000, 1),
                        "cold_first_delta_ms": None if cold[1] is None else round(cold[1] * 1000, 1), "events": events}
                if name == "offline":
                    figures.append(Figure("sse_offline", "SSE first delta, offline model", data["first_delta_ms"], "ms",
                                          "report", None, notes, data))
                else:
                    limit = (first_token_s + 0.05) * 1000
                    met = delta is not None and delta * 1000 <= limit
                    figures.append(Figure("sse_compatible", f"SSE first delta, model first token at {first_token_s * 1000:.0f} ms",
                                          data["first_delta_ms"], "ms", f"<= {limit:.0f} ms", met, notes,
                                          {**data, "model_requests": len(srv.requests)}))
    return figures
