"""Model Context Protocol: Streamable HTTP (stateless) at /api/mcp, and its protected resource metadata."""

from typing import Any

import azure.functions as func
from starlette.requests import Request
from starlette.responses import Response

from shared.http import RequestContext, route
from shared.mcp.http import MCP_ROUTE, METADATA_ROUTE, jsonrpc_error, protected_resource_metadata

bp = func.Blueprint()
TAGS = ("mcp",)


@route(bp, MCP_ROUTE, name="mcp", methods=["POST"], body=bytes, rate_group="mcp", tags=TAGS,
       include_in_schema=False, render_error=jsonrpc_error)
async def mcp(req: Request, ctx: RequestContext) -> Response:
    """MCP over Streamable HTTP: JSON-RPC requests in, JSON (or SSE while a response streams) out; docs/mcp.md."""
    from shared.mcp.transport import serve  # the MCP SDK loads on the first MCP request, not at import

    return await serve(ctx)


@route(bp, METADATA_ROUTE, name="oauth_protected_resource", auth="public", rate_group=None, response=dict, tags=TAGS,
       include_in_schema=False)
async def oauth_protected_resource(req: Request, ctx: RequestContext) -> dict[str, Any]:
    """RFC 9728 metadata of the MCP endpoint: its resource URL and, with Entra ID, the authorization server."""
    return protected_resource_metadata(req, ctx.settings)
