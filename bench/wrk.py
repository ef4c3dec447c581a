"""Throughput with wrk: a C load generator that does not saturate before the server does.

Every figure is a ratio to the trivial app (``bench.trivial_app``) measured in the same run, with
runs interleaved (trivial, target, trivial, target, ...) so load from elsewhere on this shared
machine hits both alike; the figure is the median of the per-run values. Server CPU per request is
read from ``/proc/<pid>/stat`` (user + system time of the server process over the run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.util import PY, ROOT, free_port, median

DURATION_S = 5
CONNECTIONS = 8
THREADS = 1
RUNS = 3
_TICK = os.sysconf("SC_CLK_TCK")


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's ``wrk`` package when missing (as .ci/run installs redis-server)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, check=True)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and cannot be installed here (apt-get install wrk)")
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass(frozen=True)
class Target:
    """One request wrk repeats: a GET by default; ``body`` makes it a POST whose JSON body gets a
    fresh ``{n}`` (a counter) per request, so creates do not collide on unique names."""

    name: str
    url: str
    pid: int
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def script(self, folder: Path) -> Path | None:
        if self.body is None:
            return None
        headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in self.headers)
        template = self.body.replace('"', '\\"')
        path = folder / f"{self.name}.lua"
        path.write_text(
            'wrk.method = "POST"\n' + headers + 'wrk.headers["Content-Type"] = "application/json"\n'
            "counter = 0\n"
            "request = function()\n"
            "  counter = counter + 1\n"
            f'  local body = string.gsub("{template}", "{{n}}", tostring(counter) .. "-" .. tostring(os.time()))\n'
            "  return wrk.format(nil, nil, nil, body)\n"
            "end\n")
        return path


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(target: Target, *, duration_s: int = DURATION_S, connections: int = CONNECTIONS, threads: int = THREADS) -> WrkResult:
    """One wrk run against ``target``; raises when wrk fails or nothing was answered."""
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", "--timeout", "10s"]
        script = target.script(Path(tmp))
        if script is not None:
            cmd += ["-s", str(script)]
        else:
            for k, v in target.headers:
                cmd += ["-H", f"{k}: {v}"]
        cmd.append(target.url)
        cpu0 = cpu_seconds(target.pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 30)
        cpu1 = cpu_seconds(target.pid)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.strip() or out.stdout.strip()}")
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    lat = {p: _ms(v, u) for p, v, u in _LATENCY.findall(text)}
    if requests == 0:
        raise RuntimeError(f"wrk got no answer from {target.url}")
    return WrkResult(rps, requests, non_2xx, errors, lat.get("50", 0.0), lat.get("99", 0.0),
                     (cpu1 - cpu0) * 1000 / requests)


def interleaved(floor: Target, targets: list[Target], runs: int = RUNS, **kw: Any) -> dict[str, dict[str, Any]]:
    """For each target: median req/s ÷ the floor's req/s measured just before it, over ``runs`` rounds."""
    per: dict[str, list[tuple[WrkResult, WrkResult]]] = {t.name: [] for t in targets}
    for _ in range(runs):
        for t in targets:
            base = run_wrk(floor, **kw)
            per[t.name].append((base, run_wrk(t, **kw)))
    out: dict[str, dict[str, Any]] = {}
    for name, pairs in per.items():
        ratios = [r.rps / b.rps for b, r in pairs]
        out[name] = {
            "ratio": round(median(ratios), 3),
            "ratios": [round(x, 3) for x in ratios],
            "rps": round(median([r.rps for _, r in pairs]), 1),
            "floor_rps": round(median([b.rps for b, _ in pairs]), 1),
            "cpu_ms_per_request": round(median([r.cpu_ms_per_request for _, r in pairs]), 3),
            "p50_ms": round(median([r.p50_ms for _, r in pairs]), 2),
            "p99_ms": round(median([r.p99_ms for _, r in pairs]), 2),
            "non_2xx": sum(r.non_2xx for _, r in pairs),
            "socket_errors": sum(r.errors for _, r in pairs),
            "requests": sum(r.requests for _, r in pairs),
        }
    return out


class TrivialApp:
    """``python -m bench.trivial_app`` on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([PY, "-m", "bench.trivial_app", str(self.port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/ping"

    def wait_ready(self, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("trivial app exited")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("trivial app did not answer in time")

    def target(self) -> Target:
        return Target("trivial", self.url, self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
