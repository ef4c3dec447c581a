"""Helpers shared by the figures: the result record, statistics, an in-process ASGI caller,
bench settings, and the local host subprocess."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# Generous per-user limits for in-process cores: the limiter still runs (it is part of the pipeline cost).
BENCH_LIMITS = {"enabled": True, "groups": {g: "1000000/minute" for g in ("read", "write", "market", "chat")}}


@dataclass
class Figure:
    """One measured figure. `met` is None when the target does not apply (informational rows)."""

    key: str
    name: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    notes: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("MET" if self.met else "MISSED")

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "target": self.target,
                "verdict": self.verdict, "notes": self.notes, **self.data}


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size (VmHWM) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not found")


def bench_settings(tmp: Path, **sections: Any):
    """Test settings (tests/conftest.make_settings: embedded store, memory cache, offline
    providers and model, ADMIN_KEY) with bench rate limits; `sections` override whole keys."""
    from tests.conftest import make_settings

    return make_settings(tmp, **{"rate_limits": BENCH_LIMITS, **sections})


def new_core(settings: Any, **kw: Any):
    """A Core with the demo admin seeded, installed as the process core; returns (core, previous)."""
    from shared.runtime import build_core, set_core

    core = build_core(settings, **kw)
    core.services.auth.seed_local_admin()
    if not core.services.auth.authenticate({"x-api-key": admin_key()}):
        raise RuntimeError("bench admin key not accepted")
    return core, set_core(core)


def admin_key() -> str:
    from tests.conftest import ADMIN_KEY

    return ADMIN_KEY


class AsgiCaller:
    """Calls an ASGI app directly: a hand-built scope, receive and send; no client, no socket."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        raw_path, _, query = path.partition("?")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(),
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("bench", 80),
            "headers": [(b"host", b"bench")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.disconnect"}

        status = 0
        body: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(body)


class LocalHost:
    """`python -m devhost` as a subprocess (APP_ENV=local, temporary LOCAL_DATA_DIR, LOG_LEVEL=WARNING
    unless `overrides` say otherwise; timers off so they do not compete with the load)."""

    def __init__(self, data_dir: Path, overrides: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "MONGODB_", "OPENAI_", "MODEL_"))}
        env.update(APP_ENV="local", LOCAL_DATA_DIR=str(data_dir), HOST="127.0.0.1", PORT=str(self.port),
                   LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", RUN_TIMERS="0")
        env.update(overrides or {})
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir.parent / "devhost.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PY, "-m", "devhost"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until /api/health answers."""
        import httpx

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devhost exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/api/health", timeout=1).status_code in (200, 503):
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("devhost did not answer in time")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def run_load(spec: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
    """Run `python -m bench.load` with `spec` (JSON) in its own process; returns its JSON result."""
    out = subprocess.run([PY, "-m", "bench.load", json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"load process failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
