"""What the MCP endpoint says in plain HTTP, before or around the SDK: the pipeline's errors as JSON-RPC error
bodies, the 401 challenge naming the protected resource metadata (RFC 9728), that metadata, and the Origin check.

Imported when function_app is: no MCP SDK here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared import errors
from shared.http.api import API_PREFIX
from shared.http.problems import problem_body
from shared.services.entra_tokens import entra_issuer

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.config.models import CorsSettings

MCP_ROUTE = "mcp"
METADATA_ROUTE = ".well-known/oauth-protected-resource"
# JSON-RPC 2.0 error codes: a request the server refuses, and a failure on our side.
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603


def public_origin(request: Request, settings: "Settings") -> str:
    """The app's origin as clients reach it: `mcp.public_url`, else the request's own (behind the Azure front end
    or Front Door, the host and scheme they forwarded)."""
    if settings.mcp.public_url:
        return settings.mcp.public_url
    host = request.headers.get("host") or request.url.netloc
    scheme = request.url.scheme
    if settings.http.behind_azure_frontend or settings.http.behind_azure_front_door:
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
    return f"{scheme}://{host}"


def resource_url(request: Request, settings: "Settings") -> str:
    """The MCP server's URL: the protected resource MCP clients get tokens for."""
    return f"{public_origin(request, settings)}{API_PREFIX}/{MCP_ROUTE}"


def metadata_url(request: Request, settings: "Settings") -> str:
    return f"{public_origin(request, settings)}{API_PREFIX}/{METADATA_ROUTE}"


def protected_resource_metadata(request: Request, settings: "Settings") -> dict[str, Any]:
    """RFC 9728 metadata of the MCP endpoint; names the Entra ID tenant as authorization server when Entra ID
    tokens are accepted (API keys need no authorization server: clients send them as a bearer token)."""
    origin = public_origin(request, settings)
    doc: dict[str, Any] = {
        "resource": resource_url(request, settings),
        "resource_name": "StockAgent API (MCP)",
        "bearer_methods_supported": ["header"],
        "resource_documentation": f"{origin}{API_PREFIX}/v1/docs",
    }
    auth = settings.auth
    if auth.entra_configured:
        doc["authorization_servers"] = [entra_issuer(auth)]
        doc["scopes_supported"] = [f"{auth.entra_audience}/.default"]
    return doc


def check_origin(request: Request, cors: "CorsSettings") -> None:
    """Forbidden (403) for a browser Origin outside `http.cors.origins` (the MCP transport's guard against DNS
    rebinding); requests without Origin (desktop clients, servers) pass."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in cors.origins and "*" not in cors.origins:
        raise errors.Forbidden(f"Origin {origin} is not allowed; add it to CORS_ORIGINS to use MCP from a browser")


def jsonrpc_error(err: errors.ApiError, request: Request, request_id: str) -> Response:
    """An error the pipeline raised (401, 403, 413, 429, 503, ...) as the transport wants it: the HTTP status and
    headers (Retry-After, WWW-Authenticate), and a JSON-RPC error response without id whose data is the problem."""
    problem = problem_body(err, instance=request.url.path, request_id=request_id)
    message = err.title if err.detail == err.title else f"{err.title}: {err.detail}"
    body = {"jsonrpc": "2.0", "id": None,
            "error": {"code": INTERNAL_ERROR if err.status >= 500 else INVALID_REQUEST, "message": message, "data": problem}}
    headers = dict(err.headers)
    if err.status == 401:
        headers["WWW-Authenticate"] = _challenge(request)
    return Response(orjson.dumps(body), status_code=err.status, media_type="application/json", headers=headers)


def _challenge(request: Request) -> str:
    """RFC 6750 / RFC 9728 challenge: where the metadata is; `invalid_token` when credentials were sent."""
    from shared.runtime import get_core  # as the pipeline does: config loads on the first request, not at import

    # Built: the request was authenticated through it.
    challenge = f'Bearer realm="stockagent", resource_metadata="{metadata_url(request, get_core().settings)}"'
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        challenge += ', error="invalid_token"'
    return challenge
