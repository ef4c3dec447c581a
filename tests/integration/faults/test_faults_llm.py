"""Model faults through HTTP, with a local OpenAI-compatible server as the `compatible` provider:
slow first token, 429, 500 fall back to the offline model (traced) or answer 502 `model-unavailable`;
a stream cut mid-answer ends with an `error` event, never a silent switch of model."""

from __future__ import annotations

import json

import pytest
from httpx_sse import connect_sse

from tests.integration.faults.fault_support import ADMIN, assert_problem, make_settings, serve, timed
from tests.unit.ai.fake_openai import FakeOpenAIServer, Reply, error_reply, text_reply

pytestmark = pytest.mark.integration

BOUND_S = 5.0


def llm_settings(tmp_path, srv: FakeOpenAIServer, *, allow_fallback: bool):
    return make_settings(tmp_path, models={
        "provider": "compatible", "allow_fallback": allow_fallback, "fallback_order": ["compatible", "offline"],
        "compatible": {"base_url": srv.base_url, "model": "local-llm", "api_key": "sk-fake-compatible-key-0123456789",
                       "timeout_s": 0.5, "max_retries": 0},
    })


def failures() -> dict[str, Reply]:
    return {
        "slow-first-token": text_reply("far too late", first_delay=1.5),
        "429": error_reply(429, "rate limited", code="rate_limit_exceeded"),
        "500": error_reply(500, "boom"),
    }


@pytest.mark.parametrize("fault", ["slow-first-token", "429", "500"])
def test_model_failure_falls_back_to_offline_with_trace(tmp_path, fault):
    with FakeOpenAIServer() as srv:
        srv.push(failures()[fault])
        with serve(llm_settings(tmp_path, srv, allow_fallback=True)) as client:
            r, took = timed(client.post, "/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN)
    assert took < BOUND_S, took
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provider"] == "offline" and body["model"].startswith("offline")
    assert [step["provider"] for step in body["fallback_trace"]] == ["compatible"]
    assert body["fallback_trace"][0]["error"]
    assert "sk-fake-compatible-key" not in r.text
    assert srv.requests, "the compatible provider was tried first"


@pytest.mark.parametrize("fault", ["slow-first-token", "429", "500"])
def test_model_failure_without_fallback_is_502_problem(tmp_path, fault):
    with FakeOpenAIServer() as srv:
        srv.push(failures()[fault])
        with serve(llm_settings(tmp_path, srv, allow_fallback=False)) as client:
            r, took = timed(client.post, "/api/v1/chat", json={"message": "Quote AAPL"}, headers=ADMIN)
            # The streaming endpoint fails before the first event is committed: same problem, or an error event.
            srv.push(failures()[fault])
            s = client.post("/api/v1/chat/stream", json={"message": "Quote AAPL"}, headers=ADMIN)
    assert took < BOUND_S, took
    body = assert_problem(r, 502, "model-unavailable")
    assert "sk-fake-compatible-key" not in r.text
    if s.headers["content-type"].startswith("application/problem+json"):
        assert_problem(s, 502, "model-unavailable")
    else:
        events = _parse_sse(s.text)
        assert events[-1][0] == "error", events
        assert events[-1][1]["status"] == 502 and events[-1][1]["type"] == "/problems/model-unavailable"
        assert not [e for e, _ in events if e == "delta"]
    assert body["request_id"] == r.headers["x-request-id"]


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


@pytest.mark.parametrize("fault", ["slow-first-token", "500"])
def test_stream_failure_before_first_token_switches_visibly(tmp_path, fault):
    """Before any delta, the stream may fall back, but says so: a second `meta` with the trace, then the answer."""
    with FakeOpenAIServer() as srv:
        srv.push(failures()[fault])
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
