"""The queue contract on a real Azurite and on the in-process fallback: what the producer sends is what
the trigger decodes, retries and the poison queue, visibility timeout, and processing a job once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from devhost.queues import QueueFunction, QueueHost
from shared.errors import MarketDataUnavailable, QueueUnavailable
from shared.logging import bound_request_id
from shared.queues import Envelope, MessageLost, QueueBackend, QueueHostOptions, QueueMissing, QueueProducer, poison_queue
from shared.queues.envelope import decode_text
from shared.services.jobs import InboundMessage, Job
from shared.services.market_refresh import MarketRefreshService

pytestmark = pytest.mark.integration

# Retries at once (visibilityTimeout 0) so each poll is one attempt; three attempts before poison.
OPTIONS = QueueHostOptions(batch_size=4, new_batch_threshold=2, max_dequeue_count=3, visibility_timeout_s=0,
                           max_polling_interval_s=1, message_encoding="base64", function_timeout_s=60)


def host_for(backend: QueueBackend, queue: str, target: Any,
             options: QueueHostOptions = OPTIONS) -> tuple[QueueHost, QueueFunction]:
    """A local host polling `queue` for one function that calls `target(msg)` (functions get `msg=`)."""

    def function(msg: Any) -> None:
        target(msg)

    qf = QueueFunction(name=f"fn_{queue}", queue=queue, arg_name="msg", fn=function)
    return QueueHost(backend, [qf], options), qf


def poison_count(backend: QueueBackend, queue: str) -> int:
    """Messages on `queue`'s poison queue (0 when nothing was ever moved there)."""
    try:
        return backend.count(poison_queue(queue))
    except QueueMissing:
        return 0


async def drain(host: QueueHost, qf: QueueFunction, max_polls: int = 50) -> int:
    """Poll until a poll finds nothing; returns the number of polls that found messages."""
    for polls in range(max_polls):
        if await host.poll_once(qf) == 0:
            return polls
    raise AssertionError(f"{qf.queue} still had messages after {max_polls} polls")


def inbound(queue: str, msg: Any) -> InboundMessage:
    return InboundMessage(queue=queue, id=msg.id, body=msg.get_body(), dequeue_count=msg.dequeue_count)


async def test_a_queued_job_reaches_the_trigger_decoded_with_its_request_id(backend, queue_name):
    producer = QueueProducer(backend, encoding="base64")
    with bound_request_id("req-from-http-call"):
        sent = producer.enqueue(queue_name, {"symbols": ["AAPL"], "note": "é ✓"})
    received: list[Any] = []
    host, qf = host_for(backend, queue_name, received.append)
    await drain(host, qf)

    (msg,) = received
    assert msg.get_body() == sent.to_json().encode("utf-8")  # exactly what was enqueued, base64 undone
    envelope = Envelope.from_body(msg.get_body())
    assert envelope.payload == {"symbols": ["AAPL"], "note": "é ✓"}
    assert envelope.request_id == "req-from-http-call" and envelope.id == sent.id
    assert msg.dequeue_count == 1
    assert backend.count(queue_name) == 0  # deleted after success


async def test_a_failing_function_is_retried_then_moved_to_the_poison_queue(backend, queue_name):
    producer = QueueProducer(backend, encoding="base64")
    sent = producer.enqueue(queue_name, {"n": 1})
    attempts: list[int] = []

    def fails(msg: Any) -> None:
        attempts.append(msg.dequeue_count)
        raise RuntimeError("provider down")

    host, qf = host_for(backend, queue_name, fails)
    await drain(host, qf)

    assert attempts == [1, 2, 3]  # maxDequeueCount attempts, no more
    assert backend.count(queue_name) == 0
    (poisoned,) = backend.receive(poison_queue(queue_name), max_messages=5, visibility_timeout_s=30)
    assert Envelope.from_body(decode_text(poisoned.text, "base64")).id == sent.id  # the message itself, unchanged


async def test_a_message_dequeued_too_often_goes_to_poison_without_running(backend, queue_name):
    """A message received maxDequeueCount times without completing (crashed runs) is not run again."""
    QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1})
    for _ in range(OPTIONS.max_dequeue_count):  # a consumer that received it and died each time
        (held,) = backend.receive(queue_name, max_messages=1, visibility_timeout_s=30)
        backend.release(queue_name, held.id, held.pop_receipt, visibility_timeout_s=0)
    ran: list[Any] = []
    host, qf = host_for(backend, queue_name, ran.append)
    await drain(host, qf)
    assert ran == []
    assert len(backend.receive(poison_queue(queue_name), max_messages=5, visibility_timeout_s=30)) == 1


async def test_a_poll_takes_at_most_batch_size_messages(backend, queue_name):
    producer = QueueProducer(backend, encoding="base64")
    for n in range(OPTIONS.batch_size + 2):
        producer.enqueue(queue_name, {"n": n})
    seen: list[int] = []
    host, qf = host_for(backend, queue_name, lambda msg: seen.append(Envelope.from_body(msg.get_body()).payload["n"]))
    assert await host.poll_once(qf) == OPTIONS.batch_size
    assert await host.poll_once(qf) == 2
    assert sorted(seen) == list(range(OPTIONS.batch_size + 2))


async def test_visibility_timeout_hides_an_in_flight_message_from_a_second_consumer(backend, queue_name):
    QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1})
    (first,) = backend.receive(queue_name, max_messages=5, visibility_timeout_s=30)
    assert backend.receive(queue_name, max_messages=5, visibility_timeout_s=30) == []  # the second consumer

    backend.release(queue_name, first.id, first.pop_receipt, visibility_timeout_s=0)  # the first gives it back
    (second,) = backend.receive(queue_name, max_messages=5, visibility_timeout_s=30)
    assert second.id == first.id and second.dequeue_count == 2
    with pytest.raises(MessageLost):  # the first consumer's receipt no longer holds
        backend.delete(queue_name, first.id, first.pop_receipt)
    backend.delete(queue_name, second.id, second.pop_receipt)
    assert backend.count(queue_name) == 0


async def test_a_delayed_message_stays_invisible(backend, queue_name):
    QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1}, delay_s=60)
    assert backend.receive(queue_name, max_messages=5, visibility_timeout_s=30) == []
    assert backend.count(queue_name) == 1


async def test_duplicate_messages_of_one_job_are_processed_once(backend, queue_name, core):
    producer = QueueProducer(backend, encoding="base64")
    for _ in range(3):  # the producer retried, or two timer runs queued the same business job
        producer.enqueue(queue_name, {"n": 1}, dedupe_key=f"{queue_name}:job-1")
    producer.enqueue(queue_name, {"n": 2}, dedupe_key=f"{queue_name}:job-2")
    handled: list[dict[str, Any]] = []
    outcomes: list[str] = []

    def function(msg: Any) -> None:
        outcomes.append(core.services.jobs.run(inbound(queue_name, msg), lambda job: handled.append(job.payload)))

    host, qf = host_for(backend, queue_name, function)
    await drain(host, qf)
    assert sorted(p["n"] for p in handled) == [1, 2]
    # The copies ran in one parallel batch: each saw the job done, or held by the copy that ran it.
    assert outcomes.count("done") == 2 and len(outcomes) == 4
    assert set(outcomes) <= {"done", "duplicate", "in_progress"}
    assert backend.count(queue_name) == 0


async def test_a_redelivered_message_is_processed_once(backend, queue_name, core):
    """At least once: the function succeeded but the message came back (its delete was lost)."""
    QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1})
    handled: list[Job] = []

    def function(msg: Any) -> None:
        core.services.jobs.run(inbound(queue_name, msg), handled.append)

    (msg,) = backend.receive(queue_name, max_messages=1, visibility_timeout_s=30)
    host, qf = host_for(backend, queue_name, function)
    await host._invoke(qf, msg)  # ran, then "crashed" before deleting
    backend.release(queue_name, msg.id, msg.pop_receipt, visibility_timeout_s=0)
    await drain(host, qf)
    assert len(handled) == 1 and backend.count(queue_name) == 0


class HostKilled(BaseException):
    """Stands for kill -9 while the function runs: nothing after it runs (no release, no settle)."""


async def test_a_job_whose_host_died_mid_run_runs_when_its_message_comes_back(backend, queue_name, core):
    """The host dies while the function runs: the job's receipt stays claimed (its lease, functionTimeout long,
    started after the message was received) and the message reappears when its visibility runs out. That
    redelivery must run the job: deleting it as "held by another consumer" would lose the job, since the
    consumer holding it is gone."""
    QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1})
    (held,) = backend.receive(queue_name, max_messages=1, visibility_timeout_s=30)

    def dies(job: Job) -> None:
        raise HostKilled

    with pytest.raises(HostKilled):
        core.services.jobs.run(InboundMessage(queue_name, held.id, decode_text(held.text, "base64"), held.dequeue_count),
                               dies)
    backend.release(queue_name, held.id, held.pop_receipt, visibility_timeout_s=0)  # its visibility ran out
    handled: list[Job] = []
    host, qf = host_for(backend, queue_name, lambda msg: core.services.jobs.run(inbound(queue_name, msg), handled.append))
    await drain(host, qf)
    assert [job.payload for job in handled] == [{"n": 1}]
    assert backend.count(queue_name) == 0


class RecordingMarket:
    """The real DataManager, recording which symbols each refresh asks for; a batch holding a
    `failing` symbol reports it failed with a transient outcome (502) the first `failures` times."""

    def __init__(self, market: Any, failing: set[str] = frozenset(), failures: int = 0) -> None:
        self._market = market
        self.calls: list[list[str]] = []
        self._failing = failing
        self._failures = failures

    def refresh_quotes(self, symbols: list[str]) -> dict[str, Any]:
        self.calls.append(list(symbols))
        summary: dict[str, Any] = self._market.refresh_quotes(symbols)
        flaky = self._failing & set(symbols)
        if flaky and self._failures > 0:
            self._failures -= 1
            return {**summary, "failures": {s: "502 Market data unavailable" for s in flaky},
                    "outcomes": {s: "unavailable" for s in flaky}}
        return summary


def _refresh_service(core: Any, backend: QueueBackend, market: Any, batch_size: int, queue: str) -> MarketRefreshService:
    settings = core.settings.model_copy(update={"market": core.settings.market.model_copy(
        update={"refresh_batch_size": batch_size})})
    return MarketRefreshService(settings=settings, repos=core.repos, market=market, queue=queue,
                                queues=QueueProducer(backend, encoding="base64"))


@pytest.fixture
def watched_symbols(core, make_user) -> list[str]:
    """Symbols on watchlists and in positions, overlapping each other and the core symbols, in mixed case."""
    user, _ = make_user()
    seed = [s["symbol"] for s in core.repos.get_symbol_repository().find_many({}, limit=60)[0]]
    core.repos.get_watchlist_repository().insert_one(user["id"], {"name": "fan-out a", "symbols": seed[:40]})
    core.repos.get_watchlist_repository().insert_one(user["id"], {"name": "fan-out b",
                                                                   "symbols": [s.lower() for s in seed[30:60]]})
    return seed


async def test_market_refresh_fan_out_covers_every_symbol_once(backend, core, watched_symbols, queue_name):
    market = RecordingMarket(core.services.market)
    service = _refresh_service(core, backend, market, batch_size=7, queue=queue_name)
    summary = service.fan_out()

    expected = service.symbols_to_refresh()
    assert {s.upper() for s in watched_symbols} <= set(expected)
    assert summary["symbols"] == len(expected) and summary["batches"] == -(-len(expected) // 7)

    host, qf = host_for(backend, queue_name, lambda msg: core.services.jobs.run(inbound(queue_name, msg),
                                                                                 service.refresh_batch))
    await drain(host, qf)
    asked = Counter(s for call in market.calls for s in call)
    assert set(asked) == set(expected) and set(asked.values()) == {1}  # every symbol, once
    assert all(len(call) <= 7 for call in market.calls)
    assert backend.count(queue_name) == 0


async def test_a_failing_batch_retries_alone(backend, core, watched_symbols, queue_name):
    flaky = watched_symbols[3].upper()
    market = RecordingMarket(core.services.market, failing={flaky}, failures=2)
    service = _refresh_service(core, backend, market, batch_size=10, queue=queue_name)
    service.fan_out()
    failed: list[str] = []

    def function(msg: Any) -> None:
        try:
            core.services.jobs.run(inbound(queue_name, msg), service.refresh_batch)
        except MarketDataUnavailable as exc:
            failed.append(str(exc))
            raise

    host, qf = host_for(backend, queue_name, function)
    await drain(host, qf)
    batches = Counter(tuple(call) for call in market.calls)
    flaky_batch = next(b for b in batches if flaky in b)
    assert batches[flaky_batch] == 3  # two transient failures, then success: within maxDequeueCount
    assert all(n == 1 for b, n in batches.items() if b != flaky_batch)  # the other batches ran once
    assert len(failed) == 2 and flaky in failed[0]
    assert backend.count(queue_name) == 0 and poison_count(backend, queue_name) == 0


@pytest.mark.parametrize("answer, core_symbols", [
    ("error_invalid_apikey.json", ["AAPL", "MSFT"]),  # the key is rejected: 503 misconfigured
    ("global_quote_empty.json", ["0700.HK", "9988.HK"]),  # an exchange it does not list: 502 unsupported
])
async def test_a_batch_that_a_retry_cannot_fix_is_not_retried_into_the_poison_queue(backend, core, queue_name, answer,
                                                                                     core_symbols):
    """The only provider is misconfigured, or does not offer the symbols. Retrying changes nothing (the breaker
    refuses without a call; the exchange stays unlisted), so each batch runs once and its failures are logged;
    retried, every batch of every run ended in the poison queue, drowning the ones that need a look."""
    from shared.market.factory import build_data_manager
    from shared.market.providers.alpha_vantage import AlphaVantageProvider
    from tests.upstream import FakeAlphaVantage

    settings = core.settings.model_copy(update={"market": core.settings.market.model_copy(update={
        "providers": {kind: ["alpha_vantage"] for kind in ("quote", "history", "fundamentals", "news", "search")},
        "core_symbols": core_symbols})})
    av = AlphaVantageProvider(api_key="AVTESTKEY", cache=core.cache, transport=FakeAlphaVantage(default=answer).transport,
                              daily_quota=100_000)  # other tests' watchlists add symbols: stay clear of the free tier's 25
    market = RecordingMarket(build_data_manager(settings, core.cache, core.services.singleflight,
                                                providers={"alpha_vantage": av}))
    service = MarketRefreshService(settings=settings, repos=core.repos, market=market, queue=queue_name,
                                   queues=QueueProducer(backend, encoding="base64"))
    summary = service.fan_out()
    host, qf = host_for(backend, queue_name, lambda msg: core.services.jobs.run(inbound(queue_name, msg),
                                                                                 service.refresh_batch))
    await drain(host, qf)
    assert len(market.calls) == summary["batches"]  # each batch ran once
    assert backend.count(queue_name) == 0 and poison_count(backend, queue_name) == 0


async def test_the_listener_processes_new_messages_in_the_background(backend, queue_name):
    """The polling loop the local host runs (not just single polls): start, enqueue, see it handled, stop."""
    done = threading.Event()  # set from the worker thread the function runs in
    host, qf = host_for(backend, queue_name, lambda msg: done.set())
    await host.start()
    try:
        QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1})
        assert await asyncio.to_thread(done.wait, 30)
        for _ in range(300):  # then deleted: wait for it, at most 30 s
            if backend.count(queue_name) == 0:
                break
            await asyncio.sleep(0.1)
        assert backend.count(queue_name) == 0
    finally:
        await host.stop()


async def test_a_message_the_trigger_cannot_decode_ends_in_the_poison_queue(backend, queue_name):
    backend.create_queue(queue_name)
    backend.send(queue_name, "not base64!")
    ran: list[Any] = []
    host, qf = host_for(backend, queue_name, ran.append)
    await drain(host, qf)
    assert ran == [] and poison_count(backend, queue_name) == 1


class QueueServiceDown:
    """`backend` while the queue service is down for some operations (Azurite killed mid-run): those raise
    QueueUnavailable as AzureStorageQueues does; `down` names them."""

    def __init__(self, backend: QueueBackend, *down: str) -> None:
        self._backend = backend
        self.down = set(down)
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        op = getattr(self._backend, name)

        def call(*args: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            if name in self.down:
                raise QueueUnavailable("Queue service unavailable (ServiceRequestError)")
            return op(*args, **kw)

        return call


async def test_the_queue_service_going_down_mid_run_is_logged_once_and_never_crashes_a_message(
        backend, queue_name, caplog):
    """The function ran but its message cannot be deleted, or moved to the poison queue: the host says so and goes
    on (the message comes back after its visibility timeout: at least once); a listener whose polls fail says so
    once, not on every poll, and says when the service answers again."""
    import logging

    caplog.set_level(logging.INFO, logger="devhost.queues")
    QueueProducer(backend, encoding="base64").enqueue(queue_name, {"n": 1})
    flaky = QueueServiceDown(backend, "delete")
    ran: list[Any] = []
    host, qf = host_for(flaky, queue_name, ran.append)  # type: ignore[arg-type]
    assert await host.poll_once(qf) == 1 and len(ran) == 1  # ran; its delete failed without raising here
    assert any("could not be settled" in r.getMessage() for r in caplog.records)

    flaky.down = {"receive"}
    host = QueueHost(flaky, [qf], QueueHostOptions(**{**vars(OPTIONS), "max_polling_interval_s": 0.1}))  # type: ignore[arg-type]
    await host.start()
    try:
        while flaky.calls["receive"] < 5:
            await asyncio.sleep(0.05)
        flaky.down = set()
        polled = flaky.calls["receive"]
        while flaky.calls["receive"] < polled + 2:
            await asyncio.sleep(0.05)
    finally:
        await host.stop()
    failures = [r for r in caplog.records if r.getMessage().startswith(f"polling {queue_name} failed")]
    assert len(failures) == 1 and failures[0].levelname == "WARNING", [r.getMessage() for r in failures]
    assert any(r.getMessage() == f"polling {queue_name} works again" for r in caplog.records)
