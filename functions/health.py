"""GET /api/health: component health, answering even when dependencies are down."""

import asyncio
import time

import azure.functions as func
from starlette.responses import Response

from shared.http import RequestContext, route
from shared.http.schemas import HealthReport

bp = func.Blueprint()
PROBE_TIMEOUT_S = 1.5


async def _probe(ctx: RequestContext, probe) -> tuple[bool, dict, float]:
    started = time.perf_counter()
    try:
        ok, details = await asyncio.wait_for(ctx.core.run(probe), PROBE_TIMEOUT_S)
    except TimeoutError:
        ok, details = False, {"error": "timeout"}
    except Exception as exc:  # a failing probe is an unhealthy component, not a failed request
        ok, details = False, {"error": type(exc).__name__}
    return ok, details, round((time.perf_counter() - started) * 1000, 2)


@route(bp, "health", auth="public", rate_group=None, response=HealthReport, errors=(503,), tags=("health",))
async def health(req, ctx: RequestContext):
    """Health of the app and each component.

    A required component down answers 503 `unhealthy`; an optional one 200 `degraded`.
    """
    probes = ctx.services.health_probes()
    results = await asyncio.gather(*(_probe(ctx, p.check) for p in probes))
    components = {}
    worst = "healthy"
    for probe, (ok, details, latency) in zip(probes, results):
        status = details.get("status") if ok and details.get("status") in ("healthy", "degraded") else ("healthy" if ok else "unhealthy")
        if status != "healthy":
            worst = "unhealthy" if probe.required and status == "unhealthy" else (worst if worst == "unhealthy" else "degraded")
        safe = {k: details[k] for k in ("mode", "breaker", "error", "backend", "provider") if k in details}
        components[probe.name] = {"status": status, "required": probe.required, "latency_ms": latency, **({"details": safe} if safe else {})}
    report = HealthReport(status=worst, version=ctx.settings.app.version, components=components)
    return Response(report.model_dump_json(exclude_none=True), status_code=503 if worst == "unhealthy" else 200, media_type="application/json",
                    headers={"Cache-Control": "no-store"})
