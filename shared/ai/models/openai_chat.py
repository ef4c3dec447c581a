"""OpenAI Chat Completions adapter (OpenAI, Grok, Azure OpenAI, any OpenAI-compatible endpoint).

Only this module imports the `openai` SDK (lazily, on first use) and it translates every SDK error
into shared.errors classes, so nothing above it sees an SDK exception.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterator

from shared.ai.models.base import BaseModelClient, ModelEvent, ToolCall, Usage
from shared.errors import ApiError, ContentFiltered, ModelUnavailable, ValidationFailed

logger = logging.getLogger(__name__)

_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
_FILTER_CODES = {"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"}


def _error_code(exc: Any) -> str:
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if not code and isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            code = inner.get("code") or inner.get("type")
    return str(code or "")


def translate_openai_error(exc: BaseException, provider: str) -> ApiError:
    """Map an SDK/transport exception to our error classes (never leaks keys: messages come from the server)."""
    if isinstance(exc, ApiError):
        return exc
    import openai  # already imported by the caller's client; cheap

    code = _error_code(exc)
    message = str(getattr(exc, "message", "") or exc)[:300]
    if isinstance(exc, openai.ContentFilterFinishReasonError) or code in _FILTER_CODES or "content management policy" in message:
        return ContentFiltered("The model provider's content filter blocked this request.", extra={"provider": provider})
    if isinstance(exc, openai.BadRequestError):
        if code in _CONTEXT_CODES or "maximum context length" in message or "context length" in message:
            return ValidationFailed(
                "The conversation is too long for the model's context window; start a new conversation or shorten the message.",
                extra={"provider": provider},
            )
        return ModelUnavailable(f"{provider} rejected the request: {message}", provider=provider)
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(f"{provider} timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(f"{provider} could not be reached", provider=provider)
    if isinstance(exc, openai.AuthenticationError):
        return ModelUnavailable(f"{provider} rejected our credentials", provider=provider)
    if isinstance(exc, openai.RateLimitError):
        return ModelUnavailable(f"{provider} is rate limiting requests", provider=provider)
    if isinstance(exc, openai.APIStatusError):
        return ModelUnavailable(f"{provider} failed with HTTP {exc.status_code}", provider=provider)
    return ModelUnavailable(f"{provider} stream failed: {type(exc).__name__}", provider=provider)


class OpenAIChat(BaseModelClient):
    """Chat Completions with tools over the openai SDK.

    The SDK client is created on first use, once, and reused; timeouts and retries are always explicit
    (never the SDK's 10-minute default).
    """

    def __init__(
        self,
        *,
        provider: str = "openai",
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 1,
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_s = float(timeout_s)
        self._max_retries = int(max_retries)
        self._client = client
        self._client_factory = client_factory
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, base_url={self._base_url!r})"

    # -- client ---------------------------------------------------------------------------------
    def _make_client(self) -> Any:
        from openai import OpenAI  # heavy: imported on first use only

        return OpenAI(
            api_key=self._api_key or "not-needed",  # OpenAI-compatible local servers often need no key
            base_url=self._base_url,
            timeout=self._timeout_s,
            max_retries=self._max_retries,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._client_factory() if self._client_factory else self._make_client()
        return self._client

    def close(self) -> None:
        c = self._client
        if c is not None and hasattr(c, "close"):
            c.close()

    def _request(self, messages: list[dict], tools: list[dict] | None, opts: dict[str, Any]) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            req["tools"] = tools
            req["tool_choice"] = opts.get("tool_choice", "auto")
        if opts.get("temperature") is not None:
            req["temperature"] = float(opts["temperature"])
        if opts.get("max_tokens") is not None:
            req["max_tokens"] = int(opts["max_tokens"])
        return req

    # -- calls ----------------------------------------------------------------------------------
    def generate_stream(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> Iterator[ModelEvent]:
        req = self._request(messages, tools, opts)
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
        try:
            stream = self.client.chat.completions.create(**req)
        except Exception as exc:
            raise translate_openai_error(exc, self.provider) from exc
        return self._iterate(stream)

    def _iterate(self, stream: Any) -> Iterator[ModelEvent]:
        # Tool calls arrive as fragments keyed by index; they are emitted whole once the choice finishes.
        partial: dict[int, dict[str, str]] = {}
        finish_reason: str | None = None
        try:
            try:
                for chunk in stream:
                    if getattr(chunk, "usage", None) is not None:
                        u = chunk.usage
                        yield ModelEvent("usage", usage=Usage(u.prompt_tokens or 0, u.completion_tokens or 0, u.total_tokens or 0))
                    for choice in chunk.choices or []:
                        delta = choice.delta
                        if delta is not None:
                            if delta.content:
                                yield ModelEvent("delta", text=delta.content)
                            for tc in delta.tool_calls or []:
                                slot = partial.setdefault(tc.index or 0, {"id": "", "name": "", "arguments": ""})
                                if tc.id:
                                    slot["id"] = tc.id
                                fn = tc.function
                                if fn is not None:
                                    if fn.name:
                                        slot["name"] += fn.name
                                    if fn.arguments:
                                        slot["arguments"] += fn.arguments
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
            except GeneratorExit:
                raise
            except Exception as exc:
                raise translate_openai_error(exc, self.provider) from exc
            if finish_reason is None:
                # The connection ended without a finish_reason: a cut stream, not a complete answer.
                raise ModelUnavailable(f"{self.provider} stream ended before the answer was complete", provider=self.provider)
            if finish_reason == "content_filter":
                raise ContentFiltered("The model provider's content filter blocked this answer.", extra={"provider": self.provider})
            for i in sorted(partial):
                slot = partial[i]
                yield ModelEvent("tool_call", tool_call=ToolCall(slot["id"] or f"call_{i}", slot["name"], slot["arguments"]))
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
    """Azure OpenAI: endpoint + deployment, API key or Entra ID (azure-identity token provider)."""

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        api_version: str,
        api_key: str | None = None,
        use_entra_id: bool = False,
        timeout_s: float = 30.0,
        max_retries: int = 1,
        client: Any = None,
    ) -> None:
        super().__init__(
            provider="azure_openai", model=deployment, api_key=api_key, base_url=endpoint,
            timeout_s=timeout_s, max_retries=max_retries, client=client,
        )
        self._api_version = api_version
        self._use_entra_id = use_entra_id

    def _make_client(self) -> Any:
        from openai import AzureOpenAI  # heavy: imported on first use only

        kw: dict[str, Any] = {
            "azure_endpoint": self._base_url,
            "azure_deployment": self.model,
            "api_version": self._api_version,
            "timeout": self._timeout_s,
            "max_retries": self._max_retries,
        }
        if self._api_key and not self._use_entra_id:
            kw["api_key"] = self._api_key
        else:
            from azure.identity import DefaultAzureCredential, get_bearer_token_provider

            kw["azure_ad_token_provider"] = get_bearer_token_provider(
                DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"
            )
        return AzureOpenAI(**kw)

