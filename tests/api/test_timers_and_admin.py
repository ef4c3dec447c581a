"""Timer functions run on demand through the local host, the queue-triggered functions they feed,
the poison-message listing, and the admin migration endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from devhost.queues import QueueHost, queue_functions
from shared.logging import JsonFormatter, bound_request_id
from shared.queues import MARKET_REFRESH, host_queue_options, poison_queue
from shared.queues.envelope import encode_text
from tests.api.test_pipeline import assert_problem

LOOPBACK = ("127.0.0.1", 50000)


class LocalQueueHost:
    """The local host's queue side over a core's queues, with the functions function_app registers and
    host.json's options, retrying at once so each poll is one attempt."""

    def __init__(self, core: Any) -> None:
        from function_app import app

        options = host_queue_options()
        self.host = QueueHost(core.services.queue_backend, queue_functions(app),
                              type(options)(**{**vars(options), "visibility_timeout_s": 0}))
        self._by_queue = {qf.queue: qf for qf in self.host.functions}
        asyncio.run(self.host.create_queues())

    def drain(self, queue: str) -> int:
        """Poll `queue` until it is empty; how many polls found messages."""

        async def run() -> int:
            polls = 0
            while await self.host.poll_once(self._by_queue[queue]):
                polls += 1
            return polls

        return asyncio.run(run())


@pytest.fixture
def local_host(core) -> LocalQueueHost:
    host = LocalQueueHost(core)
    host.drain(MARKET_REFRESH)  # nothing left over from other tests
    return host


class JsonLines(logging.Handler):
    """The app's JSON log lines (the production formatter), parsed."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"].startswith(logger)]


@pytest.fixture
def log_lines():
    handler, root = JsonLines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_market_refresh_timer_queues_batches_that_the_queue_function_refreshes(serve, log_lines, monkeypatch):
    for name in ("AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "AzureWebJobsStorage__queueServiceUri"):
        monkeypatch.delenv(name, raising=False)  # in-process queues, whatever the shell has
    client = serve(peer=LOOPBACK, app={"env": "local"})  # the admin route runs timers locally only
    from shared.runtime import get_core

    core = get_core()
    owner = core.repos.get_user_repository().insert_one({"email": "refresh@example.com", "roles": ["user"]})
    core.repos.get_watchlist_repository().insert_one(owner["id"], {"name": "refresh-test", "symbols": ["AMD", "INTC"]})

    r = client.post("/admin/functions/market_refresh", headers={"X-Request-ID": "refresh-run-1"})
    assert r.status_code == 202 and r.headers["x-request-id"] == "refresh-run-1"
    assert core.services.queue_backend.count(MARKET_REFRESH) >= 1
    assert LocalQueueHost(core).drain(MARKET_REFRESH) >= 1

    done = [line for line in log_lines.of("shared.services.jobs") if line.get("outcome") == "done"]
    assert done and {line["request_id"] for line in done} == {"refresh-run-1"}  # the HTTP call's id, in the job's log
    assert core.services.market.refresh_quotes(["AMD", "INTC", *core.settings.market.core_symbols])["upstream_calls"] == 0


def test_a_batch_that_keeps_failing_lands_in_the_poison_queue_and_is_listed(client, core, local_host, admin_headers,
                                                                             make_user, monkeypatch, log_lines):
    def provider_down(job: Any) -> None:
        raise RuntimeError("provider down")

    monkeypatch.setattr(core.services.market_refresh, "refresh_batch", provider_down)
    with bound_request_id("poison-origin"):
        job = core.services.queues.enqueue(MARKET_REFRESH, {"run_id": "r1", "batch": 0, "batches": 1,
                                                            "symbols": ["AAPL"]}, dedupe_key="poison-test:0")

    assert local_host.drain(MARKET_REFRESH) == host_queue_options().max_dequeue_count  # every attempt failed
    assert local_host.drain(poison_queue(MARKET_REFRESH)) == 1
    errors = [line for line in log_lines.of("shared.services.jobs") if line["level"] == "ERROR"]
    assert errors and errors[0]["request_id"] == "poison-origin" and job.id in errors[0]["msg"]

    r = client.get("/api/v1/admin/queues/poison", params={"queue": MARKET_REFRESH}, headers=admin_headers)
    assert r.status_code == 200
    (item,) = [i for i in r.json()["items"] if i["job_id"] == job.id]
    assert item["request_id"] == "poison-origin" and item["payload"]["symbols"] == ["AAPL"]
    assert json.loads(item["body"])["id"] == job.id
    counters = client.get("/api/v1/admin/metrics", headers=admin_headers).json()["counters"]["jobs"]
    assert counters[f"{MARKET_REFRESH}:poison"] >= 1 and counters[f"{MARKET_REFRESH}:failed"] >= 5

    # Recording the same poison message again (the poison function was retried) keeps one record.
    core.services.queue_backend.send(poison_queue(MARKET_REFRESH), encode_text(item["body"], "base64"))
    local_host.drain(poison_queue(MARKET_REFRESH))
    again = client.get("/api/v1/admin/queues/poison", params={"queue": MARKET_REFRESH}, headers=admin_headers).json()
    assert len([i for i in again["items"] if i["job_id"] == job.id]) == 1

    _, user_headers = make_user()
    assert client.get("/api/v1/admin/queues/poison", headers=user_headers).status_code == 403


def test_timers_run_via_admin_functions_route_locally_from_loopback(serve):
    c = serve(peer=LOOPBACK, app={"env": "local"})
    assert c.post("/admin/functions/market_refresh").status_code == 202
    assert c.post("/admin/functions/run_migrations").status_code == 202
    r = c.post("/admin/functions/nope")
    assert_problem(r, 404, "not-found")
    assert "market_refresh" in r.json()["timers"]


@pytest.mark.parametrize("peer", [("192.0.2.10", 50000), ("10.0.0.5", 1), ("::ffff:10.0.0.5", 1)])
def test_admin_functions_refuse_callers_off_this_machine(serve, peer):
    c = serve(peer=peer, app={"env": "local"})
    assert_problem(c.post("/admin/functions/market_refresh"), 403, "forbidden")
    assert_problem(c.post("/admin/functions/market_refresh", headers={"X-Forwarded-For": "127.0.0.1"}), 403)


@pytest.mark.parametrize("env", ["test", "staging"])
def test_admin_functions_exist_only_with_app_env_local(serve, env):
    c = serve(peer=LOOPBACK, app={"env": env}, http={"cursor_signing_key": "k" * 32})
    assert_problem(c.post("/admin/functions/market_refresh"), 404, "not-found")


@pytest.mark.parametrize("method,path", [("TRACE", "/api/health"), ("TRACE", "/api/v1/workspaces"),
                                         ("PROPFIND", "/api/v1/workspaces"), ("CONNECT", "/api/health"),
                                         ("GET", "/admin/functions/market_refresh"), ("TRACE", "/"),
                                         ("GET", "/not-under-api")])
def test_what_no_function_answers_is_a_problem_with_security_headers(client, method, path):
    r = client.request(method, path)
    assert r.status_code in (404, 405)
    assert_problem(r, r.status_code)
    if r.status_code == 405:
        assert r.headers["allow"]
    if path == "/api/v1/workspaces":
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


def test_admin_migrations_endpoint_reports_nothing_to_do(client, admin_headers, make_user):
    r = client.post("/api/v1/admin/migrations", json={}, headers=admin_headers)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "nothing to do" and body["applied"] == [] and "0002_seed_symbols" in body["already_applied"]
    _, user = make_user()
    assert client.post("/api/v1/admin/migrations", json={}, headers=user).status_code == 403
