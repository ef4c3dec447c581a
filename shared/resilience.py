"""The one circuit breaker and the one ordered-fallback helper (DESIGN.md decision 6).

Used by market data (one breaker per provider, a chain of providers), model clients (same), the
cache (Redis -> memory failover) and the database (fail fast while it is down).

Outcome classes (``shared.errors``): ``NotFound`` is a positive answer from the upstream and
ends a chain at once; ``UpstreamRateLimited``, ``UpstreamUnavailable`` (and any unexpected
exception) count against the provider's breaker and move on; ``UpstreamMisconfigured`` disables the
provider (re-checked rarely, see ``misconfigured_recheck_s``); ``UpstreamUnsupported`` moves on
without a verdict on the provider's health.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.errors import (
    ApiError,
    NotFound,
    UpstreamError,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    UpstreamUnavailable,
    UpstreamUnsupported,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CLOSED, OPEN, HALF_OPEN, DISABLED = "closed", "open", "half_open", "disabled"

# Outcome names, as counted in metrics and shown in ``attempted`` lists.
OK, NOT_FOUND, RATE_LIMITED, UNAVAILABLE, MISCONFIGURED, UNSUPPORTED, BREAKER_OPEN = (
    "ok", "not_found", "rate_limited", "unavailable", "misconfigured", "unsupported", "breaker_open",
)


def outcome_of(exc: BaseException) -> str:
    """The outcome class of a failed upstream call. Anything not classified is ``unavailable``."""
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, UpstreamError):
        return exc.outcome
    return UNAVAILABLE


def retry_after_from(headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the upstream asked us to wait: ``retry-after-ms``, else ``retry-after`` as seconds or an
    HTTP date (RFC 9110 10.2.3). None when absent or unreadable; never negative or infinite."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            continue
        return max(0.0, value) if math.isfinite(value) else None
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now())


class BodyTooSlow(Exception):
    """A response body that was not read to its end within its time limit (raised while it is read)."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"response not complete within {limit_s:g} s")
        self.limit_s = limit_s


def body_deadline_hook(stream_base: type, limit_s: float, *,
                       clock: Callable[[], float] = time.monotonic) -> Callable[[Any], None]:
    """A response event hook for httpx-style clients (httpx, and httpx2 under the openai SDK: `stream_base` is
    that library's ``SyncByteStream``): each response body must be read to its end within `limit_s` of its
    headers, else reading it raises ``BodyTooSlow``.

    Their timeouts bound each wait for the next bytes, never a whole body: a peer that trickles a byte now and
    then (a slowloris, a stuck proxy), or a stream of SSE keep-alive comments that an SDK reads and drops, would
    otherwise hold the call for as long as it likes. Checked on every chunk read from the connection.
    """

    class Bounded(stream_base):  # type: ignore[misc]  # the client library's own base class
        def __init__(self, inner: Any) -> None:
            self._inner = inner
            self._deadline = clock() + limit_s

        def __iter__(self) -> Any:
            for chunk in self._inner:
                if clock() > self._deadline:
                    raise BodyTooSlow(limit_s)
                yield chunk

        def close(self) -> None:
            self._inner.close()

    def hook(response: Any) -> None:
        response.stream = Bounded(response.stream)

    return hook


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how it probes. Defaults suit a remote API called per request."""

    failure_threshold: int = 3
    cooldown_s: float = 60.0
    half_open_max_calls: int = 1
    open_on_rate_limit: bool = True
    misconfigured_recheck_s: float = 900.0
    # The longest an upstream's Retry-After may keep the breaker open: a bogus or hostile header (a year, "inf")
    # must not take a provider out until the process restarts.
    max_retry_after_s: float = 900.0


class CircuitBreaker:
    """Stops calling a dependency that keeps failing (closed -> open -> half-open -> closed).

    Guarantees:
    - Opens after ``failure_threshold`` consecutive failures, or at once on a rate-limit failure
      (when ``open_on_rate_limit``), for ``cooldown_s`` or the upstream's Retry-After when longer (at most
      ``max_retry_after_s``).
    - While open, ``allow()`` is False until the cool-down has passed; then it is half-open and lets at
      most ``half_open_max_calls`` probes through at a time. A probe's success closes it; a probe's
      failure re-opens it.
    - ``record_misconfigured`` disables it: no call until ``misconfigured_recheck_s`` has passed (then
      one probe) or ``reset()`` (the configuration changed).
    Thread-safe; state is per process.
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._reopen_at: float | None = None
        self._probes = 0
        self._last_error: str | None = None
        self._last_outcome: str | None = None  # the class of the last failure (what opened it)
        self._opens = 0

    @property
    def state(self) -> str:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _maybe_half_open(self) -> None:
        if self._state in (OPEN, DISABLED) and self._reopen_at is not None and self._clock() >= self._reopen_at:
            # A disabled breaker re-checks as a half-open probe; its failure disables it again.
            self._state = HALF_OPEN if self._state == OPEN else DISABLED + "_probe"
            self._probes = 0

    def allow(self) -> bool:
        """Whether a call may go through now (takes a probe slot when half-open; see ``release``)."""
        with self._lock:
            self._maybe_half_open()
            if self._state == CLOSED:
                return True
            if self._state in (HALF_OPEN, DISABLED + "_probe") and self._probes < max(1, self.policy.half_open_max_calls):
                self._probes += 1
                return True
            return False

    def retry_in(self) -> float:
        """Seconds until a call may be tried again (0 when closed or probing)."""
        with self._lock:
            self._maybe_half_open()
            if self._state in (OPEN, DISABLED) and self._reopen_at is not None:
                return max(0.0, self._reopen_at - self._clock())
            return 0.0

    def record_success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._reopen_at = None
            self._probes = 0

    def release(self) -> None:
        """Give back a slot taken by ``allow()`` without a verdict (the call never really exercised the
        dependency, e.g. the provider does not offer that data): state unchanged."""
        with self._lock:
            self._probes = max(0, self._probes - 1)

    def record_failure(self, *, rate_limited: bool = False, retry_after: float | None = None, error: str | None = None) -> None:
        with self._lock:
            self._failures += 1
            if self._state == DISABLED:
                return  # a call let through before it was disabled: the misconfiguration stands, with its reason
            self._last_error = error
            self._last_outcome = RATE_LIMITED if rate_limited else UNAVAILABLE
            probing = self._state in (HALF_OPEN, DISABLED + "_probe")
            if self._state == DISABLED + "_probe":
                self._disable()
                return
            if probing or (rate_limited and self.policy.open_on_rate_limit) or self._failures >= max(1, self.policy.failure_threshold):
                if self._state != OPEN:
                    self._opens += 1
                self._state = OPEN
                asked = float(retry_after or 0.0)
                wait = max(self.policy.cooldown_s, min(asked if not math.isnan(asked) else 0.0, self.policy.max_retry_after_s))
                self._reopen_at = self._clock() + wait
                self._probes = 0

    def record_misconfigured(self, error: str | None = None) -> None:
        """The dependency is unusable as configured: stop calling it (see class docstring)."""
        with self._lock:
            self._last_error = error
            self._last_outcome = MISCONFIGURED
            if self._state != DISABLED:
                logger.error("%s is misconfigured and will not be called: %s", self.name, error)
            self._disable()

    def _disable(self) -> None:
        if self._state not in (DISABLED, DISABLED + "_probe"):
            self._opens += 1
        self._state = DISABLED
        self._reopen_at = self._clock() + self.policy.misconfigured_recheck_s
        self._probes = 0

    def reset(self) -> None:
        """Forget everything (the configuration changed)."""
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._reopen_at = None
            self._probes = 0
            self._last_error = None
            self._last_outcome = None

    def snapshot(self) -> dict[str, Any]:
        """State for health checks and stats."""
        with self._lock:
            self._maybe_half_open()
            state = DISABLED if self._state == DISABLED + "_probe" else self._state
            retry_in = None
            if self._state in (OPEN, DISABLED) and self._reopen_at is not None:
                retry_in = max(0.0, round(self._reopen_at - self._clock(), 3))
            return {
                "state": state,
                "misconfigured": state == DISABLED,
                "consecutive_failures": self._failures,
                "opens": self._opens,
                "retry_in_s": retry_in,
                "last_error": self._last_error,
                "last_outcome": self._last_outcome,
            }


class BreakerBoard:
    """One breaker per name, created on first use with one policy (per provider family)."""

    def __init__(self, policy: BreakerPolicy | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, name: str) -> CircuitBreaker:
        br = self._breakers.get(name)
        if br is None:
            with self._lock:
                br = self._breakers.get(name)
                if br is None:
                    br = self._breakers[name] = CircuitBreaker(name, self.policy, clock=self._clock)
        return br

    def get(self, name: str) -> CircuitBreaker | None:
        return self._breakers.get(name)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: br.snapshot() for name, br in list(self._breakers.items())}


@dataclass(frozen=True)
class Attempt:
    """One provider of a chain that did not answer, and why."""

    name: str
    outcome: str
    error: str | None = None
    retry_after: float | None = None
    cause: str | None = None  # skipped by its breaker: the outcome that opened it

    @property
    def effective_outcome(self) -> str:
        """What the provider would answer now: a breaker opened by a rate limit is still a rate limit."""
        return self.cause if self.outcome == BREAKER_OPEN and self.cause else self.outcome

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"provider": self.name, "outcome": self.outcome}
        if self.error:
            d["error"] = self.error
        if self.retry_after is not None:
            d["retry_after"] = round(self.retry_after, 3)
        if self.cause:
            d["cause"] = self.cause
        return d


@dataclass
class ChainResult(Generic[R]):
    """The first answer of a chain, who gave it, and who failed before it."""

    value: R
    provider: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Providers that were tried (or skipped by an open breaker) and failed: ``fallback_from``.

        Providers that merely do not offer the data are not listed: nothing failed there."""
        return [a.name for a in self.attempts if a.outcome != UNSUPPORTED]


class ChainExhausted(Exception):
    """No link of the chain answered; ``attempts`` says what each one did."""

    def __init__(self, attempts: list[Attempt]) -> None:
        super().__init__(", ".join(f"{a.name}: {a.outcome}" for a in attempts) or "no provider")
        self.attempts = attempts


def _describe(exc: BaseException) -> tuple[str, str | None]:
    """(title, detail) of a failure, safe to log and show: our own words, never an SDK's repr."""
    if isinstance(exc, ApiError):
        return exc.title, exc.detail
    return type(exc).__name__, None


def record_outcome(breaker: CircuitBreaker, exc: BaseException) -> str:
    """Record what a failed call says about the dependency on its breaker; returns the outcome.

    ``NotFound`` is a healthy answer; ``unsupported`` gives back the call's slot without a verdict;
    ``misconfigured`` disables the breaker; everything else is a failure (a rate limit with its
    Retry-After)."""
    outcome = outcome_of(exc)
    title, detail = _describe(exc)
    if outcome == NOT_FOUND:
        breaker.record_success()
    elif outcome == UNSUPPORTED:
        breaker.release()
    elif outcome == MISCONFIGURED:
        breaker.record_misconfigured(detail or title)
    else:
        retry_after = exc.retry_after if isinstance(exc, UpstreamRateLimited) else None
        breaker.record_failure(rate_limited=outcome == RATE_LIMITED, retry_after=retry_after, error=title)
    return outcome


def first_success(
    links: Iterable[tuple[str, T]],
    call: Callable[[T], R],
    breakers: BreakerBoard,
    *,
    on_outcome: Callable[[str, str], None] | None = None,
    bypass_breaker_for_last: bool = False,
    stop_on: tuple[type[BaseException], ...] = (NotFound, ValidationFailed),
) -> ChainResult[R]:
    """Call ``call(target)`` on each ``(name, target)`` in order until one returns.

    - An exception of a ``stop_on`` class (default ``NotFound`` and ``ValidationFailed``) ends the chain
      at once (the request itself is the answer: another provider would not change it) and counts as a
      success for that provider's breaker. Except a ``NotFound`` after an earlier link failed (anything but
      ``unsupported``): a later link usually knows less than the one that could not be asked (a fallback's
      narrower catalogue), so its "does not exist" is recorded as ``not_found`` and the chain goes on;
      exhausted, it sums up as the earlier failure (``exhausted_error``).
    - Any other exception is classified (``outcome_of``), recorded on the breaker (``record_outcome``),
      logged without secrets (only the error's class and title) and the next link is tried.
    - A link whose breaker refuses is skipped as ``breaker_open`` (unless it is the last and
      ``bypass_breaker_for_last``: a chain that must still try something, e.g. the offline model).
    ``on_outcome(name, outcome)`` is called for every link tried (metrics). Raises ``ChainExhausted``.
    """
    attempts: list[Attempt] = []
    seq: Sequence[tuple[str, T]] = list(links)
    for i, (name, target) in enumerate(seq):
        breaker = breakers[name]
        if not breaker.allow():
            if not (bypass_breaker_for_last and i == len(seq) - 1):
                snap = breaker.snapshot()
                outcome = MISCONFIGURED if snap["misconfigured"] else BREAKER_OPEN
                cause = snap["last_outcome"] if outcome == BREAKER_OPEN else None
                attempts.append(Attempt(name, outcome, snap["last_error"], breaker.retry_in() or None, cause))
                if on_outcome:
                    on_outcome(name, outcome)
                continue
        try:
            value = call(target)
        except stop_on as exc:
            breaker.record_success()
            if on_outcome:
                on_outcome(name, NOT_FOUND)
            if isinstance(exc, NotFound) and any(a.outcome != UNSUPPORTED for a in attempts):
                attempts.append(Attempt(name, NOT_FOUND, exc.detail))
                continue
            raise
        except Exception as exc:  # noqa: BLE001 - any provider failure means: classify it, try the next one
            outcome = record_outcome(breaker, exc)
            title, detail = _describe(exc)
            if not isinstance(exc, ApiError):
                logger.warning("%s raised an unexpected %s", name, type(exc).__name__, exc_info=True)
            elif outcome != UNSUPPORTED:
                logger.warning("%s failed: %s", name, title, extra={"provider": name, "outcome": outcome})
            retry_after = exc.retry_after if isinstance(exc, UpstreamRateLimited) else None
            attempts.append(Attempt(name, outcome, detail or title, retry_after))
            if on_outcome:
                on_outcome(name, outcome)
            continue
        except BaseException:
            breaker.release()  # interrupted (not the dependency's verdict): a half-open probe slot must not leak
            raise
        breaker.record_success()
        if on_outcome:
            on_outcome(name, OK)
        return ChainResult(value, name, attempts)
    raise ChainExhausted(attempts)


def exhausted_error(
    attempts: Sequence[Attempt],
    what: str,
    *,
    unavailable: type[UpstreamUnavailable] = UpstreamUnavailable,
    extra: dict[str, Any] | None = None,
) -> UpstreamError:
    """The one error that sums up a chain where nobody answered ``what``.

    All rate limited (misconfigured links aside: they answer nothing until fixed) -> ``UpstreamRateLimited``
    (retry-after: the soonest known); all misconfigured -> ``UpstreamMisconfigured``; nobody offers it ->
    ``UpstreamUnsupported``; otherwise ``unavailable``.
    The provider named is the last one whose own outcome is the class answered (for ``unavailable``: the
    last that was unavailable or behind an open breaker, not a misconfigured one after it), else the last
    that really failed; ``attempted`` lists every link's outcome. Links that do not offer ``what``, and links
    that said ``not_found`` after an earlier failure (see ``first_success``), do not decide the class.
    """
    real = [a for a in attempts if a.outcome not in (UNSUPPORTED, NOT_FOUND)]
    info = {"attempted": [a.as_dict() for a in attempts], **(extra or {})}

    def named(*outcomes: str) -> str | None:
        match = [a for a in real if a.outcome in outcomes or a.effective_outcome in outcomes] or real or list(attempts)
        return match[-1].name if match else None

    outcomes = {a.effective_outcome for a in real}
    if not real:
        return UpstreamUnsupported(f"No configured provider offers {what}", provider=named(), extra=info)
    if RATE_LIMITED in outcomes and outcomes <= {RATE_LIMITED, BREAKER_OPEN, MISCONFIGURED}:
        waits = [a.retry_after for a in real if a.retry_after and a.effective_outcome != MISCONFIGURED]
        return UpstreamRateLimited(f"Every provider that could answer {what} is rate limited", provider=named(RATE_LIMITED),
                                   retry_after=min(waits) if waits else None, extra=info)
    if outcomes == {MISCONFIGURED}:
        return UpstreamMisconfigured(f"Every provider for {what} is misconfigured", provider=named(), extra=info)
    names = ", ".join(f"{a.name} ({a.outcome})" for a in real)
    return unavailable(f"No provider could answer {what}: {names}", provider=named(UNAVAILABLE, BREAKER_OPEN),
                       extra=info)
