"""Model faults through HTTP, with local OpenAI-compatible servers driven by the real openai SDK.

The outage matrix: 5xx, timeout, connection reset, 429 with and without Retry-After, empty and malformed
bodies, an invalid key -> the outcome class in the fallback trace, the provider's breaker (GET /models),
the fallback taken, and the HTTP answer when there is no fallback. A stream cut mid-answer ends with an
`error` event, never a silent switch of model. A 429 asking for 30 s falls back at once (no wait by the
SDK or by us), and running usage totals are charged once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx_sse import connect_sse

from tests.integration.faults.fault_support import ADMIN, assert_problem, make_settings, serve
from tests.unit.ai.fake_openai import (
    FakeOpenAIServer,
    Reply,
    error_reply,
    raw_reply,
    record_sdk_retry_waits,
    reset_reply,
    sse_fixture,
    text_reply,
)

pytestmark = pytest.mark.integration

KEY = "sk-fake-compatible-key-0123456789"


def llm_settings(tmp_path, srv: FakeOpenAIServer, *, allow_fallback: bool, **models: Any):
    return make_settings(tmp_path, models={
        "provider": "compatible", "allow_fallback": allow_fallback, "fallback_order": ["compatible", "offline"],
        "compatible": {"base_url": srv.base_url, "model": "local-llm", "api_key": KEY,
                       "first_token_timeout_s": 0.5, "max_retries": 0},
        **models,
    })


@pytest.fixture
def sdk_sleeps(monkeypatch):
    """Every wait the openai SDK's own retry loop would make (there must be none: max_retries=0)."""
    return record_sdk_retry_waits(monkeypatch)


# fault -> (reply, outcome in the trace, breaker after one failure (threshold 1), status and type without fallback)
FAULTS: dict[str, tuple[Reply, str, str, int, str]] = {
    "500": (error_reply(500, "The server had an error while processing your request"), "unavailable", "open", 502, "model-unavailable"),
    "502 empty body": (raw_reply(502, b"", "text/html"), "unavailable", "open", 502, "model-unavailable"),
    "timeout": (text_reply("far too late", first_delay=1.5), "unavailable", "open", 502, "model-unavailable"),
    "connection reset": (reset_reply(), "unavailable", "open", 502, "model-unavailable"),
    "429 retry-after": (error_reply(429, "Rate limit reached", code="rate_limit_exceeded", headers={"retry-after": "30"}),
                        "rate_limited", "open", 502, "upstream-rate-limited"),
    "429 no retry-after": (error_reply(429, "Rate limit reached", code="rate_limit_exceeded"),
                           "rate_limited", "open", 502, "upstream-rate-limited"),
    "empty 200 stream": (raw_reply(200, b"", "text/event-stream"), "unavailable", "open", 502, "model-unavailable"),
    "malformed json": (raw_reply(200, b'data: {"id": "chatcmpl-1", "choices": [{"delta": \n\n', "text/event-stream"),
                       "unavailable", "open", 502, "model-unavailable"),
    "invalid key": (error_reply(401, f"Incorrect API key provided: {KEY[:6]}***{KEY[-4:]}.", code="invalid_api_key"),
                    "misconfigured", "disabled", 503, "upstream-misconfigured"),
}


def _breaker(client: Any, name: str) -> dict:
    providers = client.get("/api/v1/models", headers=ADMIN).json()["providers"]
    return next(p for p in providers if p["name"] == name)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_outage_falls_back_to_the_next_provider_with_its_outcome(tmp_path, sdk_sleeps, fault):
    reply, outcome, breaker, _, _ = FAULTS[fault]
    with FakeOpenAIServer() as srv:
        srv.push(reply)
        settings = llm_settings(tmp_path, srv, allow_fallback=True, breaker={"failure_threshold": 1})
        with serve(settings) as client:
            r = client.post("/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN)
            state = _breaker(client, "compatible")
            again = client.post("/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provider"] == "offline" and body["model"].startswith("offline")
    step = body["fallback_trace"][0]
    assert [s["provider"] for s in body["fallback_trace"]] == ["compatible"] and step["outcome"] == outcome
    assert state["breaker"] == breaker and state["healthy"] is False
    assert state["misconfigured"] is (outcome == "misconfigured")
    if fault == "429 retry-after":
        assert step["retry_after"] == 30
    # While the breaker is open (or the provider disabled) it is not asked again.
    assert again.json()["provider"] == "offline" and again.json()["fallback_trace"][0]["outcome"] in ("breaker_open", "misconfigured")
    assert len(srv.requests) == 1 and sdk_sleeps == []
    assert KEY[:6] + "***" not in r.text and KEY not in r.text


@pytest.mark.parametrize("fault", list(FAULTS))
def test_outage_without_fallback_is_a_problem_of_its_class(tmp_path, fault):
    reply, outcome, _, status, type_slug = FAULTS[fault]
    with FakeOpenAIServer() as srv:
        srv.push(reply)
        with serve(llm_settings(tmp_path, srv, allow_fallback=False)) as client:
            r = client.post("/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN)
            # The streaming endpoint fails before the first event is committed: same problem, or an error event.
            srv.push(reply)
            s = client.post("/api/v1/chat/stream", json={"message": "Quote AAPL"}, headers=ADMIN)
    body = assert_problem(r, status, type_slug)
    assert body["outcome"] == outcome and body["provider"] == "compatible"
    assert [a["outcome"] for a in body["attempted"]] == [outcome]
    if fault == "429 retry-after":
        assert body["retry_after"] == 30
    assert KEY not in r.text and KEY[:6] + "***" not in r.text
    if s.headers["content-type"].startswith("application/problem+json"):
        assert_problem(s, status, type_slug)
    else:
        events = _parse_sse(s.text)
        assert events[-1][0] == "error", events
        assert events[-1][1]["status"] == status and events[-1][1]["type"] == f"/problems/{type_slug}"
        assert not [e for e, _ in events if e == "delta"]
    assert body["request_id"] == r.headers["x-request-id"]


def test_rejected_key_shows_in_health_for_authenticated_callers(tmp_path):
    with FakeOpenAIServer() as srv:
        srv.push(FAULTS["invalid key"][0])
        with serve(llm_settings(tmp_path, srv, allow_fallback=True)) as client:
            assert client.post("/api/v1/chat", json={"message": "hello"}, headers=ADMIN).json()["provider"] == "offline"
            public = client.get("/api/health").json()["components"]["models"]
            detail = client.get("/api/health", headers=ADMIN).json()["components"]["models"]
    assert public["status"] == "unhealthy" and public["details"] == {"provider": "compatible", "breaker": "disabled"}
    assert detail["details"]["misconfigured"] == ["compatible"]
    state = detail["details"]["providers"]["compatible"]
    assert state["misconfigured"] is True and state["last_error"] == "compatible rejected our credentials (HTTP 401)"
    assert KEY not in json.dumps(detail) and KEY[:6] + "***" not in json.dumps(detail)


def test_rate_limited_first_provider_falls_back_at_once(tmp_path, sdk_sleeps):
    """A 429 asking for 30 s on the first provider: the next provider answers; nobody waited (the SDK
    never slept, and neither did we: the first server saw exactly one request although it allows 3 retries)."""
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        first.push(error_reply(429, "Rate limit reached for gpt-4o", code="rate_limit_exceeded", headers={"retry-after": "30"}))
        second.push(text_reply("Answer from the second provider."), text_reply("Second again."))
        settings = llm_settings(tmp_path, first, allow_fallback=True, fallback_order=["compatible", "openai", "offline"],
                                compatible={"base_url": first.base_url, "model": "local-llm", "api_key": KEY, "max_retries": 3},
                                openai={"api_key": "sk-second-0123456789", "base_url": second.base_url, "model": "gpt-second"})
        with serve(settings) as client:
            r = client.post("/api/v1/chat", json={"message": "hello"}, headers=ADMIN)
            again = client.post("/api/v1/chat", json={"message": "hello"}, headers=ADMIN)
            state = _breaker(client, "compatible")
    body = r.json()
    assert r.status_code == 200 and body["provider"] == "openai" and body["answer"] == "Answer from the second provider."
    assert body["fallback_trace"] == [{"provider": "compatible", "outcome": "rate_limited",
                                       "error": "compatible is rate limiting requests", "retry_after": 30.0}]
    assert len(first.requests) == 1 and len(second.requests) == 2 and sdk_sleeps == []
    assert again.json()["fallback_trace"][0]["outcome"] == "breaker_open"  # honours the 30 s
    assert state["breaker"] == "open"


def test_running_usage_totals_charge_the_true_token_count(tmp_path):
    """A vLLM-style server reports running totals on every chunk: the turn costs 826 + 825 tokens, not the
    16,405 the sum of all reports would be. With a budget of 1,652 tokens a second chat is still allowed."""
    with FakeOpenAIServer() as srv:
        srv.push(sse_fixture("vllm_tool_call_running_usage.sse"), sse_fixture("vllm_running_usage.sse"),
                 text_reply("Second answer.", usage=(5, 2)))
        settings = llm_settings(tmp_path, srv, allow_fallback=False)
        settings = settings.model_copy(update={"chat": settings.chat.model_copy(update={"daily_token_budget": 1652})})
        with serve(settings) as client:
            first = client.post("/api/v1/chat", json={"message": "AAPL?"}, headers=ADMIN)
            stored = client.get(f"/api/v1/chats/{first.json()['conversation_id']}", headers=ADMIN).json()["messages"][1]
            second = client.post("/api/v1/chat", json={"message": "and now?"}, headers=ADMIN)
            third = client.post("/api/v1/chat", json={"message": "more?"}, headers=ADMIN)
    assert first.status_code == 200, first.text
    assert first.json()["usage"] == {"prompt_tokens": 1624, "completion_tokens": 27, "total_tokens": 1651}
    assert stored["usage"]["total_tokens"] == 1651
    assert second.status_code == 200, second.text  # 1651 < 1652: the budget was charged the true count
    assert third.status_code == 429  # 1651 + 7 >= 1652


def _parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


@pytest.mark.parametrize("allow_fallback", [True, False])
def test_stream_cut_mid_answer_ends_with_error_event(tmp_path, allow_fallback):
    with FakeOpenAIServer() as srv:
        srv.push(text_reply("The first words arrive and then the line goes dead.", cut_after=4))
        with serve(llm_settings(tmp_path, srv, allow_fallback=allow_fallback)) as client:
            started_events = []
            with connect_sse(client, "POST", "/api/v1/chat/stream", json={"message": "hello there"},
                             headers=ADMIN) as source:
                assert source.response.status_code == 200
                for ev in source.iter_sse():
                    started_events.append((ev.event, json.loads(ev.data)))
    names = [e for e, _ in started_events]
    assert names[0] == "meta" and started_events[0][1]["provider"] == "compatible"
    assert "delta" in names, names
    assert names[-1] == "error", names
    assert "done" not in names
    problem = started_events[-1][1]
    assert problem["status"] >= 500 and problem["type"].startswith("/problems/") and problem["title"]
    assert problem["type"] != "/problems/internal-error"
    # No silent switch: every delta came from the compatible model's words, none from the offline model.
    text = "".join(d["text"] for e, d in started_events if e == "delta")
    assert text and "The first words arrive and then the line goes dead.".startswith(text)
    assert "offline" not in text.lower()


@pytest.mark.parametrize("fault", ["timeout", "500"])
def test_stream_failure_before_first_token_switches_visibly(tmp_path, fault):
    """Before any delta, the stream may fall back, but says so: a second `meta` with the trace, then the answer."""
    with FakeOpenAIServer() as srv:
        srv.push(FAULTS[fault][0])
        with serve(llm_settings(tmp_path, srv, allow_fallback=True)) as client:
            with connect_sse(client, "POST", "/api/v1/chat/stream", json={"message": "Quote AAPL"},
                             headers=ADMIN) as source:
                events = [(ev.event, json.loads(ev.data)) for ev in source.iter_sse()]
    names = [e for e, _ in events]
    metas = [d for e, d in events if e == "meta"]
    assert names[0] == "meta" and metas[0]["provider"] == "compatible"
    assert len(metas) == 2 and metas[1]["provider"] == "offline"
    assert [s["provider"] for s in metas[1]["fallback_trace"]] == ["compatible"]
    assert names.index("meta", 1) < names.index("delta")  # the switch is announced before any text
    assert names[-1] == "done" and "error" not in names
