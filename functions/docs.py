"""OpenAPI document and an interactive docs page that works offline (assets served by the app)."""

from pathlib import Path

import azure.functions as func
from starlette.responses import HTMLResponse, Response

from shared.http import RequestContext, registry, route
from shared.http.api import dump_json
from shared.http.schemas import StrictModel
from shared.http.openapi import build_openapi
from pydantic import Field

bp = func.Blueprint()
_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "application/javascript", "favicon.png": "image/png"}
_cache: dict[str, bytes] = {}


class AssetPath(StrictModel):
    asset: str = Field(pattern=r"^(swagger-ui\.css|swagger-ui-bundle\.js|favicon\.png)$")


def _asset_dir() -> Path:
    import fastapi_offline  # ships Swagger UI 5 (OpenAPI 3.1) dist files; no CDN needed

    return Path(fastapi_offline.__file__).parent / "static"


@route(bp, "v1/openapi.json", auth="public", rate_group=None, response=dict, tags=("docs",))
async def openapi_document(req, ctx: RequestContext):
    """The OpenAPI 3.1 document of this API."""
    if "openapi" not in _cache:
        doc = build_openapi(registry, title="StockAgent API", version=ctx.settings.app.version, settings=ctx.settings)
        _cache["openapi"] = dump_json(doc)
    return Response(_cache["openapi"], media_type="application/json")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StockAgent API docs</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui", persistAuthorization: true});</script>
</body></html>"""


@route(bp, "v1/docs", auth="public", rate_group=None, include_in_schema=False, tags=("docs",))
async def docs_page(req, ctx: RequestContext):
    """Interactive API documentation (Swagger UI)."""
    html = _PAGE.replace('href="docs/', 'href="/api/v1/docs/').replace('src="docs/', 'src="/api/v1/docs/')
    html = html.replace('url: "openapi.json"', 'url: "/api/v1/openapi.json"')
    # The page runs its own inline bootstrap script; everything else comes from this origin.
    return HTMLResponse(html, headers={"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"})


@route(bp, "v1/docs/assets/{asset}", path=AssetPath, auth="public", rate_group=None, include_in_schema=False, tags=("docs",))
async def docs_asset(req, ctx: RequestContext):
    """Static Swagger UI asset."""
    name = ctx.path.asset
    if name not in _cache:
        _cache[name] = (_asset_dir() / name).read_bytes()
    return Response(_cache[name], media_type=_ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})
