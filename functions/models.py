"""Model providers: which are configured, the default, the fallback order and their health."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.schemas.chat import ModelsResponse

bp = func.Blueprint()


@route(bp, "v1/models", response=ModelsResponse, tags=("chat",))
async def list_models(req, ctx: RequestContext):
    """Configured model providers (never their keys)."""
    models = ctx.services.models
    providers = await ctx.run(models.describe)
    default = next((p["name"] for p in providers if p["default"]), ctx.settings.models.provider)
    m = ctx.settings.models
    return ModelsResponse(default=default, allow_fallback=m.allow_fallback, fallback_order=list(m.fallback_order), providers=providers)
