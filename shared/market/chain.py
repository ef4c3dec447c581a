"""The configured market-data providers per data type, each behind its breaker, asked in order.

One routine (``_first``, built on ``shared.resilience.first_success``) answers single calls and batches alike:
a batch asks each provider that can batch once for every symbol still open, then settles each symbol through
the same routine, so NotFound, Unsupported, rate limits, misconfiguration, open breakers and ``fallback_from``
mean the same thing per symbol as for a single call.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from shared.errors import ApiError, MarketDataUnavailable, NotFound, UpstreamMisconfigured
from shared.resilience import (
    OPEN,
    BreakerBoard,
    ChainExhausted,
    first_success,
)
from shared.resilience import exhausted_error as _exhausted

logger = logging.getLogger(__name__)

T = TypeVar("T")
Link = tuple[str, Any]  # (provider name, provider)
# The provider method each data type needs (a provider offering only some is skipped for the others).
METHODS = {
    "quote": "get_quote",
    "history": "get_history",
    "fundamentals": "get_fundamentals",
    "news": "get_news",
    "search": "search_symbols",
}


class ProviderChain:
    """Providers by name (built on first use by ``factory``; None: it cannot run as configured) in the order
    ``order[kind]``; one breaker per provider on ``breakers``."""

    def __init__(self, order: Mapping[str, Sequence[str]], breakers: BreakerBoard, *,
                 providers: Mapping[str, Any] | None = None, factory: Callable[[str], Any] | None = None) -> None:
        self._order = {kind: list(order.get(kind) or []) for kind in METHODS}
        self.breakers = breakers
        self._providers: dict[str, Any] = dict(providers or {})
        self._factory = factory
        self._unbuildable: dict[str, str] = {}  # name -> why it cannot run
        self._lock = threading.Lock()
        self._upstream: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._calls = 0  # provider methods actually invoked (one batch call is one)

    # -- providers --------------------------------------------------------------------------
    def names(self, kind: str | None = None) -> list[str]:
        """The configured order for ``kind``, or every configured provider once."""
        if kind is not None:
            return list(self._order[kind])
        return list(dict.fromkeys(n for k in METHODS for n in self._order[k]))

    def provider(self, name: str) -> Any:
        with self._lock:
            if name in self._providers:
                return self._providers[name]
            if name in self._unbuildable:
                return None
        built, reason = None, "no such provider"
        if self._factory is not None:
            try:
                built = self._factory(name)
                reason = "not configured (see the start-up log)"
            except Exception as exc:  # noqa: BLE001 - a provider that cannot be built is skipped, loudly
                reason = str(exc) or type(exc).__name__
        with self._lock:
            if built is None:
                self._unbuildable[name] = reason
                logger.error("market data provider %s cannot run: %s", name, reason, extra={"provider": name})
                return None
            return self._providers.setdefault(name, built)

    def check(self) -> dict[str, str]:
        """Build every configured provider; those that cannot run, with the reason (each logged once, as an error)."""
        for name in self.names():
            self.provider(name)
        logger.info("market data providers: %s", "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in self._order.items()))
        with self._lock:
            return dict(self._unbuildable)

    # -- calls ------------------------------------------------------------------------------
    def call(self, kind: str, what: str, call: Callable[[Any], T]) -> T:
        """The first provider's answer (``fallback_from`` stamped); NotFound as is; else the one summary error."""
        return self._first(kind, what, lambda link: call(self._invoked(link[1])))

    def call_many(self, kind: str, subjects: Sequence[str], one: Callable[[Any, str], T], batch_method: str,
                  batch: Callable[[Any, list[str]], Mapping[str, T | ApiError]]) -> dict[str, T | ApiError]:
        """Every subject's answer or error. A provider offering ``batch_method`` is asked once for all subjects
        still open when the chain reaches it; the others are asked per subject."""
        out: dict[str, T | ApiError] = {}
        asked: dict[str, Mapping[str, T | ApiError] | Exception] = {}

        def ask(name: str, provider: Any) -> None:
            open_ = [s for s in subjects if s not in out and not _answered(asked.values(), s)]
            try:
                asked[name] = batch(self._invoked(provider), open_)
            except Exception as exc:  # noqa: BLE001 - settled per subject below, like any provider failure
                asked[name] = exc

        def via(link: Link, subject: str) -> T:
            name, provider = link
            if not callable(getattr(provider, batch_method, None)):
                return one(self._invoked(provider), subject)
            if name not in asked:
                ask(name, provider)
            got = asked[name]
            if isinstance(got, Exception):
                raise got
            item = got.get(subject)
            if item is None:  # the batch left it out: ask for it alone
                return one(self._invoked(provider), subject)
            if isinstance(item, ApiError):
                raise item
            return item

        # The first provider batches: ask it before settling anyone, so the subjects it answers are settled (and
        # reach its breaker) before those it failed, whichever comes first in the request. Its breaker is only
        # consulted here (the slot given back): each subject's settlement records the verdict.
        order = self._order[kind]
        first = self.provider(order[0]) if order else None
        if first is not None and callable(getattr(first, batch_method, None)) and self.breakers[order[0]].allow():
            self.breakers[order[0]].release()
            ask(order[0], first)
        pending = list(subjects)
        while pending:
            # Settle what a batch already answered first (a value, or NotFound: a healthy answer too): they reach
            # the breaker before its failures, so a few unpriced or throttled symbols cannot open it while good
            # answers are still in hand.
            pending.sort(key=lambda s: not _answered(asked.values(), s))
            subject = pending.pop(0)
            try:
                out[subject] = self._first(kind, f"{kind} {subject}", lambda link, s=subject: via(link, s))
            except ApiError as exc:
                out[subject] = exc
        return out

    def _first(self, kind: str, what: str, call: Callable[[Link], T]) -> T:
        """The one fallback routine (see the module docstring)."""
        method = METHODS[kind]
        # A provider that cannot run as configured stays in the chain as a misconfigured link: it is named in
        # fallback_from and in the error like any provider that failed (all misconfigured -> 503).
        links = [(name, (name, provider)) for name in self._order[kind]
                 if (provider := self.provider(name)) is None or callable(getattr(provider, method, None))]

        def checked(link: Link) -> T:
            if link[1] is None:
                raise UpstreamMisconfigured(self._unbuildable.get(link[0]), provider=link[0])
            return call(link)

        try:
            result = first_success(links, checked, self.breakers, on_outcome=self._count)
        except ChainExhausted as exc:
            raise _exhausted(exc.attempts, what, unavailable=MarketDataUnavailable, extra={"data_type": kind}) from None
        return _stamp_fallback(result.value, result.failed)

    def _invoked(self, provider: Any) -> Any:
        with self._lock:
            self._calls += 1
        return provider

    def _count(self, name: str, outcome: str) -> None:
        with self._lock:
            self._upstream[name][outcome] += 1

    # -- health and stats -------------------------------------------------------------------
    def upstream_calls(self) -> int:
        """Provider calls made so far (a batch call counts once; open breakers refuse without a call)."""
        with self._lock:
            return self._calls

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while every data type has a usable provider (built, breaker neither open nor disabled).

        A provider that cannot run as configured, or whose upstream rejected our configuration (bad key,
        missing plan), shows ``misconfigured: true``, is listed in ``misconfigured`` and makes the status
        ``degraded`` even while others answer for it."""
        providers: dict[str, Any] = {}
        for name in self.names():
            provider = self.provider(name)  # building is cheap: SDKs load on first call
            if provider is None:
                providers[name] = {"state": "misconfigured", "misconfigured": True, "reason": self._unbuildable.get(name)}
                continue
            providers[name] = self.breakers[name].snapshot()
            if callable(getattr(provider, "used_today", None)):
                try:
                    providers[name]["quota_used_today"] = provider.used_today()
                except Exception:  # noqa: BLE001 - informational only
                    pass
        degraded = [kind for kind in METHODS
                    if not any(providers.get(n, {}).get("state") not in (OPEN, "disabled", "misconfigured") for n in self._order[kind])]
        misconfigured = sorted(n for n, p in providers.items() if p.get("misconfigured"))
        healthy = not degraded
        return healthy, {
            "component": "market_data",
            "status": "healthy" if healthy and not misconfigured else "degraded",
            "providers": providers,
            "misconfigured": misconfigured,
            "order": {k: list(v) for k, v in self._order.items()},
            "unavailable_data_types": degraded,
        }

    def stats(self) -> dict[str, Any]:
        with self._lock:
            upstream = {p: dict(v) for p, v in self._upstream.items()}
        return {"upstream": upstream,
                "breakers": {n: self.breakers[n].snapshot()["state"] for n in self.names() if n not in self._unbuildable}}


def _answered(batches: Any, subject: str) -> bool:
    """Whether a batch call answered `subject`: a value, or the upstream's positive "does not exist"."""
    return any(isinstance(b, Mapping) and b.get(subject) is not None
               and (not isinstance(b.get(subject), ApiError) or isinstance(b.get(subject), NotFound))
               for b in batches)


def _stamp_fallback(result: T, failed: list[str]) -> T:
    prov = getattr(result, "provenance", None)
    if failed and prov is not None:
        return result.model_copy(update={"provenance": prov.model_copy(update={"fallback_from": list(failed)})})  # type: ignore[attr-defined,no-any-return]
    return result
