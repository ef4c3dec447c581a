"""Everything under /api that no other function matches: CORS preflight, 405 with Allow, 404 problem.

Declared as the lowest-precedence catch-all route, so it behaves the same on Azure and on
the local host.
"""

import azure.functions as func
from starlette.responses import Response

from shared import errors
from shared.http import RequestContext, registry, route
from shared.http.api import ALL_METHODS

bp = func.Blueprint()


@route(bp, "{*path}", methods=ALL_METHODS, auth="public", rate_group=None, include_in_schema=False)
async def fallback(req, ctx: RequestContext):
    """Answer unknown routes and wrong methods with problems, and CORS preflights."""
    allowed = registry.allowed_methods(req.url.path)
    if req.method == "OPTIONS" and allowed:
        cors = ctx.settings.http.cors
        headers = {"Allow": ", ".join([*allowed, "OPTIONS"])}
        if req.headers.get("access-control-request-method"):
            headers["Access-Control-Allow-Methods"] = ", ".join(m for m in cors.allow_methods if m in {*allowed, "OPTIONS"})
            headers["Access-Control-Allow-Headers"] = ", ".join(cors.allow_headers)
            headers["Access-Control-Max-Age"] = str(cors.max_age_s)
        return Response(status_code=204, headers=headers)
    if allowed:
        raise errors.MethodNotAllowed(
            f"{req.method} is not allowed here; use {', '.join(allowed)}", headers={"Allow": ", ".join(allowed)}
        )
    raise errors.NotFound(f"No route matches {req.url.path}")
