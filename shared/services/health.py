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
# An authenticated caller also sees which upstream providers are unusable and why (breaker states, the
# misconfigured ones and the reason: a setting's name or the upstream's redacted rejection), still no host names.
AUTHENTICATED_DETAILS = (*SAFE_DETAILS, "providers", "misconfigured", "unavailable_data_types")
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


async def health_report(core: Any, *, detailed: bool = False) -> HealthReport:
    """`unhealthy` when a required component is down, `degraded` when an optional one is; ``detailed`` (an
    authenticated caller) adds AUTHENTICATED_DETAILS. The probes' results are reused for REPORT_TTL_S, so bursts
    of health checks do not multiply probes."""
    cached = getattr(core, "last_health", None)
    if cached is None or time.monotonic() - cached[0] >= REPORT_TTL_S:
        probes = core.services.health_probes()
        results = await asyncio.gather(*(_probe(core, p.check) for p in probes))
        cached = (time.monotonic(), list(zip(probes, results)))
        core.last_health = cached
    return _report(core, cached[1], AUTHENTICATED_DETAILS if detailed else SAFE_DETAILS)


def _report(core: Any, results: list[tuple[Any, tuple[bool, dict[str, Any], float]]], shown: tuple[str, ...]) -> HealthReport:
    components: dict[str, ComponentHealth] = {}
    overall = "healthy"
    for probe, (ok, details, latency) in results:
        status = details.get("status") if ok and details.get("status") in ("healthy", "degraded") else ("healthy" if ok else "unhealthy")
        if status == "unhealthy" and probe.required:
            overall = "unhealthy"
        elif status != "healthy" and overall == "healthy":
            overall = "degraded"
        safe = {k: details[k] for k in shown if k in details}
        components[probe.name] = ComponentHealth(status=status, required=probe.required, latency_ms=latency,
                                                 details=safe or None)
    return HealthReport(status=overall, version=core.settings.app.version, components=components)
