"""The health report: every component probed concurrently, each with its own short timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shared.http.schemas import ComponentHealth, HealthReport

PROBE_TIMEOUT_S = 1.5
# Public endpoint: never raw error text, connection strings or host names (the backend description is
# on the admin metrics route instead).
SAFE_DETAILS = ("mode", "breaker", "error", "provider")
REPORT_TTL_S = 1.0  # health is public: a burst of probes costs one round of checks per second


async def _probe(core: Any, check: Any) -> tuple[bool, dict[str, Any], float]:
    started = time.perf_counter()
    try:
        ok, details = await asyncio.wait_for(core.run(check), PROBE_TIMEOUT_S)
    except TimeoutError:
        ok, details = False, {"error": "timeout"}
    except Exception as exc:  # a failing probe is an unhealthy component, not a failed request
        ok, details = False, {"error": type(exc).__name__}
    return ok, details, round((time.perf_counter() - started) * 1000, 2)


async def health_report(core: Any) -> HealthReport:
    """`unhealthy` when a required component is down, `degraded` when an optional one is.
    A report is reused for REPORT_TTL_S, so bursts of health checks do not multiply probes."""
    cached = getattr(core, "last_health", None)
    if cached is not None and time.monotonic() - cached[0] < REPORT_TTL_S:
        return cached[1]
    report = await _check(core)
    core.last_health = (time.monotonic(), report)
    return report


async def _check(core: Any) -> HealthReport:
    probes = core.services.health_probes()
    results = await asyncio.gather(*(_probe(core, p.check) for p in probes))
    components: dict[str, ComponentHealth] = {}
    overall = "healthy"
    for probe, (ok, details, latency) in zip(probes, results):
        status = details.get("status") if ok and details.get("status") in ("healthy", "degraded") else ("healthy" if ok else "unhealthy")
        if status == "unhealthy" and probe.required:
            overall = "unhealthy"
        elif status != "healthy" and overall == "healthy":
            overall = "degraded"
        safe = {k: details[k] for k in SAFE_DETAILS if k in details}
        components[probe.name] = ComponentHealth(status=status, required=probe.required, latency_ms=latency,
                                                 details=safe or None)
    return HealthReport(status=overall, version=core.settings.app.version, components=components)
