"""The request pipeline every HTTP function goes through, and the OpenAPI registry."""

from shared.http.api import Principal, RequestContext, registry, route

__all__ = ["Principal", "RequestContext", "registry", "route"]
