"""The health report: every component probed concurrently, each with its own short timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shared.http.schemas import ComponentHealth, HealthReport

PROBE_TIMEOUT_S = 1.5
SAFE_DETAILS = ("mode", "breaker", "error", "backend", "provider")  # never raw error text or connection strings


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
    """`unhealthy` when a required component is down, `degraded` when an optional one is."""
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
