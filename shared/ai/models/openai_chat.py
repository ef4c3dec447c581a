"""OpenAI Chat Completions adapter (OpenAI, Grok, Azure OpenAI, any OpenAI-compatible endpoint).

Only this module imports the `openai` SDK (and `azure.identity` for Entra ID), lazily on first use,
and it translates every SDK error into one outcome class of shared.errors, so nothing above it sees
an SDK exception.

The SDK never retries or sleeps (`max_retries=0`): a failure before the stream starts is retried
here at most `max_retries` times, with waits capped at `retry_wait_max_s`, and only when the caller
has no fallback left (it passes `max_retries=0` otherwise), so a Retry-After of 30 s never sits in
front of a fallback provider.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

from shared.ai.models.base import BaseModelClient, ModelEvent, ToolCall, Usage
from shared.config.models import ModelClientSettings
from shared.errors import (
    ApiError,
    ContentFiltered,
    ModelUnavailable,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    ValidationFailed,
)
from shared.resilience import BodyTooSlow, body_deadline_hook, retry_after_from

logger = logging.getLogger(__name__)

_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
_FILTER_CODES = {"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"}
_PARAMETER_CODES = {"unsupported_parameter", "unsupported_value"}
_RETRYABLE_STATUS = {408, 409, 429}
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


def _error_code(exc: Any) -> str:
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if not code and isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            code = inner.get("code") or inner.get("type")
    return str(code or "")


def translate_openai_error(exc: BaseException, provider: str) -> ApiError:
    """The outcome class of an SDK/transport exception.

    Details are our own words; a server's message is quoted only for a rejected request (400),
    never for authentication errors (OpenAI echoes part of the key there).
    """
    if isinstance(exc, ApiError):
        return exc
    import openai  # already imported by the caller's client; cheap

    code = _error_code(exc)
    message = str(getattr(exc, "message", "") or exc)[:300]
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.ContentFilterFinishReasonError) or code in _FILTER_CODES or "content management policy" in message:
        return ContentFiltered("The model provider's content filter blocked this request.", extra={"provider": provider})
    if isinstance(exc, BodyTooSlow):
        return ModelUnavailable(f"{provider} did not finish its answer within {exc.limit_s:g} s", provider=provider)
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(f"{provider} timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(f"{provider} could not be reached", provider=provider)
    if isinstance(exc, openai.BadRequestError):
        if code in _CONTEXT_CODES or "context length" in message:
            return ValidationFailed(
                "The conversation is too long for the model's context window; start a new conversation or shorten the message.",
                extra={"provider": provider},
            )
        if code in _PARAMETER_CODES:
            return UpstreamMisconfigured(f"{provider} rejects a parameter sent to this model (see models.families): {message}",
                                         provider=provider)
        return ModelUnavailable(f"{provider} rejected the request: {message}", provider=provider)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return UpstreamMisconfigured(f"{provider} rejected our credentials (HTTP {status})", provider=provider)
    if isinstance(exc, openai.NotFoundError):
        return UpstreamMisconfigured(f"{provider} does not know the configured model or deployment (HTTP 404)", provider=provider)
    if isinstance(exc, openai.RateLimitError):
        if code == "insufficient_quota":
            return UpstreamMisconfigured(f"{provider} says the account's quota is used up (plan and billing)", provider=provider)
        return UpstreamRateLimited(f"{provider} is rate limiting requests", provider=provider,
                                   retry_after=retry_after_from(exc.response.headers))
    if isinstance(exc, openai.APIStatusError):
        return ModelUnavailable(f"{provider} failed with HTTP {status}", provider=provider)
    if isinstance(exc, openai.APIError):  # an error event inside a 200 stream
        return ModelUnavailable(f"{provider} reported an error in the stream: {message}", provider=provider)
    if isinstance(exc, ValueError):  # a chunk that is not JSON
        return ModelUnavailable(f"{provider} sent a malformed stream", provider=provider)
    return ModelUnavailable(f"{provider} stream failed: {type(exc).__name__}", provider=provider)


def _retryable(exc: BaseException) -> bool:
    """Transient by the HTTP semantics (what the SDK itself would retry), not a quota or a bad request."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return (exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500) and _error_code(exc) != "insufficient_quota"
    return False


def entra_token_provider(scope: str) -> Callable[[], str]:
    """A callable returning a fresh Microsoft Entra ID bearer token for `scope` (cached and refreshed by
    azure-identity; the managed identity in Azure, the developer's login locally)."""
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider  # heavy: first use only

    provider: Callable[[], str] = get_bearer_token_provider(DefaultAzureCredential(), scope)
    return provider


def _add_fragment(calls: list[dict[str, str]], slots: dict[int, int], fragment: Any) -> None:
    """Merge one streamed tool-call fragment into `calls`.

    Fragments of one call share its `index`. Some servers omit `index` (or give parallel calls the same
    one): there a new non-empty `id` different from the current call's starts a new call, and a fragment
    without `id` continues the call it belongs to.
    """
    index: int | None = getattr(fragment, "index", None)
    pos = slots.get(index) if index is not None else (len(calls) - 1 if calls else None)
    fid = fragment.id or ""
    if pos is None or (fid and calls[pos]["id"] and fid != calls[pos]["id"]):
        calls.append({"id": "", "name": "", "arguments": ""})
        pos = len(calls) - 1
        if index is not None:
            slots[index] = pos
    call = calls[pos]
    if fid:
        call["id"] = fid
    fn = fragment.function
    if fn is not None:
        if fn.name and fn.name != call["name"]:  # some servers repeat the whole name in every fragment
            call["name"] += fn.name
        if fn.arguments:
            call["arguments"] += fn.arguments


class OpenAIChat(BaseModelClient):
    """Chat Completions with tools over the openai SDK, always streamed.

    Guarantees (beyond BaseModelClient's): the SDK client is created once, on first use; timeouts are
    explicit (connect, first token / silence, whole answer); the `usage` event carries the last usage
    the stream reported (servers that send running totals are not summed); request parameters in
    `omit` are never sent; with `entra_scope` the key is a Microsoft Entra ID token.
    """

    def __init__(
        self,
        *,
        provider: str = "openai",
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        settings: ModelClientSettings | None = None,
        retry_wait_max_s: float = 1.0,
        omit: Collection[str] = (),
        entra_scope: str | None = None,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self._settings = settings or ModelClientSettings()
        self._retry_wait_max_s = retry_wait_max_s
        self._omit = frozenset(omit)
        self._entra_scope = entra_scope
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, base_url={self._base_url!r})"

    # -- client ---------------------------------------------------------------------------------
    def _timeout(self) -> Any:
        from openai import Timeout

        s = self._settings
        # `read` bounds every silence, the longest being the wait for the first token.
        return Timeout(s.stream_timeout_s, connect=s.connect_timeout_s, read=s.first_token_timeout_s,
                       pool=s.connect_timeout_s)

    def _http_client(self) -> Any:
        """The SDK's own HTTP client (its defaults, proxies from the environment) with the whole-answer bound:
        httpx has none (its `read` timeout bounds each silence, not an answer)."""
        import httpx2  # the SDK's HTTP library, loaded with it
        from openai import DefaultHttpxClient

        return DefaultHttpxClient(timeout=self._timeout(), event_hooks={"response": [
            body_deadline_hook(httpx2.SyncByteStream, self._settings.stream_timeout_s, clock=self._clock)]})

    def _make_client(self) -> Any:
        from openai import OpenAI  # heavy: imported on first use only

        api_key: str | Callable[[], str]
        if self._entra_scope:
            api_key = entra_token_provider(self._entra_scope)
        else:
            api_key = self._api_key or "not-needed"  # OpenAI-compatible local servers often need no key
        return OpenAI(api_key=api_key, base_url=self._base_url, timeout=self._timeout(), max_retries=0,
                      http_client=self._http_client())

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def close(self) -> None:
        c = self._client
        if c is not None and hasattr(c, "close"):
            c.close()

    def _request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, opts: dict[str, Any]) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True,
                               "stream_options": {"include_usage": True}}
        if tools:
            req["tools"] = tools
            req["tool_choice"] = opts.get("tool_choice", "auto")
        if opts.get("temperature") is not None:
            req["temperature"] = float(opts["temperature"])
        for name in self._omit:
            req.pop(name, None)
        return req

    # -- calls ----------------------------------------------------------------------------------
    def _retry_wait(self, exc: BaseException, err: ApiError, attempt: int) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None: do not retry."""
        if not _retryable(exc):
            return None
        wait = min(0.25 * 2.0**attempt, self._retry_wait_max_s)
        if isinstance(err, UpstreamRateLimited) and err.retry_after is not None:
            if err.retry_after > self._retry_wait_max_s:
                return None  # the upstream asked for longer than we wait: report it now
            wait = float(err.retry_after)
        return wait

    def generate_stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                        **opts: Any) -> Iterator[ModelEvent]:
        """`opts`: temperature, tool_choice, and max_retries (this call's retries; the factory passes 0
        when a fallback provider follows). Errors before the stream starts raise here."""
        req = self._request(messages, tools, opts)
        retries = int(opts.get("max_retries", self._settings.max_retries))
        attempt = 0
        while True:
            try:
                stream = self.client.chat.completions.create(**req)
                break
            except Exception as exc:
                err = translate_openai_error(exc, self.provider)
                wait = self._retry_wait(exc, err, attempt) if attempt < retries else None
                if wait is None:
                    raise err from exc
                logger.info("%s failed (%s); retrying in %.2f s", self.provider, err.title, wait)
                self._sleep(wait)
                attempt += 1
        return self._iterate(stream)

    def _iterate(self, stream: Any) -> Iterator[ModelEvent]:
        # Tool calls arrive as fragments; they are emitted whole once the stream has finished.
        calls: list[dict[str, str]] = []
        slots: dict[int, int] = {}
        usage: Usage | None = None
        finish_reason: str | None = None
        failure: ApiError | None = None
        cause: BaseException | None = None
        try:
            try:
                for chunk in stream:
                    u = getattr(chunk, "usage", None)
                    if u is not None:  # the last report wins: vLLM-style servers send running totals
                        usage = Usage(u.prompt_tokens or 0, u.completion_tokens or 0, u.total_tokens or 0)
                    for choice in chunk.choices or []:
                        delta = getattr(choice, "delta", None)  # Azure's filter annotations carry none
                        if delta is not None:
                            if delta.content:
                                yield ModelEvent("delta", text=delta.content)
                            for fragment in delta.tool_calls or []:
                                _add_fragment(calls, slots, fragment)
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
            except Exception as exc:  # GeneratorExit (the consumer closed us) is not an Exception: it passes
                failure = translate_openai_error(exc, self.provider)
                cause = exc if failure is not exc else None
            if failure is None and finish_reason is None:
                # The connection ended without a finish_reason: a cut stream, not a complete answer.
                failure = ModelUnavailable(f"{self.provider} stream ended before the answer was complete", provider=self.provider)
            if usage is not None:  # reported even when the stream failed, so the tokens are charged
                yield ModelEvent("usage", usage=usage)
            if failure is not None:
                raise failure from cause
            if finish_reason == "content_filter":
                raise ContentFiltered("The model provider's content filter blocked this answer.", extra={"provider": self.provider})
            for i, call in enumerate(calls):
                yield ModelEvent("tool_call", tool_call=ToolCall(call["id"] or f"call_{i}", call["name"], call["arguments"]))
            yield ModelEvent("finish", finish_reason=finish_reason)
        finally:
            # Propagates consumer cancellation to the HTTP response.
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # closing a broken stream must not mask the original error
                    logger.debug("closing %s stream failed", self.provider, exc_info=True)


class AzureOpenAIChat(OpenAIChat):
    """Azure OpenAI through `AzureOpenAI` + api_version (deployment URLs), with an API key or Microsoft
    Entra ID. (The v1 endpoint, `.../openai/v1/`, is plain `OpenAIChat`.)"""

    def __init__(self, *, endpoint: str, deployment: str, api_version: str, use_entra_id: bool = False, **kw: Any) -> None:
        super().__init__(provider="azure_openai", model=deployment, base_url=endpoint,
                         entra_scope=AZURE_SCOPE if use_entra_id else None, **kw)
        self._api_version = api_version

    def _make_client(self) -> Any:
        from openai import AzureOpenAI  # heavy: imported on first use only

        kw: dict[str, Any] = {
            "azure_endpoint": self._base_url,
            "azure_deployment": self.model,
            "api_version": self._api_version,
            "timeout": self._timeout(),
            "max_retries": 0,
            "http_client": self._http_client(),
        }
        if self._entra_scope:
            kw["azure_ad_token_provider"] = entra_token_provider(self._entra_scope)
        else:
            kw["api_key"] = self._api_key
        return AzureOpenAI(**kw)
