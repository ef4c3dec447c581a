"""Admin operations: metrics and migrations (admin role only)."""

import azure.functions as func
from pydantic import BaseModel

from shared.http import RequestContext, route
from shared.http.schemas import StrictModel

bp = func.Blueprint()


class MetricsSnapshot(BaseModel):
    requests: list[dict]
    latency: dict[str, dict]
    counters: dict[str, dict[str, int]]
    backends: dict[str, str]


class MigrationRequest(StrictModel):
    dry_run: bool = False


@route(bp, "v1/admin/metrics", auth="admin", response=MetricsSnapshot, tags=("admin",))
async def admin_metrics(req, ctx: RequestContext):
    """Counters: requests by route and status, latency buckets, cache, upstream and LLM usage."""
    snapshot = ctx.core.metrics.snapshot()
    snapshot["counters"] = {**snapshot["counters"], **await ctx.run(ctx.services.counters)}
    snapshot["backends"] = ctx.core.backends
    return snapshot


@route(bp, "v1/admin/migrations", methods=["POST"], body=MigrationRequest, auth="admin", rate_group="write",
       response=dict, tags=("admin",))
async def admin_run_migrations(req, ctx: RequestContext):
    """Apply pending schema migrations now (idempotent); `dry_run` lists what would run."""
    return await ctx.run(lambda: ctx.services.migrations.run(dry_run=ctx.body.dry_run))
