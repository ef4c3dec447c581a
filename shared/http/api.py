"""The request pipeline. Every HTTP function is declared through `route()`; nothing else
touches HTTP concerns.

Order: request id -> request log -> authentication from headers alone (401; failed sign-ins
are limited per client address, 429) -> role (403) -> rate limit (429) -> body size (413) ->
JSON parsing (400) -> validation (422) -> cursor (422) -> If-Match (400, 404, 412) -> handler
-> security headers, CORS, RateLimit-* -> response log. Credentials come first, so an
anonymous caller learns nothing about a body (no field errors) and a bad key counts as a
failed sign-in whatever the body. Any `ApiError` (and any unexpected exception, as a generic
500 whose traceback is only logged) becomes one RFC 9457 problem body.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Literal, Mapping

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from shared import errors
from shared.data.schema import LINE_TEXT, TEXT
from shared.http.preconditions import etag, parse_if_match, required_version
from shared.http.problems import problem_response
from shared.logging import request_id_var, user_id_var
from shared.services.principal import Principal

if TYPE_CHECKING:
    from shared.config.models import HttpSettings
    from shared.runtime import Core

log = logging.getLogger("stockagent.http")

API_PREFIX = "/api"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_REQUEST_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces or control characters
AuthMode = Literal["public", "optional", "user", "admin"]  # optional: anonymous allowed, credentials checked when sent
# How a route answers an error: (error, request, request id) -> response. Default: an RFC 9457 problem.
ErrorRenderer = Callable[[errors.ApiError, Request, str], Response]


@dataclass(frozen=True)
class RouteSpec:
    """Everything the pipeline and the OpenAPI generator know about one operation."""

    name: str
    template: str  # Functions route template, without the "api/" prefix: "v1/workspaces/{workspace_id}"
    methods: tuple[str, ...]
    handler: Callable[..., Awaitable[Any]]
    body: type[BaseModel] | type[bytes] | None = None  # bytes: the raw body (size-limited), for a protocol of its own
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    response: Any = None  # a model (or list/union annotation) for the success body; None for 204
    status: int = 200
    auth: AuthMode = "user"
    rate_group: str | None = "read"
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    deprecated: bool = False
    sunset: str | None = None
    errors: tuple[int, ...] = ()
    stream_media_type: str | None = None  # "text/event-stream" / "application/x-ndjson" when the handler may stream
    location: Callable[[Any], str] | None = None
    include_in_schema: bool = True
    # Reads the target resource (anything with a `version`) when the request carries If-Match.
    current: Callable[["RequestContext"], Any] | None = None
    render_error: ErrorRenderer | None = None  # a protocol with its own error shape (MCP: JSON-RPC errors)

    @property
    def public_path(self) -> str:
        return f"{API_PREFIX}/{self.template}"


class Registry:
    """All routes declared through `route()`, in declaration order."""

    def __init__(self) -> None:
        self.routes: list[RouteSpec] = []
        self._matchers: list[tuple[re.Pattern[str], RouteSpec]] | None = None

    def add(self, spec: RouteSpec) -> None:
        if any(r.name == spec.name for r in self.routes):
            raise ValueError(f"duplicate function name {spec.name}")
        self.routes.append(spec)
        self._matchers = None

    def allowed_methods(self, path: str) -> list[str]:
        """Methods of the declared routes whose template matches `path` (for 405 + Allow)."""
        if self._matchers is None:
            self._matchers = [(_template_regex(r.template), r) for r in self.routes if "{*" not in r.template]
        rel = path[len(API_PREFIX) + 1 :] if path.startswith(API_PREFIX + "/") else path.lstrip("/")
        methods: set[str] = set()
        for regex, spec in self._matchers:
            if regex.fullmatch(rel):
                methods.update(spec.methods)
        return sorted(methods)


def _template_regex(template: str) -> re.Pattern[str]:
    out = re.sub(r"\{\*[^}]+\}", ".*", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
    out = re.sub(r"\{[^}]+\}", "[^/]+", out)
    return re.compile(out)


registry = Registry()


@dataclass
class RequestContext:
    """What a handler gets besides the request: validated input, the caller and the core."""

    request: Request
    request_id: str
    spec: RouteSpec
    core: "Core"
    user: Principal | None = None
    body: Any = None
    query: Any = None
    path: Any = None
    # The version a conditional write must find: set from If-Match (None without it, or for `*`).
    expected_version: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.core.services

    @property
    def settings(self) -> Any:
        return self.core.settings

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a synchronous service call in a worker thread so the event loop never blocks."""
        return await self.core.run(fn, *args, **kwargs)

    @property
    def cursor_scope(self) -> str:
        """What a pagination cursor is bound to: this list (the route and its path parameters: one
        conversation's messages, one portfolio's positions) and this caller."""
        parents = "".join(f"/{value}" for value in self.request.path_params.values())
        return f"{self.spec.name}{parents}:{self.user.id if self.user else ''}"


# ---------------------------------------------------------------- input parsing


# Patterns whose text would only confuse a reader of the error (invisible characters, long classes).
_PATTERN_MESSAGES = {
    LINE_TEXT: "Must be one line of visible text: no control or bidi characters, not only spaces",
    TEXT: "Must be visible text: no control characters but tab and line breaks, no bidi characters, not only spaces",
}


def _field_errors(exc: ValidationError, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "Unknown field"
        elif err["type"] == "string_pattern_mismatch":
            msg = _PATTERN_MESSAGES.get((err.get("ctx") or {}).get("pattern"), msg)
        out.setdefault(prefix + loc, []).append(msg)
    return out


def _json_depth_ok(value: Any, max_depth: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


def _too_long_strings(value: Any, limit: int, path: str = "") -> list[str]:
    bad: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack and len(bad) < 10:
        node, where = stack.pop()
        if isinstance(node, str) and len(node) > limit:
            bad.append(where or "body")
        elif isinstance(node, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(node))
    return bad


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise errors.PayloadTooLarge(f"Request body exceeds {limit} bytes")
        except ValueError:
            raise errors.BadRequest("Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_body(request: Request, spec: RouteSpec, core: "Core") -> Any:
    http = core.settings.http
    raw = await _read_body(request, http.max_body_bytes)
    if spec.body is None:
        return None
    if spec.body is bytes:
        return raw
    if not raw.strip():
        raise errors.ValidationFailed("A JSON request body is required", errors={"body": ["Field required"]})
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise errors.UnsupportedContent("Content-Type must be application/json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.MalformedJSON("Request body is not valid JSON") from None
    if not _json_depth_ok(data, http.max_json_depth):
        raise errors.MalformedJSON(f"JSON nesting deeper than {http.max_json_depth} levels")
    long_fields = _too_long_strings(data, http.max_string_length)
    if long_fields:
        raise errors.ValidationFailed(
            "String too long", errors={f: [f"At most {http.max_string_length} characters"] for f in long_fields}
        )
    if not isinstance(data, dict):
        raise errors.ValidationFailed("Request body must be a JSON object", errors={"body": ["Must be an object"]})
    try:
        # Strict JSON validation: `0` is not a boolean and `"5"` not a number; ISO strings still parse as dates.
        return spec.body.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errs = _field_errors(exc)
        raise errors.ValidationFailed(_count_detail(errs), errors=errs) from None


def _count_detail(errs: Mapping[str, list[str]]) -> str:
    n = len(errs)
    return f"{n} field is invalid" if n == 1 else f"{n} fields are invalid"


def _single_valued(params: Any) -> Mapping[str, str]:
    """Query parameters as a mapping; a repeated parameter is refused rather than silently truncated."""
    repeated = sorted(k for k, n in Counter(k for k, _ in params.multi_items()).items() if n > 1)
    if repeated:
        raise errors.ValidationFailed(
            "Repeated query parameter", errors={k: ["Give this parameter once"] for k in repeated}
        )
    return params


def _parse_params(model: type[BaseModel] | None, values: Mapping[str, Any]) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        errs = _field_errors(exc)
        raise errors.ValidationFailed(_count_detail(errs), errors=errs) from None


# ---------------------------------------------------------------- request id, client, headers


def request_id_from(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and _REQUEST_ID_RE.fullmatch(given):
        return given
    return uuid.uuid4().hex


def client_ip(request: Request, http: "HttpSettings") -> str:
    """The caller's address, from what the platform (never the caller) put on the request.

    - `behind_azure_front_door`: Front Door's `X-Azure-SocketIP`, the address of the TCP connection
      it accepted. (`X-Azure-ClientIP` is not used: Front Door derives it from the caller's own
      `X-Forwarded-For`.) Only safe when the app accepts traffic from that Front Door alone.
    - `behind_azure_frontend`: the rightmost `X-Forwarded-For` hop, which the App Service /
      Functions front end appends (`ip:port`) to whatever the caller sent; the leftmost hops are
      the caller's to choose.
    - otherwise the socket peer (the local host serves with forwarding headers ignored).
    """
    if http.behind_azure_front_door:
        # The last line: one a caller sent comes before the one Front Door adds (when it does not replace it).
        socket_ip = _address((request.headers.getlist("x-azure-socketip") or [""])[-1])
        if socket_ip:
            return socket_ip
    if http.behind_azure_frontend:
        hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
        appended = _address(hops[-1])
        if appended:
            return appended
    return request.client.host if request.client else "unknown"


def address_key(request: Request, http: "HttpSettings") -> str:
    """What per-address limits (failed sign-ins, anonymous callers) count under: the client address, or for
    IPv6 its /64. A subscriber's network is at least a /64 and its hosts pick any address in it (privacy
    addresses), so one caller could otherwise rotate through 2^64 keys. IPv4-mapped addresses count as IPv4."""
    address = client_ip(request, http)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # no address at all (a test client's peer name)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _address(hop: str) -> str | None:
    """The IP address of one forwarding hop (`v4`, `v4:port`, `v6`, `[v6]:port`), normalised; None if it is not one."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1:].split("]", 1)[0]
    elif hop.count(":") == 1:
        hop = hop.rsplit(":", 1)[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def apply_headers(response: Response, request: Request, request_id: str, core: "Core | None", *, authenticated: bool) -> None:
    headers = response.headers
    headers["X-Request-ID"] = request_id
    for key, value in SECURITY_HEADERS.items():
        headers.setdefault(key, value)
    if authenticated and "cache-control" not in headers:
        headers["Cache-Control"] = "no-store"
    forwarded_proto = request.headers.get("x-forwarded-proto", "")
    if request.url.scheme == "https" or forwarded_proto == "https":
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if core is not None:
        apply_cors(response, request, core)


def apply_cors(response: Response, request: Request, core: "Core") -> None:
    cors = core.settings.http.cors
    origin = request.headers.get("origin")
    if not cors.origins:
        return
    response.headers.append("Vary", "Origin")
    if not origin:
        return
    if "*" in cors.origins and not cors.allow_credentials:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in cors.origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        if cors.allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
    else:
        return
    response.headers["Access-Control-Expose-Headers"] = (
        "X-Request-ID, ETag, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
        "WWW-Authenticate, Mcp-Session-Id"
    )


def rate_limit_headers(result: Any) -> dict[str, str]:
    reset_in = max(0, int(result.reset_at - time.time()))
    return {
        "RateLimit-Limit": str(result.limit),
        "RateLimit-Remaining": str(max(0, result.remaining)),
        "RateLimit-Reset": str(reset_in),
    }


# ---------------------------------------------------------------- rendering


def dump_json(value: Any) -> bytes:
    if isinstance(value, BaseModel):
        return value.__pydantic_serializer__.to_json(value)
    return orjson.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _etag_of(result: Any) -> str | None:
    version = getattr(result, "version", None) if not isinstance(result, dict) else result.get("version")
    return etag(version) if isinstance(version, int) and not isinstance(version, bool) else None


def render(result: Any, spec: RouteSpec, ctx: RequestContext) -> Response:
    if isinstance(result, Response):
        return result
    if spec.status == 204 or result is None and spec.response is None:
        return Response(status_code=204)
    if isinstance(result, BaseModel) and getattr(result, "next_cursor", None):
        # A page's cursor leaves the API sealed to this route and caller (see shared/http/cursors.py).
        result = result.model_copy(update={"next_cursor": ctx.core.cursors.seal(result.next_cursor, ctx.cursor_scope)})
    response = Response(dump_json(result), status_code=spec.status, media_type="application/json")
    tag = _etag_of(result)
    if tag:
        response.headers["ETag"] = tag
    if spec.location is not None and spec.status == 201:
        response.headers["Location"] = spec.location(result)
    return response


def _problem(err: errors.ApiError, request: Request, request_id: str) -> Response:
    return problem_response(err, instance=request.url.path, request_id=request_id)


# ---------------------------------------------------------------- the pipeline


async def run_pipeline(spec: RouteSpec, request: Request) -> Response:
    from shared.runtime import get_core_async  # the core is built on the first request, not at import

    started = time.perf_counter()
    render_error = spec.render_error or _problem
    request_id = request_id_from(request)
    rid_token = request_id_var.set(request_id)
    uid_token = user_id_var.set(None)
    route = f"{request.method} {spec.public_path}"
    core = None
    ctx: RequestContext | None = None
    limit_result = None
    log.info("request start", extra={"method": request.method, "route": spec.public_path, "path": request.url.path})
    try:
        core = await get_core_async()
        ctx = RequestContext(request=request, request_id=request_id, spec=spec, core=core)
        if spec.auth != "public":
            try:
                try:
                    ctx.user = await core.authenticate(request)
                except errors.ServiceUnavailable:
                    if spec.auth != "optional":
                        raise
                    # Credentials cannot be checked while the user store is down: an optional-auth route
                    # (the health report) still answers, as for an anonymous caller.
                    ctx.user = None
                if ctx.user is None and spec.auth != "optional":
                    raise errors.Unauthorized("Missing API key or bearer token")
            except errors.Unauthorized:
                # Failed sign-ins are limited per client address, so guessing keys is throttled too.
                limit_result = await core.rate_limit("auth_failures", f"ip:{address_key(request, core.settings.http)}")
                if limit_result is not None and not limit_result.allowed:
                    raise errors.RateLimited("Too many failed sign-ins", retry_after=limit_result.retry_after,
                                             headers=rate_limit_headers(limit_result)) from None
                raise
            user_id_var.set(ctx.user.id if ctx.user else None)
            if spec.auth == "admin" and not ctx.user.is_admin:
                raise errors.Forbidden("This operation requires the admin role")
        if spec.rate_group:
            key = f"user:{ctx.user.id}" if ctx.user else f"ip:{address_key(request, core.settings.http)}"
            limit_result = await core.rate_limit(spec.rate_group, key)
            if limit_result is not None and not limit_result.allowed:
                raise errors.RateLimited(
                    f"Rate limit for {spec.rate_group} exceeded", retry_after=int(limit_result.retry_after) or 1,
                    headers=rate_limit_headers(limit_result),
                )
        ctx.body = await _parse_body(request, spec, core)
        ctx.path = _parse_params(spec.path, request.path_params)
        ctx.query = _parse_params(spec.query, _single_valued(request.query_params)) if spec.query else None
        if getattr(ctx.query, "cursor", None):
            ctx.query = ctx.query.model_copy(update={"cursor": core.cursors.open(ctx.query.cursor, ctx.cursor_scope)})
        if spec.current is not None:
            condition = parse_if_match(request.headers.getlist("if-match"))
            if condition is not None:
                # Read the resource first: a missing one is 404 whatever If-Match says (RFC 9110 13.2.1).
                ctx.expected_version = required_version(condition, await ctx.run(spec.current, ctx))
        result = await spec.handler(request, ctx)
        response = render(result, spec, ctx)
        for key, value in ctx.response_headers.items():
            response.headers[key] = value
    except errors.ApiError as err:
        if isinstance(err, errors.RateLimited) and "RateLimit-Limit" not in err.headers:
            # Another limit refused (e.g. the daily token budget): its Retry-After stands alone, with no
            # per-minute RateLimit-* headers contradicting it.
            limit_result = None
        response = render_error(err, request, request_id)
    except Exception:
        log.exception("unhandled error in %s", route)
        response = render_error(
            errors.ApiError("An unexpected error occurred; quote the request id when reporting it"), request, request_id
        )
    if limit_result is not None:
        for key, value in rate_limit_headers(limit_result).items():
            response.headers.setdefault(key, value)
    if spec.deprecated:
        response.headers["Deprecation"] = "true"
        if spec.sunset:
            response.headers["Sunset"] = spec.sunset
    apply_headers(response, request, request_id, core, authenticated=spec.auth != "public")
    duration_ms = (time.perf_counter() - started) * 1000
    if core is not None:
        core.metrics.observe_request(request.method, spec.public_path, response.status_code, duration_ms)
    log.info(
        "request end",
        extra={
            "method": request.method,
            "route": spec.public_path,
            "status": response.status_code,
            "duration_ms": round(duration_ms, 2),
        },
    )
    user_id_var.reset(uid_token)
    request_id_var.reset(rid_token)
    return response


# ---------------------------------------------------------------- declaration


def route(
    bp: Any,
    template: str,
    *,
    methods: Iterable[str] = ("GET",),
    name: str | None = None,
    body: type[BaseModel] | type[bytes] | None = None,
    query: type[BaseModel] | None = None,
    path: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    auth: AuthMode = "user",
    rate_group: str | None = "read",
    tags: Iterable[str] = (),
    deprecated: bool = False,
    sunset: str | None = None,
    errors: Iterable[int] = (),
    stream_media_type: str | None = None,
    location: Callable[[Any], str] | None = None,
    include_in_schema: bool = True,
    current: Callable[[RequestContext], Any] | None = None,
    render_error: ErrorRenderer | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register `handler(req, ctx)` as an Azure Functions HTTP function on `bp` behind the pipeline.

    A user's PUT/PATCH/DELETE must say how to read its target (`current`, run in a worker thread
    only when the request carries If-Match): the pipeline answers If-Match itself and hands the
    handler `ctx.expected_version` to make the write conditional on. `body=bytes` hands the handler
    the raw body (within the size limit) for a protocol that parses its own; `render_error` answers
    every error of the route (401, 429, ... and the handler's) in that protocol's shape.
    """
    verbs = {m.upper() for m in methods}
    if auth != "public" and verbs & {"PUT", "PATCH", "DELETE"} and current is None:
        raise ValueError(f"{template} {sorted(verbs)}: a conditional method needs current= to honour If-Match")

    def decorator(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        doc = (handler.__doc__ or "").strip()
        summary, _, description = doc.partition("\n")
        spec = RouteSpec(
            name=name or handler.__name__,
            template=template,
            methods=tuple(m.upper() for m in methods),
            handler=handler,
            body=body,
            query=query,
            path=path,
            response=response,
            status=status,
            auth=auth,
            rate_group=rate_group,
            summary=summary.strip(),
            description=description.strip(),
            tags=tuple(tags),
            deprecated=deprecated,
            sunset=sunset,
            errors=tuple(errors),
            stream_media_type=stream_media_type,
            location=location,
            include_in_schema=include_in_schema,
            current=current,
            render_error=render_error,
        )
        registry.add(spec)
        _register_function(bp, spec)
        return handler

    return decorator


def _register_function(bp: Any, spec: RouteSpec) -> None:
    import azure.functions as func
    from azurefunctions.extensions.http.fastapi import Request as StreamsRequest
    from azurefunctions.extensions.http.fastapi import Response as StreamsResponse

    async def function(req: Request) -> Response:
        return await run_pipeline(spec, req)

    function.__name__ = spec.name
    function.__qualname__ = spec.name
    # The worker recognises HTTP-streams functions by these exact annotation types.
    function.__annotations__ = {"req": StreamsRequest, "return": StreamsResponse}
    function.__stockagent_route__ = spec  # type: ignore[attr-defined]
    bp.function_name(spec.name)(
        bp.route(route=spec.template, methods=list(spec.methods), auth_level=func.AuthLevel.ANONYMOUS)(function)
    )
