"""ModelFactory: which model providers are configured, which one answers a request, and fallback.

Guarantees:
- clients are created once per factory (per worker) and reused; nothing is created for unconfigured providers;
- the provider is the explicit request, else the user's preference (when configured), else
  settings.models.provider (when configured), else the first configured provider of fallback_order;
- with allow_fallback, a provider failing *before its first event* is skipped for the next configured one
  in fallback_order (shared.resilience.first_success: one breaker per provider, policy models.breaker),
  each switch recorded as {provider, outcome, error[, retry_after]}; a provider with a fallback behind it
  is never retried or made to wait; a failure after the first event is raised to the caller (never a
  silent switch) and counted on the provider's breaker;
- describe() never exposes keys.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from shared.ai.models.base import BaseModelClient, ModelEvent
from shared.config.models import ModelClientSettings, ModelFamily, Settings
from shared.errors import ContentFiltered, ModelUnavailable, NotFound, UpstreamError, ValidationFailed
from shared.resilience import (
    DISABLED,
    BreakerBoard,
    BreakerPolicy,
    ChainExhausted,
    exhausted_error,
    first_success,
    record_outcome,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from shared.ai.models.openai_chat import OpenAIChat

logger = logging.getLogger(__name__)

PROVIDERS = ("openai", "grok", "azure_openai", "compatible", "offline")

# Errors about the request itself: another provider would not make them right.
_REQUEST_ERRORS = (NotFound, ValidationFailed, ContentFiltered)


def omitted_params(model: str, families: Mapping[str, ModelFamily]) -> frozenset[str]:
    """Request parameters `model` rejects: the family whose pattern matches its name most specifically
    (longest pattern) decides. The name is matched without a vendor prefix ("openai/o3" -> "o3")."""
    name = model.rsplit("/", 1)[-1].lower()
    best: tuple[int, Sequence[str]] | None = None
    for family in families.values():
        for pattern in family.match:
            if fnmatch.fnmatchcase(name, pattern.lower()) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), family.omit)
    return frozenset(best[1]) if best else frozenset()


def is_azure_v1_endpoint(endpoint: str) -> bool:
    """`https://<resource>.openai.azure.com/openai/v1/`: the v1 API, spoken by the plain OpenAI client."""
    return endpoint.rstrip("/").endswith("/openai/v1")


class ModelFactory:
    def __init__(
        self,
        settings: Settings,
        *,
        clients: dict[str, BaseModelClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`clients` pre-seeds (or overrides) provider clients, e.g. with fakes in tests; `sleep` is what
        built clients wait with between their own retries."""
        self.settings = settings
        self._m = settings.models
        self._clients: dict[str, BaseModelClient] = dict(clients or {})
        self._overrides = set(self._clients)
        self._lock = threading.Lock()
        b = self._m.breaker
        self._breakers = BreakerBoard(BreakerPolicy(
            failure_threshold=b.failure_threshold, cooldown_s=b.cooldown_s, half_open_max_calls=b.half_open_max_calls,
            open_on_rate_limit=b.open_on_rate_limit, misconfigured_recheck_s=b.misconfigured_recheck_s,
        ), clock=clock)
        self._sleep = sleep

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
            "openai": m.openai.model or "",
            "grok": m.grok.model or "",
            "azure_openai": m.azure_openai.deployment or "",
            "compatible": m.compatible.model or m.openai.model or "",
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
        from shared.ai.models.openai_chat import AZURE_SCOPE, AzureOpenAIChat

        m = self._m
        if name == "offline":
            return OfflineModel()
        if name in ("openai", "grok", "compatible"):
            ps = m.compatible if name == "compatible" else (m.openai if name == "openai" else m.grok)
            scope = m.compatible.entra_scope if name == "compatible" and m.compatible.use_entra_id else None
            return self._openai_chat(name, self.model_name(name), ps.api_key, ps.base_url, ps, entra_scope=scope)
        if name == "azure_openai":
            az = m.azure_openai
            assert az.endpoint and az.deployment  # configured() checked it
            family = az.model or az.deployment
            if is_azure_v1_endpoint(az.endpoint):
                base_url = az.endpoint.rstrip("/") + "/"
                return self._openai_chat(name, az.deployment, az.api_key, base_url, az, family=family,
                                         entra_scope=AZURE_SCOPE if az.use_entra_id else None)
            return AzureOpenAIChat(endpoint=az.endpoint, deployment=az.deployment, api_version=az.api_version,
                                   use_entra_id=az.use_entra_id, api_key=_secret(az.api_key), settings=az,
                                   retry_wait_max_s=m.retry_wait_max_s, omit=omitted_params(family, m.families),
                                   sleep=self._sleep)
        raise ValidationFailed(f"unknown model provider {name!r}")

    def _openai_chat(self, name: str, model: str, key: SecretStr | None, base_url: str | None, ps: ModelClientSettings, *,
                     family: str | None = None, entra_scope: str | None = None) -> OpenAIChat:
        from shared.ai.models.openai_chat import OpenAIChat

        m = self._m
        return OpenAIChat(provider=name, model=model, api_key=_secret(key), base_url=base_url, settings=ps,
                          retry_wait_max_s=m.retry_wait_max_s, omit=omitted_params(family or model, m.families),
                          entra_scope=entra_scope, sleep=self._sleep)

    # -- health ----------------------------------------------------------------------------------
    def breaker_state(self, name: str) -> str:
        breaker = self._breakers.get(name)
        return str(breaker.snapshot()["state"]) if breaker is not None else "closed"

    def describe(self) -> list[dict[str, Any]]:
        """Providers for GET /api/v1/models: {name, configured, model, default, healthy, breaker, misconfigured} (no keys)."""
        default = self.resolve()
        out = []
        for p in PROVIDERS:
            state = self.breaker_state(p)
            out.append({
                "name": p,
                "configured": self.configured(p),
                "model": self.model_name(p) if self.configured(p) else None,
                "default": p == default,
                "healthy": state not in ("open", DISABLED),
                "breaker": state,
                "misconfigured": state == DISABLED,
            })
        return out

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the default provider's breaker is neither open nor disabled (fallbacks keep chat
        working). Details: the default `provider` and its `breaker`; every configured provider's breaker
        snapshot (`providers`) and those whose upstream rejected our configuration (`misconfigured`), which
        make the status `degraded` even while another provider answers."""
        default = self.resolve()
        providers = {p: self._breakers[p].snapshot() for p in self.configured_providers()}
        misconfigured = sorted(p for p, snap in providers.items() if snap["misconfigured"])
        state = str(providers[default]["state"])
        healthy = state not in ("open", DISABLED)
        return healthy, {"status": "healthy" if healthy and not misconfigured else "degraded", "provider": default,
                         "breaker": state, "providers": providers, "misconfigured": misconfigured}

    # -- calls with fallback -------------------------------------------------------------------
    def _debug_log(self, provider: str, messages: list[dict[str, Any]]) -> None:
        if self._m.debug_prompt and self.settings.app.env == "local":
            logger.info("model prompt (%s): %s", provider, messages)

    def open_stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        candidates: list[str],
        fallback_trace: list[dict[str, Any]],
        **opts: Any,
    ) -> tuple[str, BaseModelClient, Iterator[ModelEvent]]:
        """Start a stream on the first candidate that produces a first event.

        Returns (provider, client, events) where events already includes that first event. Providers that fail
        before it are appended to `fallback_trace`. Errors about the request itself (ContentFiltered,
        ValidationFailed) are raised at once: another provider would not make them right. When every
        candidate fails, raises the error that sums them up (rate limited, misconfigured or ModelUnavailable).
        """
        last = len(candidates) - 1

        def start(target: tuple[str, bool]) -> tuple[BaseModelClient, Iterator[ModelEvent]]:
            name, has_fallback = target
            client = self.get(name)
            self._debug_log(name, messages)
            call_opts = {**opts, "max_retries": 0} if has_fallback else opts
            it = iter(client.generate_stream(messages, tools, **call_opts))
            try:
                first = next(it)
            except StopIteration:
                raise ModelUnavailable(f"{name} returned an empty stream", provider=name) from None
            except BaseException:
                _close(it)
                raise
            return client, self._chain(name, first, it)

        links = [(name, (name, i < last)) for i, name in enumerate(candidates)]
        try:
            result = first_success(links, start, self._breakers, stop_on=_REQUEST_ERRORS)
        except ChainExhausted as exc:
            fallback_trace.extend(a.as_dict() for a in exc.attempts)
            raise exhausted_error(exc.attempts, "this chat", unavailable=ModelUnavailable) from None
        fallback_trace.extend(a.as_dict() for a in result.attempts)
        client, events = result.value
        return result.provider, client, events

    def _chain(self, name: str, first: ModelEvent, it: Iterator[ModelEvent]) -> Iterator[ModelEvent]:
        try:
            yield first
            yield from it
        except UpstreamError as exc:  # failed after its first event: the breaker hears of it too
            record_outcome(self._breakers[name], exc)
            raise
        finally:
            _close(it)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _close(it: Iterator[Any]) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()
