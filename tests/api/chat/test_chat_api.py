"""Chat through HTTP: JSON and SSE (parsed with a real SSE client), persistence, ownership, budget,
and the OpenAI-compatible path through the real openai SDK against a local fake server."""

import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import ADMIN_KEY, make_settings
from tests.unit.ai.fake_openai import FakeOpenAIServer, sse_fixture, text_reply, tool_reply

ADMIN = {"X-API-Key": ADMIN_KEY}


@contextlib.contextmanager
def served(settings: Any) -> Iterator[Any]:
    """A Core built from `settings`, installed and served through the ASGI app (admin seeded)."""
    from starlette.testclient import TestClient

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    core = build_core(settings)
    core.services.auth.seed_local_admin()
    previous = set_core(core)
    try:
        with TestClient(build_asgi_app()) as c:
            yield c
    finally:
        set_core(previous)
        core.close()


def openai_at(srv: FakeOpenAIServer, **models: Any) -> dict:
    return {"openai": {"api_key": "sk-test-0123456789", "base_url": srv.base_url, "model": "gpt-test", "max_retries": 0}, **models}


def sse_events(client, headers, body, path="/api/v1/chat/stream"):
    """POST and parse the stream with httpx-sse over the in-process ASGI app."""
    with connect_sse(client, "POST", path, json=body, headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["cache-control"] == "no-cache"
        assert source.response.headers["x-accel-buffering"] == "no"
        return [(ev.event, json.loads(ev.data)) for ev in source.iter_sse()]


def numbers(text):
    return re.findall(r"\d+(?:\.\d+)?", text)


def test_stream_event_order_and_grounding(client, make_user):
    _, headers = make_user()
    events = sse_events(client, headers, {"message": "Latest news on AAPL"})
    names = [e for e, _ in events]
    assert names[0] == "meta" and names[-1] == "done"
    assert {"tool_call", "tool_result", "delta", "sources", "usage"} <= set(names)
    assert names.index("tool_call") < names.index("tool_result") < names.index("delta") < names.index("sources")
    meta = events[0][1]
    assert meta["conversation_id"] and meta["request_id"] and meta["provider"] == "offline"
    done = events[-1][1]
    answer = "".join(d["text"] for e, d in events if e == "delta")
    assert done["answer"] == answer and "offline model" in answer.lower()
    assert done["ungrounded_numbers"] == []
    sources = next(d for e, d in events if e == "sources")
    assert any(s["symbol"] == "AAPL" and s["provider"] == "offline" for s in (sources if isinstance(sources, list) else sources["sources"]))


def test_json_chat_is_persisted_and_continued(client, make_user):
    _, headers = make_user()
    first = client.post("/api/v1/chat", json={"message": "What is the price of MSFT?"}, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    cid = body["conversation_id"]
    assert body["tool_calls"] and body["sources"] and body["model"] and body["fallback_trace"] == []
    second = client.post("/api/v1/chat", json={"message": "And its fundamentals?", "conversation_id": cid}, headers=headers)
    assert second.status_code == 200 and second.json()["conversation_id"] == cid
    listed = client.get("/api/v1/chats", headers=headers).json()["items"]
    assert cid in [c["id"] for c in listed]
    detail = client.get(f"/api/v1/chats/{cid}", headers=headers).json()
    roles = [m["role"] for m in detail["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert detail["messages"][1]["sources"] and detail["messages"][1]["usage"]["total_tokens"] > 0


def test_other_users_conversation_is_404(client, make_user):
    _, alice = make_user()
    _, bob = make_user()
    cid = client.post("/api/v1/chat", json={"message": "Quote AAPL"}, headers=alice).json()["conversation_id"]
    assert client.get(f"/api/v1/chats/{cid}", headers=bob).status_code == 404
    assert client.delete(f"/api/v1/chats/{cid}", headers=bob).status_code == 404
    r = client.post("/api/v1/chat", json={"message": "hi", "conversation_id": cid}, headers=bob)
    assert r.status_code == 404
    assert client.delete(f"/api/v1/chats/{cid}", headers=alice).status_code == 204
    assert client.get(f"/api/v1/chats/{cid}", headers=alice).status_code == 404


@pytest.mark.parametrize(
    "body,field",
    [({}, "message"), ({"message": ""}, "message"), ({"message": "x" * 5001}, "message"),
     ({"message": "hi", "temperature": 3}, "temperature"), ({"message": "hi", "provider": "gpt-99"}, "provider"),
     ({"message": "hi", "user_id": "someone"}, "user_id")],
)
def test_bad_chat_bodies_are_422(client, make_user, body, field):
    _, headers = make_user()
    r = client.post("/api/v1/chat", json=body, headers=headers)
    assert r.status_code == 422 and field in r.json()["errors"]


def test_unconfigured_provider_is_422(client, make_user):
    _, headers = make_user()
    r = client.post("/api/v1/chat", json={"message": "hi", "provider": "openai"}, headers=headers)
    assert r.status_code == 422


def test_models_lists_providers_without_keys(client, make_user):
    _, headers = make_user()
    r = client.get("/api/v1/models", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "offline"
    names = {p["name"]: p for p in body["providers"]}
    assert names["offline"]["configured"] and not names["openai"]["configured"]
    assert "key" not in r.text.lower()


def test_token_budget_exceeded_is_429(tmp_path):
    with served(make_settings(tmp_path, chat={"daily_token_budget": 50})) as c:
        assert c.post("/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN).status_code == 200
        r = c.post("/api/v1/chat/stream", json={"message": "Quote AAPL"}, headers=ADMIN)
        assert r.status_code == 429 and r.headers["content-type"].startswith("application/problem+json")
        # Retry-After runs until the budget resets at 00:00 UTC ...
        until_midnight = 86400 - int(time.time()) % 86400
        assert until_midnight - 5 <= int(r.headers["retry-after"]) <= until_midnight
        assert r.json()["retry_after"] == int(r.headers["retry-after"])
        # ... and no per-minute RateLimit-* headers contradict it.
        assert not [h for h in r.headers if h.lower().startswith("ratelimit-")]


def test_preferred_model_provider_is_used(tmp_path):
    """PUT /users/me/preferences with openai: the next chat without `provider` goes to openai."""
    with FakeOpenAIServer() as srv:
        srv.push(text_reply("Answer from the preferred provider."))
        settings = make_settings(tmp_path, models=openai_at(srv, provider="offline", fallback_order=["offline", "openai"]))
        with served(settings) as c:
            before = c.post("/api/v1/chat", json={"message": "hello"}, headers=ADMIN).json()
            put = c.put("/api/v1/users/me/preferences", json={"preferred_model_provider": "openai"}, headers=ADMIN)
            assert put.status_code == 200, put.text
            after = c.post("/api/v1/chat", json={"message": "hello"}, headers=ADMIN)
    assert before["provider"] == "offline"
    assert after.status_code == 200 and after.json()["provider"] == "openai" and after.json()["model"] == "gpt-test"
    assert after.json()["answer"] == "Answer from the preferred provider." and len(srv.requests) == 1


def test_answer_cut_at_the_output_limit_is_reported_truncated(tmp_path):
    with FakeOpenAIServer() as srv:
        srv.push(sse_fixture("openai_length_text.sse"), sse_fixture("openai_length_tool_call.sse"),
                 sse_fixture("openai_answer_text.sse"))
        with served(make_settings(tmp_path, models=openai_at(srv, provider="openai"))) as c:
            cut = c.post("/api/v1/chat", json={"message": "Apple news?"}, headers=ADMIN).json()
            events = sse_events(c, ADMIN, {"message": "RSI of AAPL?"})
            whole = c.post("/api/v1/chat", json={"message": "AAPL?"}, headers=ADMIN).json()
            stored = c.get(f"/api/v1/chats/{cut['conversation_id']}", headers=ADMIN).json()["messages"][1]
    assert cut["truncated"] is True and cut["answer"] == "Apple reported record services revenue and"
    assert stored["truncated"] is True
    done = events[-1][1]
    assert events[-1][0] == "done" and done["truncated"] is True and done["tool_calls"] == []
    assert "tool_call" not in [e for e, _ in events]  # cut arguments are never executed
    assert whole["truncated"] is False


def test_openai_compatible_endpoint_streams_its_tokens_with_tool_use(tmp_path):
    """OPENAI_BASE_URL pointed at an OpenAI-compatible server: its tokens stream, with a tool round."""
    with FakeOpenAIServer() as srv:
        srv.push(tool_reply([("get_quote", {"symbol": "AAPL"})]), text_reply("AAPL trades where the quote says."))
        settings = make_settings(tmp_path, models={"provider": "compatible", "allow_fallback": False,
                                                   "compatible": {"base_url": srv.base_url, "model": "local-llm",
                                                                  "api_key": "x", "first_token_timeout_s": 5}})
        with served(settings) as c:
            events = sse_events(c, ADMIN, {"message": "Quote for AAPL?"})
        names = [e for e, _ in events]
        assert events[0][1]["provider"] == "compatible" and events[0][1]["model"] == "local-llm"
        assert "tool_call" in names and "tool_result" in names and names[-1] == "done"
        assert "".join(d["text"] for e, d in events if e == "delta") == "AAPL trades where the quote says."
        assert len(srv.requests) == 2
        assert srv.requests[1]["body"]["messages"][-1]["role"] == "tool"


def test_first_event_arrives_fast_over_a_real_socket(tmp_path):
    """Through uvicorn on loopback: the first SSE event comes before the model's first token."""
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from tests.conftest import served_on_loopback

    with FakeOpenAIServer() as srv:
        srv.push(text_reply("Slow model answer.", first_delay=0.8))
        settings = make_settings(tmp_path, models={"provider": "compatible", "allow_fallback": False,
                                                   "compatible": {"base_url": srv.base_url, "model": "slow", "api_key": "x"}})
        core = build_core(settings)
        core.services.auth.seed_local_admin()
        previous = set_core(core)
        try:
            with served_on_loopback(build_asgi_app()) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
                started = time.perf_counter()
                with connect_sse(http, "POST", "/api/v1/chat/stream", json={"message": "hello"},
                                 headers={"X-API-Key": ADMIN_KEY}) as source:
                    stream = source.iter_sse()
                    first = next(stream)
                    first_at = time.perf_counter() - started
                    rest = list(stream)
                    delta_at = time.perf_counter() - started
        finally:
            set_core(previous)
            core.close()
    assert first.event == "meta"
    assert first_at < 0.5 < 0.8 <= delta_at + 0.05  # meta did not wait for the slow first token
    assert [e.event for e in rest][-1] == "done"
