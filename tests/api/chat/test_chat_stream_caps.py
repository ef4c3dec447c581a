"""Chat turns in progress are capped per user (429) and per instance (503), refused at once with
Retry-After before anything starts, and a stream frees its slot on completion, error and disconnect."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from httpx_sse import connect_sse

from shared.errors import ModelUnavailable
from tests.api.chat.chat_support import GatedModel, serve_core, wait_until
from tests.conftest import ADMIN_KEY

ADMIN = {"X-API-Key": ADMIN_KEY}
STREAM = "/api/v1/chat/stream"


def _stream(client, headers=ADMIN, message="Quote AAPL"):
    """POST a stream and read it to its end: (status, [event names])."""
    with connect_sse(client, "POST", STREAM, json={"message": message}, headers=headers) as source:
        if source.response.status_code != 200:
            source.response.read()
            return source.response.status_code, []
        return 200, [ev.event for ev in source.iter_sse()]


def _problem(response, status, slug):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"] == f"/problems/{slug}"


def _admin_id(core) -> str:
    return core.repos.get_user_repository().find_by_email("admin@localhost")["id"]


def test_21st_concurrent_stream_of_a_user_is_429_before_it_starts(tmp_path):
    model = GatedModel()
    with serve_core(tmp_path, model) as (client, core):
        assert core.settings.chat.max_streams_per_user == 20  # the default cap
        user = _admin_id(core)
        chats = core.database.db["chats"]
        with ThreadPoolExecutor(max_workers=20) as pool:
            running = [pool.submit(_stream, client) for _ in range(20)]
            wait_until(lambda: model.requests == 20, "20 turns asking the model")
            assert core.stream_slots.in_use(user) == 20
            conversations = chats.count_documents({})

            r = client.post(STREAM, json={"message": "one more"}, headers=ADMIN)
            _problem(r, 429, "too-many-streams")
            r = client.post("/api/v1/chat", json={"message": "one more"}, headers=ADMIN)  # a JSON turn too
            _problem(r, 429, "too-many-streams")
            assert model.requests == 20 and chats.count_documents({}) == conversations  # nothing started

            model.gate.set()
            results = [f.result() for f in running]
        assert all(status == 200 and events[-1] == "done" for status, events in results), results
        assert core.stream_slots.in_use() == 0  # every completed stream gave its slot back
        assert _stream(client)[0] == 200


def test_full_instance_is_503_for_everyone_else(tmp_path):
    model = GatedModel()
    with serve_core(tmp_path, model, chat={"max_streams_per_instance": 2}) as (client, core):
        users = core.repos.get_user_repository()
        keys = []
        for i in range(3):
            user = users.insert_one({"email": f"caps{i}@example.com", "roles": ["user"]})
            keys.append({"X-API-Key": core.services.auth.create_api_key(user["id"], "caps")[1]})
        with ThreadPoolExecutor(max_workers=2) as pool:
            running = [pool.submit(_stream, client, keys[i]) for i in range(2)]
            wait_until(lambda: core.stream_slots.in_use() == 2, "two streams in progress")
            r = client.post(STREAM, json={"message": "hi"}, headers=keys[2])
            _problem(r, 503, "stream-capacity-full")
            model.gate.set()
            assert [f.result()[0] for f in running] == [200, 200]
        assert core.stream_slots.in_use() == 0
        assert _stream(client, keys[2])[0] == 200


def test_a_failed_stream_frees_its_slot(tmp_path):
    model = GatedModel(fail=ModelUnavailable("the model is down", provider="openai"))
    with serve_core(tmp_path, model, chat={"max_streams_per_user": 1}) as (client, core):
        for _ in range(3):  # with a cap of one, each of these needs the previous one's slot back
            status, events = _stream(client)
            assert status == 200 and "error" in events
            wait_until(lambda: core.stream_slots.in_use() == 0, "the failed stream's slot")
        r = client.post("/api/v1/chat", json={"message": "hi"}, headers=ADMIN)
        assert r.status_code == 502  # the JSON turn fails too, and also gives its slot back
        assert core.stream_slots.in_use() == 0


def test_a_rejected_start_frees_its_slot(tmp_path):
    with serve_core(tmp_path, GatedModel(), chat={"max_streams_per_user": 1}) as (client, core):
        for _ in range(3):
            r = client.post(STREAM, json={"message": "hi", "conversation_id": "0" * 24}, headers=ADMIN)
            assert r.status_code == 404  # the conversation is checked before the stream starts
        assert core.stream_slots.in_use() == 0


def test_a_client_that_goes_away_frees_its_slot(tmp_path):
    """Over a real socket: the client reads a few deltas of an endless answer and disconnects; the
    stream's worker closes the model stream and the slot is free for the next stream."""
    import uvicorn

    from devhost.app import build_asgi_app

    model = GatedModel(endless=True)
    model.gate.set()
    with serve_core(tmp_path, model, chat={"max_streams_per_user": 1, "heartbeat_s": 0.05}) as (_, core):
        server = uvicorn.Server(uvicorn.Config(build_asgi_app(), host="127.0.0.1", port=0, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_until(lambda: server.started, "uvicorn to start")
            port = server.servers[0].sockets[0].getsockname()[1]
            for _ in range(2):  # the second stream is admitted only if the first one's slot came back
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                    with connect_sse(http, "POST", STREAM, json={"message": "hi"}, headers=ADMIN) as source:
                        assert source.response.status_code == 200
                        events = source.iter_sse()
                        assert next(events).event == "meta"
                        assert json.loads(next(e for e in events if e.event == "delta").data)["text"] == "tick "
                        assert core.stream_slots.in_use() == 1
                wait_until(lambda: core.stream_slots.in_use() == 0, "the slot of the stream whose client left")
            assert model.closed == 2  # each disconnect closed the model's stream
        finally:
            server.should_exit = True
            thread.join(5)


def test_json_turns_in_progress_leave_the_threads_other_requests_need(tmp_path):
    """A JSON turn waits for the model as long as a stream does: it must not hold one of the threads that
    short calls (sign-in lookups, reads) run on, or a few users' slow turns stall the whole instance."""
    model = GatedModel()
    turns = core_threads = 32  # shared.runtime.build_core: the pool short calls run on
    with serve_core(tmp_path, model, chat={"max_streams_per_user": turns}) as (client, core):
        assert core.executor._max_workers == core_threads
        with ThreadPoolExecutor(max_workers=turns + 1) as pool:
            running = [pool.submit(client.post, "/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN)
                       for _ in range(turns)]
            try:
                wait_until(lambda: model.requests == turns, f"{turns} JSON turns asking the model")
                read = pool.submit(client.get, "/api/v1/workspaces", headers=ADMIN)
                wait_until(read.done, "a read while the JSON turns wait for the model")
                assert read.result().status_code == 200
            finally:
                model.gate.set()
            assert [f.result().status_code for f in running] == [200] * turns
        assert core.stream_slots.in_use() == 0
