"""Runs every figure, prints the table and one `BENCH_JSON ` line, writes bench-results.json."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import figures as f
from bench.throughput import fig_throughput
from bench.util import ROOT, Figure

FIGURE_ORDER = ("import_ratio", "heavy_modules", "rps_health", "rps_quote", "rps_quote_redis", "rps_users_me",
                "rps_workspaces_page", "logging_cost", "insert_growth", "writers_32", "page_depth", "first_200",
                "pipeline_info", "pipeline_warning", "json_serializer", "redis_round_trips", "upstream_calls_stampede", "sse_offline", "sse_compatible",
                "rss_start", "rss_after_mixed", "database_down_p50")


def _table(figs: list[Figure]) -> str:
    rows = [("#", "figure", "value", "target", "result", "notes")]
    for i, fig in enumerate(figs, 1):
        value = "n/a" if fig.value is None else f"{fig.value:g} {fig.unit}"
        rows.append((str(i), fig.name, value, fig.target, fig.verdict, fig.notes))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + " | " + row[5])
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 5)
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ.setdefault("APP_ENV", "test")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="stockagent-bench-"))
    results: list[Figure] = []
    errors: dict[str, str] = {}
    profile = ""
    from tests.integration.redis_server import RedisServer

    redis = RedisServer()
    try:
        redis.start()
        steps = [
            ("import", lambda: f.fig_import()),
            ("pipeline", lambda: f.fig_pipeline(tmp / "pipeline", redis.port)),
            ("redis_round_trips", lambda: f.fig_redis_round_trips(tmp / "redis", redis.port)),
            ("throughput", lambda: fig_throughput(tmp / "throughput", redis.port)),
            ("local_host", lambda: f.fig_local_host(tmp / "host")),
            ("single_flight", lambda: f.fig_single_flight(tmp / "stampede")),
            ("database_down", lambda: f.fig_database_down(tmp / "database_down")),
            ("sse", lambda: f.fig_sse(tmp / "sse")),
        ]
        for name, step in steps:
            t0 = time.perf_counter()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            try:
                out = step()
                if name == "pipeline":
                    out, profile = out
                results.extend(out)
            except Exception as exc:  # one broken figure must not hide the others
                errors[name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            print(f"bench: {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        redis.close()
        shutil.rmtree(tmp, ignore_errors=True)

    results.sort(key=lambda fig: FIGURE_ORDER.index(fig.key) if fig.key in FIGURE_ORDER else 99)
    print(_table(results))
    for name, message in errors.items():
        print(f"ERROR in {name}: {message}")
    parts = next((fig.data.get("components_us") for fig in results if fig.key == "pipeline_warning"), None)
    if parts:
        print("\nPipeline breakdown (median us per call, each part timed on its own):")
        for label, value in parts.items():
            print(f"  {value:8.1f}  {label}")
    if profile:
        print("\nProfile of the cache-hit pipeline (cProfile, thread pool replaced by inline calls, top by own time):")
        print(profile)
    payload = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "duration_s": round(time.perf_counter() - started, 1),
        "figures": {fig.key: fig.as_json() for fig in results},
        "errors": errors,
    }
    line = json.dumps(payload, separators=(",", ":"), default=str)
    print("BENCH_JSON " + line)
    (ROOT / "bench-results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    sys.exit(1 if errors else 0)
