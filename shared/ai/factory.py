"""ModelFactory: which model providers are configured, which one answers a request, and fallback.

Guarantees:
- clients are created once per factory (per worker) and reused; nothing is created for unconfigured providers;
- the provider is the explicit request, else the user's preference (when configured), else
  settings.models.provider (when configured), else the first configured provider of fallback_order;
- with allow_fallback, a provider failing *before its first event* is skipped for the next configured one
  in fallback_order, each switch recorded as {provider, error}; a failure after the first event is raised
  to the caller (never a silent switch);
- describe() never exposes keys.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from shared.ai.models.base import BaseModelClient, ModelEvent
from shared.errors import ApiError, ModelUnavailable, UpstreamError, ValidationFailed

logger = logging.getLogger(__name__)

PROVIDERS = ("openai", "grok", "azure_openai", "compatible", "offline")


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None


class ModelFactory:
    def __init__(
        self,
        settings: Any,
        *,
        clients: dict[str, BaseModelClient] | None = None,
        breaker_threshold: int = 3,
        breaker_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clients` pre-seeds (or overrides) provider clients, e.g. with fakes in tests."""
        self.settings = settings
        self._m = settings.models
        self._clients: dict[str, BaseModelClient] = dict(clients or {})
        self._overrides = set(self._clients)
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}
        self._threshold = breaker_threshold
        self._cooldown = breaker_cooldown_s
        self._clock = clock

    # -- configuration ---------------------------------------------------------------------------
    def configured(self, name: str) -> bool:
        if name in self._overrides or name == "offline":
            return True
        m = self._m
        if name == "openai":
            return m.openai.api_key is not None
        if name == "grok":
            return m.grok.api_key is not None
        if name == "azure_openai":
            az = m.azure_openai
            return bool(az.endpoint and az.deployment and (az.api_key is not None or az.use_entra_id))
        if name == "compatible":
            return bool(m.compatible.base_url)
        return False

    def configured_providers(self) -> list[str]:
        return [p for p in PROVIDERS if self.configured(p)]

    def model_name(self, name: str) -> str:
        if name in self._clients:
            return self._clients[name].model
        m = self._m
        return {
            "openai": m.openai.model or "gpt-4o-mini",
            "grok": m.grok.model or "grok-3-mini",
            "azure_openai": m.azure_openai.deployment or "",
            "compatible": m.compatible.model or m.openai.model or "gpt-4o-mini",
            "offline": "offline-template-v1",
        }.get(name, "")

    def resolve(self, provider: str | None = None, preference: str | None = None) -> str:
        """The primary provider for a request. An explicit unknown/unconfigured provider is a 422."""
        if provider:
            if provider not in PROVIDERS and provider not in self._overrides:
                raise ValidationFailed(f"unknown model provider {provider!r}", errors={"provider": [f"must be one of {', '.join(PROVIDERS)}"]})
            if not self.configured(provider):
                raise ValidationFailed(f"model provider {provider!r} is not configured", errors={"provider": ["not configured"]})
            return provider
        if preference and self.configured(preference):
            return preference
        if self.configured(self._m.provider):
            return self._m.provider
        for p in self._m.fallback_order:
            if self.configured(p):
                return p
        return "offline"

    def candidates(self, provider: str | None = None, preference: str | None = None) -> list[str]:
        """Primary first, then (with allow_fallback) the other configured providers in fallback_order."""
        primary = self.resolve(provider, preference)
        out = [primary]
        if self._m.allow_fallback:
            out += [p for p in self._m.fallback_order if p not in out and self.configured(p)]
        return out

    # -- clients ---------------------------------------------------------------------------------
    def get(self, name: str) -> BaseModelClient:
        """The provider's client, created once and reused."""
        client = self._clients.get(name)
        if client is not None:
            return client
        if not self.configured(name):
            raise ValidationFailed(f"model provider {name!r} is not configured")
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._build(name)
                self._clients[name] = client
        return client

    def _build(self, name: str) -> BaseModelClient:
        from shared.ai.models.offline import OfflineModel
        from shared.ai.models.openai_chat import AzureOpenAIChat, OpenAIChat

        m = self._m

        def secret(v: Any) -> str | None:
            return v.get_secret_value() if v is not None else None

        if name == "offline":
            return OfflineModel()
        if name in ("openai", "grok"):
            ps = getattr(m, name)
            base_url = ps.base_url or ("https://api.x.ai/v1" if name == "grok" else None)
            return OpenAIChat(provider=name, model=self.model_name(name), api_key=secret(ps.api_key), base_url=base_url,
                              timeout_s=ps.timeout_s, max_retries=ps.max_retries)
        if name == "compatible":
            ps = m.compatible
            return OpenAIChat(provider="compatible", model=self.model_name(name), api_key=secret(ps.api_key),
                              base_url=ps.base_url, timeout_s=ps.timeout_s, max_retries=ps.max_retries)
        if name == "azure_openai":
            az = m.azure_openai
            return AzureOpenAIChat(endpoint=az.endpoint, deployment=az.deployment, api_version=az.api_version,
                                   api_key=secret(az.api_key), use_entra_id=az.use_entra_id,
                                   timeout_s=az.timeout_s, max_retries=az.max_retries)
        raise ValidationFailed(f"unknown model provider {name!r}")

    # -- health ----------------------------------------------------------------------------------
    def _breaker(self, name: str) -> _Breaker:
        return self._breakers.setdefault(name, _Breaker())

    def breaker_state(self, name: str) -> str:
        b = self._breakers.get(name)
        if b is None or b.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - b.opened_at >= self._cooldown else "open"

    def record_success(self, name: str) -> None:
        with self._lock:
            self._breakers[name] = _Breaker()

    def record_failure(self, name: str) -> None:
        if name == "offline":
            return
        with self._lock:
            b = self._breaker(name)
            b.failures += 1
            if b.failures >= self._threshold:
                b.opened_at = self._clock()

    def describe(self) -> list[dict]:
        """Providers for GET /api/v1/models: {name, configured, model, default, healthy, breaker} (no keys)."""
        default = self.resolve()
        out = []
        for p in PROVIDERS:
            state = self.breaker_state(p)
            out.append({
                "name": p,
                "configured": self.configured(p),
                "model": self.model_name(p) if self.configured(p) else None,
                "default": p == default,
                "healthy": state != "open",
                "breaker": state,
            })
        return out

    # -- calls with fallback -------------------------------------------------------------------
    def _debug_log(self, provider: str, messages: list[dict]) -> None:
        if self._m.debug_prompt and self.settings.app.env == "local":
            logger.info("model prompt (%s): %s", provider, messages)

    def open_stream(
        self,
        messages: list[dict],
        tools: list[dict] | None,
        candidates: list[str],
        fallback_trace: list[dict],
        **opts: Any,
    ) -> tuple[str, BaseModelClient, Iterator[ModelEvent]]:
        """Start a stream on the first candidate that produces a first event.

        Returns (provider, client, events) where events already includes that first event. Providers that fail
        before it are appended to `fallback_trace`. Errors about the request itself (ContentFiltered,
        ValidationFailed) are raised at once: another provider would not make them right.
        """
        last_error: ApiError | None = None
        for i, name in enumerate(candidates):
            is_last = i == len(candidates) - 1
            if self.breaker_state(name) == "open" and not is_last:
                fallback_trace.append({"provider": name, "error": "circuit open (recent failures)"})
                continue
            it: Iterator[ModelEvent] | None = None
            try:
                client = self.get(name)
                self._debug_log(name, messages)
                it = iter(client.generate_stream(messages, tools, **opts))
                first = next(it)
            except StopIteration:
                err: ApiError = ModelUnavailable(f"{name} returned an empty stream", provider=name)
            except UpstreamError as exc:
                err = exc
            except ApiError:
                raise
            except Exception as exc:  # a client bug must not take the whole chat down when others exist
                logger.exception("model client %s failed", name)
                err = ModelUnavailable(f"{name} failed: {type(exc).__name__}", provider=name)
            else:
                return name, client, self._chain(name, first, it)
            if it is not None and hasattr(it, "close"):
                it.close()
            self.record_failure(name)
            last_error = err
            fallback_trace.append({"provider": name, "error": err.detail})
            if not self._m.allow_fallback:
                break
        assert last_error is not None
        raise last_error

    def _chain(self, name: str, first: ModelEvent, it: Iterator[ModelEvent]) -> Iterator[ModelEvent]:
        try:
            yield first
            for ev in it:
                yield ev
                if ev.type == "finish":
                    self.record_success(name)
        except UpstreamError:
            self.record_failure(name)
            raise
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
