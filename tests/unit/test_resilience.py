"""The one breaker and fallback helper: outcome classes decide what a failure does."""

from __future__ import annotations

import pytest

from shared.errors import (
    MarketDataUnavailable,
    NotFound,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    UpstreamUnavailable,
    UpstreamUnsupported,
)
from shared.resilience import (
    BreakerBoard,
    BreakerPolicy,
    ChainExhausted,
    CircuitBreaker,
    exhausted_error,
    first_success,
    record_outcome,
    retry_after_from,
)


class Tick:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _raise(exc: BaseException):
    def call(_target):
        raise exc
    return call


def test_half_open_allows_configured_number_of_probes():
    tick = Tick()
    br = CircuitBreaker("p", BreakerPolicy(failure_threshold=1, cooldown_s=5, half_open_max_calls=2), clock=tick)
    br.record_failure()
    assert not br.allow()
    tick.t = 5
    assert br.allow() and br.allow() and not br.allow()


def test_rate_limit_retry_after_longer_than_cooldown_keeps_breaker_open():
    tick = Tick()
    br = CircuitBreaker("p", BreakerPolicy(cooldown_s=5), clock=tick)
    br.record_failure(rate_limited=True, retry_after=30)
    tick.t = 29
    assert br.state == "open" and br.retry_in() == pytest.approx(1)
    tick.t = 30
    assert br.allow()


@pytest.mark.parametrize("retry_after", [1e12, float("inf"), float("nan")])
def test_an_absurd_retry_after_opens_the_breaker_for_at_most_its_cap(retry_after):
    tick = Tick()
    br = CircuitBreaker("p", BreakerPolicy(cooldown_s=5, max_retry_after_s=100), clock=tick)
    br.record_failure(rate_limited=True, retry_after=retry_after)
    assert 5 <= br.retry_in() <= 100
    tick.t = 100
    assert br.allow()


def test_misconfigured_disables_until_recheck_and_failed_recheck_disables_again():
    tick = Tick()
    br = CircuitBreaker("av", BreakerPolicy(misconfigured_recheck_s=100), clock=tick)
    br.record_misconfigured("apikey invalid")
    snap = br.snapshot()
    assert snap["state"] == "disabled" and snap["misconfigured"] and snap["last_error"] == "apikey invalid"
    assert not br.allow()
    tick.t = 100
    assert br.allow() and not br.allow()  # one re-check
    br.record_failure(error="still bad")
    assert br.snapshot()["state"] == "disabled" and not br.allow()
    br.reset()
    assert br.allow()


def test_a_late_failure_does_not_turn_a_disabled_breaker_into_an_open_one():
    """Calls let through before the provider was found misconfigured fail afterwards (throttled, timed out): the
    breaker stays disabled with its reason (health keeps saying misconfigured), not open for a mere cool-down."""
    tick = Tick()
    br = CircuitBreaker("av", BreakerPolicy(cooldown_s=5, misconfigured_recheck_s=100), clock=tick)
    assert br.allow() and br.allow() and br.allow()  # calls in flight
    br.record_misconfigured("apikey invalid")
    br.record_failure(rate_limited=True, error="throttled")
    br.record_failure(error="timeout")
    snap = br.snapshot()
    assert snap["state"] == "disabled" and snap["misconfigured"] and snap["last_error"] == "apikey invalid"
    assert br.retry_in() == 100


def test_an_interrupted_probe_gives_its_half_open_slot_back():
    """A probe interrupted by something that is not the dependency's answer (a BaseException: the worker stopping)
    must not keep the only half-open slot: the breaker would refuse every call for good."""
    tick = Tick()
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, cooldown_s=5), clock=tick)
    board["a"].record_failure()
    tick.t = 5

    class Interrupted(BaseException):
        pass

    with pytest.raises(Interrupted):
        first_success([("a", 1)], _raise(Interrupted()), board)
    assert board["a"].allow()


def test_first_success_falls_back_and_lists_who_failed():
    board = BreakerBoard()
    seen: list[tuple[str, str]] = []
    calls = {"a": _raise(UpstreamUnavailable("boom")), "b": _raise(UpstreamUnsupported("no")), "c": lambda _t: 42}
    res = first_success([(n, n) for n in "abc"], lambda n: calls[n](n), board, on_outcome=lambda n, o: seen.append((n, o)))
    assert res.value == 42 and res.provider == "c"
    assert res.failed == ["a"]  # unsupported is not a failure
    assert seen == [("a", "unavailable"), ("b", "unsupported"), ("c", "ok")]
    assert board["a"].snapshot()["consecutive_failures"] == 1
    assert board["b"].snapshot()["consecutive_failures"] == 0


def test_not_found_ends_the_chain_and_is_a_success_for_the_breaker():
    board = BreakerBoard()
    board["a"].record_failure()
    with pytest.raises(NotFound):
        first_success([("a", 1), ("b", 2)], _raise(NotFound("no such symbol")), board)
    assert board["a"].snapshot()["consecutive_failures"] == 0
    assert board.get("b") is None  # never asked


def test_not_found_after_an_earlier_failure_does_not_end_the_chain():
    """A fallback's "does not exist" after the primary could not be asked is no verdict on the subject: the chain
    goes on and, exhausted, sums up as the primary's failure (never a NotFound)."""
    board = BreakerBoard()
    calls = {"a": _raise(UpstreamUnavailable("5xx")), "b": _raise(NotFound("not listed here")), "c": lambda _t: 42}
    res = first_success([(n, n) for n in "abc"], lambda n: calls[n](n), board)
    assert res.value == 42 and res.failed == ["a", "b"]
    assert board["b"].snapshot()["consecutive_failures"] == 0  # a healthy answer for b's breaker
    with pytest.raises(ChainExhausted) as ei:
        first_success([(n, n) for n in "ab"], lambda n: calls[n](n), board)
    assert [(a.name, a.outcome) for a in ei.value.attempts] == [("a", "unavailable"), ("b", "not_found")]
    err = exhausted_error(ei.value.attempts, "quote X")
    assert isinstance(err, UpstreamUnavailable) and err.provider == "a"
    # Not offering the data is no failure: a NotFound after it is still the answer.
    calls["a"] = _raise(UpstreamUnsupported("no such data here"))
    with pytest.raises(NotFound):
        first_success([(n, n) for n in "abc"], lambda n: calls[n](n), board)


def test_unexpected_exception_is_unavailable():
    board = BreakerBoard()
    with pytest.raises(ChainExhausted) as ei:
        first_success([("a", 1)], _raise(KeyError("currentTradingPeriod")), board)
    assert [a.outcome for a in ei.value.attempts] == ["unavailable"]


def test_open_and_disabled_breakers_are_skipped_with_their_reason():
    board = BreakerBoard(BreakerPolicy(failure_threshold=1))
    board["a"].record_failure(error="5xx")
    board["b"].record_misconfigured("bad key")
    with pytest.raises(ChainExhausted) as ei:
        first_success([("a", 1), ("b", 2)], lambda t: t, board)
    assert [(a.name, a.outcome) for a in ei.value.attempts] == [("a", "breaker_open"), ("b", "misconfigured")]


def test_bypass_breaker_for_last_link():
    board = BreakerBoard(BreakerPolicy(failure_threshold=1))
    board["offline"].record_failure()
    res = first_success([("offline", 7)], lambda t: t, board, bypass_breaker_for_last=True)
    assert res.value == 7


def test_exhausted_error_classes():
    def attempts(*excs):
        board = BreakerBoard()
        with pytest.raises(ChainExhausted) as ei:
            it = iter(excs)
            first_success([(f"p{i}", i) for i in range(len(excs))], lambda _t: (_ for _ in ()).throw(next(it)), board)
        return ei.value.attempts

    err = exhausted_error(attempts(UpstreamRateLimited(retry_after=30), UpstreamRateLimited(retry_after=5)), "quote AAPL")
    assert isinstance(err, UpstreamRateLimited) and err.retry_after == 5
    err = exhausted_error(attempts(UpstreamMisconfigured("bad key")), "quote AAPL")
    assert isinstance(err, UpstreamMisconfigured) and err.status == 503
    err = exhausted_error(attempts(UpstreamUnsupported("etf")), "fundamentals SPY")
    assert isinstance(err, UpstreamUnsupported)
    err = exhausted_error(attempts(UpstreamRateLimited(), UpstreamUnavailable()), "quote AAPL", unavailable=MarketDataUnavailable)
    assert isinstance(err, MarketDataUnavailable) and err.status == 502
    assert [a["outcome"] for a in err.extra["attempted"]] == ["rate_limited", "unavailable"]
    assert err.extra["outcome"] == "unavailable" and err.provider == "p1"
    # The provider named is one whose outcome is the class answered: not a misconfigured one after the outage.
    err = exhausted_error(attempts(UpstreamUnavailable(), UpstreamMisconfigured("bad key")), "quote AAPL")
    assert isinstance(err, UpstreamUnavailable) and err.provider == "p0"
    err = exhausted_error(attempts(UpstreamRateLimited(), UpstreamUnsupported("etf")), "quote AAPL")
    assert isinstance(err, UpstreamRateLimited) and err.provider == "p0"
    # A misconfigured link answers nothing until fixed: the others' rate limit is the answer, named after them.
    err = exhausted_error(attempts(UpstreamRateLimited(retry_after=9), UpstreamMisconfigured("bad key")), "quote AAPL")
    assert isinstance(err, UpstreamRateLimited) and err.provider == "p0" and err.retry_after == 9


def test_breaker_opened_by_a_rate_limit_still_reads_as_rate_limited():
    tick = Tick()
    board = BreakerBoard(BreakerPolicy(cooldown_s=5), clock=tick)
    with pytest.raises(ChainExhausted) as first:
        first_success([("a", 1)], _raise(UpstreamRateLimited("slow down", retry_after=30)), board)
    assert exhausted_error(first.value.attempts, "x").retry_after == 30
    tick.t = 10
    with pytest.raises(ChainExhausted) as ei:
        first_success([("a", 1)], lambda t: t, board)
    skipped = ei.value.attempts[0]
    assert (skipped.outcome, skipped.cause, skipped.retry_after) == ("breaker_open", "rate_limited", 20)
    err = exhausted_error(ei.value.attempts, "quote AAPL")
    assert isinstance(err, UpstreamRateLimited) and err.retry_after == 20
    assert err.extra["attempted"] == [{"provider": "a", "outcome": "breaker_open", "error": "Upstream rate limited",
                                       "retry_after": 20, "cause": "rate_limited"}]


def test_breaker_opened_by_failures_reads_as_unavailable():
    board = BreakerBoard(BreakerPolicy(failure_threshold=1))
    board["a"].record_failure(error="5xx")
    with pytest.raises(ChainExhausted) as ei:
        first_success([("a", 1)], lambda t: t, board)
    assert ei.value.attempts[0].cause == "unavailable"
    assert type(exhausted_error(ei.value.attempts, "x")) is UpstreamUnavailable


def test_record_outcome_classifies_a_failure_on_its_breaker():
    br = CircuitBreaker("p", BreakerPolicy(failure_threshold=1))
    assert record_outcome(br, UpstreamRateLimited(retry_after=7)) == "rate_limited" and br.state == "open"
    br.reset()
    assert record_outcome(br, UpstreamMisconfigured("bad key")) == "misconfigured" and br.snapshot()["misconfigured"]
    br.reset()
    assert record_outcome(br, NotFound("no such thing")) == "not_found" and br.state == "closed"
    assert record_outcome(br, RuntimeError("bug")) == "unavailable" and br.state == "open"


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after": "30"}, 30.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "-5"}, 0.0),
    ({"retry-after": "inf"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_from_headers(headers, expected):
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert retry_after_from(headers, now=lambda: now) == expected


def test_stop_on_ends_the_chain_for_the_given_classes():
    board = BreakerBoard()

    class RequestRejected(Exception):
        pass

    with pytest.raises(RequestRejected):
        first_success([("a", 1), ("b", 2)], _raise(RequestRejected()), board, stop_on=(RequestRejected,))
    assert board.get("b") is None and board["a"].state == "closed"


def test_body_deadline_hook_bounds_a_whole_body_not_each_read():
    """Every chunk arrives quickly enough for a per-read timeout; the body as a whole does not (a clock that moves a
    second per chunk). Real httpx client, in-memory transport."""
    import httpx

    from shared.resilience import BodyTooSlow, body_deadline_hook

    now = [0.0]

    def trickle(request: httpx.Request):
        def chunks():
            for _ in range(int(request.url.params["chunks"])):
                now[0] += 1.0
                yield b"x"
        return httpx.Response(200, content=chunks())

    hook = body_deadline_hook(httpx.SyncByteStream, 3.5, clock=lambda: now[0])
    with httpx.Client(transport=httpx.MockTransport(trickle), event_hooks={"response": [hook]}) as client:
        with pytest.raises(BodyTooSlow) as ei:
            client.get("http://upstream.test/?chunks=10")
        assert ei.value.limit_s == 3.5 and now[0] == 4.0  # cut at the first chunk past the limit
        assert client.get("http://upstream.test/?chunks=3").content == b"xxx"  # within it: untouched
