"""GET /api/health: component health, answering even when dependencies are down."""

import azure.functions as func
from starlette.responses import Response

from shared.http import RequestContext, route
from shared.http.schemas import HealthReport
from shared.services.health import health_report

bp = func.Blueprint()


@route(bp, "health", auth="optional", rate_group=None, response=HealthReport, errors=(503,), tags=("health",))
async def health(req, ctx: RequestContext):
    """Health of the app and each component.

    A required component down answers 503 `unhealthy`; an optional one 200 `degraded`. With credentials, the
    details also name unusable upstream providers (open breakers, misconfigured providers and why).
    """
    report = await health_report(ctx.core, detailed=ctx.user is not None)
    return Response(report.model_dump_json(exclude_none=True), status_code=503 if report.status == "unhealthy" else 200,
                    media_type="application/json", headers={"Cache-Control": "no-store"})
