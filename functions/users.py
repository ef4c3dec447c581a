"""Users: the caller (`me`), profile, preferences, dashboard, API keys; admin user management."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.http.schemas import PageQuery
from shared.schemas.dashboard import DashboardPublic
from shared.schemas.users import (
    ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyPublic, PreferencesPublic, PreferencesUpdate, ProfilePublic, ProfileUpdate,
    UserCreate, UserCreated, UserPage, UserPublic,
)

bp = func.Blueprint()
TAGS = ("users",)


def _profile(ctx: RequestContext) -> ProfilePublic:
    return ctx.services.users.get_profile(ctx.user.id)


def _preferences(ctx: RequestContext) -> PreferencesPublic:
    return ctx.services.users.get_preferences(ctx.user.id)


def _api_key(ctx: RequestContext) -> ApiKeyPublic:
    return ctx.services.users.get_api_key(ctx.user.id, ctx.request.path_params["key_id"])


@route(bp, "v1/users/me", response=UserPublic, tags=TAGS, errors=(401, 404, 503))
async def get_me(req, ctx: RequestContext) -> UserPublic:
    """The authenticated user; `roles` are the roles this request holds (an Entra ID app role adds `admin`)."""
    return await ctx.run(ctx.services.users.get_me, ctx.user.id, ctx.user.roles)


@route(bp, "v1/users/me/profile", response=ProfilePublic, tags=TAGS, errors=(401, 503))
async def get_my_profile(req, ctx: RequestContext) -> ProfilePublic:
    """The caller's profile (version 0 until first saved)."""
    return await ctx.run(ctx.services.users.get_profile, ctx.user.id)


@route(bp, "v1/users/me/profile", name="update_my_profile", methods=["PATCH"], body=ProfileUpdate,
       response=ProfilePublic, rate_group="write", tags=TAGS, errors=(401, 409, 412, 422, 503), current=_profile)
async def update_my_profile(req, ctx: RequestContext) -> ProfilePublic:
    """Update fields of the caller's profile; send `If-Match` with the ETag you read."""
    return await ctx.run(ctx.services.users.update_profile, ctx.user.id, ctx.body, ctx.expected_version)


@route(bp, "v1/users/me/preferences", response=PreferencesPublic, tags=TAGS, errors=(401, 503))
async def get_my_preferences(req, ctx: RequestContext) -> PreferencesPublic:
    """The caller's preferences (defaults until first saved)."""
    return await ctx.run(ctx.services.users.get_preferences, ctx.user.id)


@route(bp, "v1/users/me/preferences", name="replace_my_preferences", methods=["PUT"], body=PreferencesUpdate,
       response=PreferencesPublic, rate_group="write", tags=TAGS, errors=(401, 409, 412, 422, 503), current=_preferences)
async def replace_my_preferences(req, ctx: RequestContext) -> PreferencesPublic:
    """Replace the caller's preferences (omitted fields return to defaults)."""
    return await ctx.run(ctx.services.users.replace_preferences, ctx.user.id, ctx.body, ctx.expected_version)


@route(bp, "v1/users/me/dashboard", response=DashboardPublic, tags=TAGS, errors=(401, 503))
async def get_my_dashboard(req, ctx: RequestContext) -> DashboardPublic:
    """Workspaces, watchlists with latest quotes, portfolio values.

    Each section carries its own `status`; a failing dependency degrades only its section.
    """
    return await ctx.run(ctx.services.dashboard.get_dashboard, ctx.user.id)


@route(bp, "v1/users/me/api-keys", name="create_my_api_key", methods=["POST"], body=ApiKeyCreate,
       response=ApiKeyCreated, status=201, rate_group="write", tags=TAGS, errors=(401, 422, 503),
       location=lambda r: f"/api/v1/users/me/api-keys/{r.id}")
async def create_my_api_key(req, ctx: RequestContext) -> ApiKeyCreated:
    """Create an API key; the `secret` is in this response only."""
    return await ctx.run(ctx.services.users.create_api_key, ctx.user.id, ctx.body.name)


@route(bp, "v1/users/me/api-keys", query=PageQuery, response=ApiKeyPage, tags=TAGS, errors=(400, 401, 422, 503))
async def list_my_api_keys(req, ctx: RequestContext) -> ApiKeyPage:
    """The caller's active API keys (no secrets, no hashes)."""
    return await ctx.run(ctx.services.users.list_api_keys, ctx.user.id, limit=ctx.query.limit, cursor=ctx.query.cursor)


@route(bp, "v1/users/me/api-keys/{key_id}", response=ApiKeyPublic, tags=TAGS, errors=(401, 404, 503))
async def get_my_api_key(req, ctx: RequestContext) -> ApiKeyPublic:
    """One of the caller's active API keys (no secret); its ETag is what `If-Match` on revoke compares with."""
    return await ctx.run(_api_key, ctx)


@route(bp, "v1/users/me/api-keys/{key_id}", name="revoke_my_api_key", methods=["DELETE"], status=204,
       rate_group="write", tags=TAGS, errors=(401, 404, 412, 503), current=_api_key)
async def revoke_my_api_key(req, ctx: RequestContext) -> None:
    """Revoke one of the caller's API keys."""
    # A key changes only by being revoked, so the pipeline's If-Match check needs no pinning here:
    # a concurrent revoke makes this one a 404.
    await ctx.run(ctx.services.users.revoke_api_key, ctx.user.id, req.path_params["key_id"])


@route(bp, "v1/users", name="create_user", methods=["POST"], auth="admin", body=UserCreate, response=UserCreated,
       status=201, rate_group="write", tags=TAGS, errors=(401, 403, 409, 422, 503),
       location=lambda r: f"/api/v1/users/{r.user.id}")
async def create_user(req, ctx: RequestContext) -> UserCreated:
    """Create a user with a first API key (admin). The key's secret is shown once."""
    return await ctx.run(ctx.services.users.create_user, ctx.body)


@route(bp, "v1/users", auth="admin", query=PageQuery, response=UserPage, tags=TAGS, errors=(400, 401, 403, 422, 503))
async def list_users(req, ctx: RequestContext) -> UserPage:
    """All users, newest first (admin)."""
    return await ctx.run(ctx.services.users.list_users, limit=ctx.query.limit, cursor=ctx.query.cursor)


@route(bp, "v1/users/{user_id}", auth="admin", response=UserPublic, tags=TAGS, errors=(401, 403, 404, 503))
async def get_user(req, ctx: RequestContext) -> UserPublic:
    """One user (admin)."""
    return await ctx.run(ctx.services.users.get_user, req.path_params["user_id"])
