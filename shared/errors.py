"""Domain errors. Each carries its HTTP status, an RFC 9457 problem type slug and a title.

Services and adapters raise these; the request pipeline maps any of them (and any
unexpected exception, as a generic 500) to one `application/problem+json` body.
"""

from __future__ import annotations

from typing import Any, Mapping


class ApiError(Exception):
    """Base of every error the API answers deliberately."""

    status: int = 500
    type: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}
        self.extra = dict(extra) if extra else {}


class BadRequest(ApiError):
    status, type, title = 400, "bad-request", "Bad request"


class MalformedJSON(BadRequest):
    type, title = "malformed-json", "Malformed JSON"


class UnsupportedContent(BadRequest):
    type, title = "unsupported-content-type", "Unsupported content type"


class ContentFiltered(BadRequest):
    type, title = "content-filtered", "Content filtered"


class Unauthorized(ApiError):
    status, type, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="stockagent"'})
        super().__init__(detail, **kw)


class Forbidden(ApiError):
    status, type, title = 403, "forbidden", "Forbidden"


class NotFound(ApiError):
    status, type, title = 404, "not-found", "Not found"


class MethodNotAllowed(ApiError):
    status, type, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ApiError):
    status, type, title = 409, "conflict", "Conflict"


class PreconditionFailed(ApiError):
    status, type, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ApiError):
    status, type, title = 413, "payload-too-large", "Payload too large"


class ValidationFailed(ApiError):
    status, type, title = 422, "validation-error", "Validation failed"


class ConversationFull(ValidationFailed):
    """The conversation holds as many messages as allowed: the client starts a new one."""

    type, title = "conversation-full", "Conversation is full"


class InvalidCursor(ValidationFailed):
    """A pagination cursor this API did not issue for this list and caller (forged, edited, truncated, replayed)."""

    def __init__(self, detail: str = "Invalid pagination cursor", **kw: Any) -> None:
        kw.setdefault("errors", {"cursor": ["Not a cursor this API issued"]})
        super().__init__(detail, **kw)


class RateLimited(ApiError):
    status, type, title = 429, "rate-limited", "Rate limit exceeded"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw: Any) -> None:
        retry_after = max(1, int(retry_after))
        headers = {"Retry-After": str(retry_after), **(kw.pop("headers", None) or {})}
        extra = {"retry_after": retry_after, **(kw.pop("extra", None) or {})}
        super().__init__(detail, headers=headers, extra=extra, **kw)
        self.retry_after = retry_after


class TooManyStreams(RateLimited):
    """The caller already has as many chat turns in progress as allowed."""

    type, title = "too-many-streams", "Too many concurrent chat streams"


class UpstreamError(ApiError):
    """An external service we call (LLM, market data) failed: 502.

    Every failed upstream call ends in exactly one outcome class (DESIGN.md decision 6); ``outcome``
    names it. A plain ``UpstreamError`` counts as ``unavailable``. Only ``NotFound`` (the upstream
    positively says the thing does not exist) is not an ``UpstreamError``: it is the one outcome that
    may become a 404 or a cached negative entry.
    """

    status, type, title = 502, "upstream-error", "Upstream service failed"
    outcome: str = "unavailable"

    def __init__(self, detail: str | None = None, *, provider: str | None = None, **kw: Any) -> None:
        extra = dict(kw.pop("extra", None) or {})
        if provider:
            extra["provider"] = provider
        extra.setdefault("outcome", self.outcome)
        super().__init__(detail, extra=extra, **kw)
        self.provider = provider


class UpstreamUnavailable(UpstreamError):
    """5xx, timeout, connection error, DNS, auth/crumb hiccup, malformed or empty-where-data-expected payload."""

    type, title = "upstream-unavailable", "Upstream service unavailable"


class UpstreamRateLimited(UpstreamError):
    """The upstream throttled us; ``retry_after`` (seconds) when it said how long."""

    type, title = "upstream-rate-limited", "Upstream rate limited"
    outcome = "rate_limited"

    def __init__(self, detail: str | None = None, *, retry_after: float | None = None, **kw: Any) -> None:
        if retry_after is not None:
            retry_after = max(0.0, float(retry_after))
            kw["extra"] = {"retry_after": retry_after, **(kw.get("extra") or {})}
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class UpstreamMisconfigured(UpstreamError):
    """Our configuration of the upstream is wrong (invalid/missing key, endpoint needs a plan we lack): 503.

    Not the caller's fault and not transient: the provider is skipped until its configuration changes.
    """

    status, type, title = 503, "upstream-misconfigured", "Upstream provider misconfigured"
    outcome = "misconfigured"


class UpstreamUnsupported(UpstreamError):
    """The provider has no such data (intraday bars on a daily-only API, fundamentals of an ETF).

    Says nothing about the provider's health: the next provider is asked, no breaker failure counted.
    """

    type, title = "upstream-unsupported", "Not offered by the upstream provider"
    outcome = "unsupported"


class ModelUnavailable(UpstreamUnavailable):
    type, title = "model-unavailable", "AI model service unavailable"


class MarketDataUnavailable(UpstreamUnavailable):
    type, title = "market-data-unavailable", "Market data unavailable"


class ServiceUnavailable(ApiError):
    """One of our own dependencies is down: 503 with Retry-After."""

    status, type, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kw: Any) -> None:
        headers = {"Retry-After": str(retry_after), **(kw.pop("headers", None) or {})}
        super().__init__(detail, headers=headers, **kw)


class DatabaseUnavailable(ServiceUnavailable):
    type, title = "database-unavailable", "Database unavailable"


class StreamCapacityFull(ServiceUnavailable):
    """This instance already serves as many chat turns as it is configured for."""

    type, title = "stream-capacity-full", "Chat stream capacity is full"


class QueueUnavailable(ServiceUnavailable):
    """The storage queue service (Azure Storage, Azurite) could not be reached or refused us."""

    type, title = "queue-unavailable", "Queue service unavailable"


class ConfigError(Exception):
    """Configuration is invalid; raised at startup with one line naming the problem."""
