"""JobRunner over the embedded store: receipts make each job run once under at-least-once delivery,
failures release the job for its retry, a crashed holder's lease runs out, poison messages are recorded."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from shared.data.jobs import MongoJobReceiptRepository, MongoPoisonMessageRepository
from shared.data.utils import utc_now
from shared.queues import Envelope, MalformedMessage
from shared.services.jobs import InboundMessage, JobRunner

_ids = itertools.count(1)


class Counters:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def incr(self, group: str, name: str, amount: int = 1) -> None:
        self.counts[f"{group}/{name}"] = self.counts.get(f"{group}/{name}", 0) + amount


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self):
        return self.now


@pytest.fixture
def runner_parts(core) -> tuple[JobRunner, Counters, Clock]:
    clock, counters = Clock(), Counters()
    db = core.database.db
    runner = JobRunner(receipts=MongoJobReceiptRepository(db, clock=clock), poison=MongoPoisonMessageRepository(db),
                       metrics=counters, max_dequeue_count=5, lease_s=60, retention_s=3600)
    return runner, counters, clock


def message(payload: dict[str, Any] | None = None, *, body: bytes | None = None, dedupe_key: str | None = None,
            dequeue_count: int = 1) -> InboundMessage:
    envelope = Envelope.new(payload or {}, request_id="req-1", dedupe_key=dedupe_key)
    return InboundMessage(queue="unit-jobs", id=f"m{next(_ids)}", body=body or envelope.to_json().encode(),
                          dequeue_count=dequeue_count)


def test_a_failed_attempt_is_retried_and_then_done_once(runner_parts):
    runner, counters, _ = runner_parts
    msg = message({"n": 1})
    calls: list[int] = []

    def flaky(job: Any) -> None:
        calls.append(job.dequeue_count)
        if len(calls) == 1:
            raise RuntimeError("transient")

    with pytest.raises(RuntimeError):
        runner.run(msg, flaky)
    retry = InboundMessage(msg.queue, msg.id, msg.body, dequeue_count=2)
    assert runner.run(retry, flaky) == "done"  # the failed attempt released its claim
    assert runner.run(InboundMessage(msg.queue, msg.id, msg.body, dequeue_count=3), flaky) == "duplicate"
    assert calls == [1, 2]
    assert counters.counts == {"jobs/unit-jobs:failed": 1, "jobs/unit-jobs:done": 1, "jobs/unit-jobs:duplicate": 1}


def test_a_job_held_by_a_live_consumer_is_not_run_twice_until_its_lease_runs_out(runner_parts, core):
    runner, _, clock = runner_parts
    key = f"unit-jobs:held-{next(_ids)}"
    receipts = MongoJobReceiptRepository(core.database.db, clock=clock)
    assert receipts.claim(key, queue="unit-jobs", job_id="j", message_id="other-message", lease_s=60,
                          retention_s=3600) == "claimed"  # crashed holder of another copy
    ran: list[Any] = []
    msg = message(dedupe_key=key.split(":", 1)[1])
    assert runner.run(msg, ran.append) == "in_progress" and ran == []
    clock.now += timedelta(seconds=61)
    assert runner.run(msg, ran.append) == "done" and len(ran) == 1


def test_the_same_message_back_after_its_attempt_died_runs_although_the_lease_is_live(runner_parts, core):
    """A holder that died (or whose release failed, e.g. the database blinked) leaves its claim leased; the queue
    hands that message out again only after its visibility ran out, so its redelivery takes the job over."""
    runner, _, clock = runner_parts
    msg = message(dedupe_key=f"held-{next(_ids)}")
    receipts = MongoJobReceiptRepository(core.database.db, clock=clock)
    key = f"{msg.queue}:{Envelope.from_body(msg.body).dedupe_key}"
    assert receipts.claim(key, queue=msg.queue, job_id="j", message_id=msg.id, lease_s=60, retention_s=3600) == "claimed"
    ran: list[Any] = []
    assert runner.run(InboundMessage(msg.queue, msg.id, msg.body, dequeue_count=2), ran.append) == "done"
    assert len(ran) == 1
    assert runner.run(InboundMessage(msg.queue, msg.id, msg.body, dequeue_count=3), ran.append) == "duplicate"


def test_a_malformed_message_raises_so_it_ends_in_the_poison_queue(runner_parts):
    runner, counters, _ = runner_parts
    with pytest.raises(MalformedMessage):
        runner.run(message(body=b"\xff not an envelope"), lambda job: None)
    assert counters.counts == {"jobs/unit-jobs:malformed": 1}


def test_poison_messages_are_recorded_once_even_when_unreadable(runner_parts):
    runner, counters, _ = runner_parts
    good = message({"symbols": ["AAPL"]})
    first = runner.record_poison(good, source_queue="unit-jobs")
    again = runner.record_poison(InboundMessage(good.queue, "another-copy", good.body), source_queue="unit-jobs")
    assert first == again and first.request_id == "req-1" and first.payload == {"symbols": ["AAPL"]}
    bad = runner.record_poison(message(body=b"\xff garbage"), source_queue="unit-jobs")
    assert bad.job_id is None and bad.payload is None and bad.body.endswith("garbage")
    items, _ = runner.list_poison(queue="unit-jobs", limit=100)
    assert {i.id for i in items} >= {first.id, bad.id}
    assert counters.counts["jobs/unit-jobs:poison"] == 3
