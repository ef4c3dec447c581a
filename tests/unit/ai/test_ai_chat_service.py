"""ChatService: conversations, persistence, budget and cancellation around StockAgent."""

import pytest
from ai_fakes import MemoryChatStore, ScriptedModel, make_settings, openai_settings
from fake_openai import text_reply

from shared.ai.agent import StockAgent
from shared.ai.chat_service import ChatService
from shared.ai.factory import ModelFactory
from shared.ai.models.base import ModelEvent, ToolCall, Usage
from shared.errors import ModelUnavailable, NotFound, RateLimited, ValidationFailed


def service(market, user_data, store, budget, settings=None, clients=None, **kw):
    settings = settings or make_settings()
    agent = StockAgent(market, user_data, ModelFactory(settings, clients=clients), settings)
    return ChatService(agent, store, budget, settings, **kw)


def test_conversation_continued_across_two_calls(market, user_data, store, budget):
    svc = service(market, user_data, store, budget)
    first = svc.chat("alice", "What's the price of AAPL?")
    cid = first["conversation_id"]
    assert set(first) == {"conversation_id", "message", "answer", "sources", "tool_calls", "usage", "model", "provider",
                          "fallback_trace", "ungrounded_numbers", "truncated"}
    assert "189.84" in first["answer"] and first["provider"] == "offline"
    second = svc.chat("alice", "and what about the news?", conversation_id=cid)
    assert second["conversation_id"] == cid
    # the offline model found the symbol in the loaded conversation history
    assert [c["name"] for c in second["tool_calls"]] == ["get_news"] and second["tool_calls"][0]["arguments"]["symbol"] == "AAPL"
    msgs = store.chats[cid]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assistant = msgs[1]
    assert assistant["content"] == first["answer"] and assistant["tool_calls"][0]["name"] == "get_quote"
    assert assistant["sources"][0]["symbol"] == "AAPL" and assistant["model"] == "offline-template-v1"
    assert assistant["usage"]["total_tokens"] > 0 and assistant["provider"] == "offline"
    assert store.chats[cid]["title"] == "What's the price of AAPL?"


def test_history_reaches_the_llm(market, user_data, store, budget):
    model = ScriptedModel(["First answer.", "Second answer."])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    cid = svc.chat("alice", "first question")["conversation_id"]
    svc.chat("alice", "second question", conversation_id=cid)
    sent = [(m["role"], m["content"]) for m in model.requests[1]["messages"][1:]]
    assert sent == [("user", "first question"), ("assistant", "First answer. "), ("user", "second question")]


def test_other_users_conversation_is_not_found(market, user_data, store, budget):
    svc = service(market, user_data, store, budget)
    cid = svc.chat("alice", "AAPL price")["conversation_id"]
    with pytest.raises(NotFound):
        svc.chat_stream("bob", "AAPL news", conversation_id=cid)
    assert len(store.chats[cid]["messages"]) == 2


def test_budget_exceeded_is_rate_limited_before_the_model(market, user_data, store, budget):
    model = ScriptedModel(["answer with some words"])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    svc.chat("alice", "hello")
    assert budget.used["alice"] == 8  # the model's reported total_tokens
    budget.limit = 8
    with pytest.raises(RateLimited) as ei:
        svc.chat_stream("alice", "again")
    assert ei.value.retry_after == 3600 and ei.value.status == 429
    assert len(model.requests) == 1 and len(store.chats) == 1


def test_unknown_provider_is_rejected_before_creating_a_conversation(market, user_data, store, budget):
    svc = service(market, user_data, store, budget)
    with pytest.raises(ValidationFailed):
        svc.chat_stream("alice", "hi", provider="openai")  # not configured
    with pytest.raises(ValidationFailed):
        svc.chat_stream("alice", "hi", provider="nope")
    assert store.chats == {}


def test_user_preference_picks_the_provider(market, user_data, store, budget):
    model = ScriptedModel(["from grok"], provider="grok")
    svc = service(market, user_data, store, budget, clients={"grok": model}, preference=lambda uid: "grok")
    assert svc.chat("alice", "hi")["provider"] == "grok"


def test_stream_first_event_meta_has_conversation_id_and_turn_is_persisted(market, user_data, store, budget):
    svc = service(market, user_data, store, budget)
    evs = list(svc.chat_stream("alice", "Latest news on AAPL"))
    assert evs[0].event == "meta" and evs[0].data["conversation_id"] in store.chats
    assert evs[0].data["provider"] == "offline"
    assert evs[-1].event == "done"
    cid = evs[0].data["conversation_id"]
    stored = store.chats[cid]["messages"]
    assert stored[0] == {**stored[0], "role": "user", "content": "Latest news on AAPL"}
    assert stored[1]["content"] == evs[-1].data["answer"] and stored[1]["tool_calls"][0]["name"] == "get_news"


def test_failed_stream_persists_partial_answer_with_error(market, user_data, store, budget):
    boom = ModelUnavailable("cut", provider="openai")
    model = ScriptedModel([[ModelEvent("delta", text="Partial "), boom]] * 2)
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    evs = list(svc.chat_stream("alice", "hi"))
    assert [e.event for e in evs] == ["meta", "delta", "error"]
    cid = evs[0].data["conversation_id"]
    assistant = store.chats[cid]["messages"][1]
    assert assistant["content"] == "Partial " and assistant["error"]["status"] == 502
    with pytest.raises(ModelUnavailable):
        svc.chat("alice", "again", conversation_id=cid)


def test_error_before_any_model_output_still_starts_with_meta(market, user_data, store, budget):
    model = ScriptedModel([ModelUnavailable("down", provider="openai")])
    settings = make_settings(models={"provider": "openai", "allow_fallback": False})
    svc = service(market, user_data, store, budget, settings=settings, clients={"openai": model})
    evs = list(svc.chat_stream("alice", "hi"))
    assert [e.event for e in evs] == ["meta", "error"] and evs[0].data["conversation_id"]


def test_closing_the_stream_closes_the_model_stream_and_persists_partial(market, user_data, store, budget):
    model = ScriptedModel([[ModelEvent("delta", text=f"w{i} ") for i in range(100)] + [ModelEvent("finish", finish_reason="stop")]])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    gen = svc.chat_stream("alice", "long answer please")
    got = [next(gen) for _ in range(3)]
    assert [e.event for e in got] == ["meta", "delta", "delta"]
    gen.close()
    assert model.closed == 1 and model.events_sent < 10
    cid = got[0].data["conversation_id"]
    assistant = store.chats[cid]["messages"][1]
    assert assistant["cancelled"] is True and assistant["content"] == "w0 w1 "
    assert budget.used["alice"] > 0


def test_closing_the_stream_disconnects_the_real_sdk_stream(fake_openai, market, user_data, store, budget):
    fake_openai.push(text_reply("token " * 300, text_chunk=6, chunk_delay=0.02))
    svc = service(market, user_data, store, budget, settings=openai_settings(fake_openai))
    gen = svc.chat_stream("alice", "talk a lot")
    assert [next(gen).event for _ in range(3)] == ["meta", "delta", "delta"]
    gen.close()
    assert fake_openai.wait_for_disconnect(timeout=5.0)


def test_tool_calls_recorded_in_persisted_answer(market, user_data, store, budget):
    model = ScriptedModel([[ToolCall("a", "my_watchlists", "{}")], "You watch AAPL and MSFT."])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    out = svc.chat("alice", "my watchlist?")
    assert out["tool_calls"][0]["name"] == "my_watchlists" and out["sources"][0]["data_type"] == "watchlists"
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


class FailingStore(MemoryChatStore):
    def __init__(self) -> None:
        super().__init__()
        self.appends = 0

    def append_messages(self, user_id, chat_id, messages):
        self.appends += 1
        raise RuntimeError("db down")


def test_failing_on_turn_hook_does_not_break_the_stream(market, user_data, store, budget):
    def hook(_done):
        raise RuntimeError("metrics down")

    svc = service(market, user_data, store, budget, on_turn=hook)
    evs = list(svc.chat_stream("alice", "price of AAPL"))
    assert evs[-1].event == "done"
    cid = evs[0].data["conversation_id"]
    assert len(store.chats[cid]["messages"]) == 2 and "cancelled" not in store.chats[cid]["messages"][1]


def test_persist_failure_is_logged_once_and_done_still_sent(market, user_data, budget):
    store = FailingStore()
    svc = service(market, user_data, store, budget)
    evs = list(svc.chat_stream("alice", "price of AAPL"))
    assert evs[-1].event == "done" and store.appends == 1  # no second "cancelled" copy
    assert budget.used["alice"] == evs[-1].data["usage"]["total_tokens"]


def test_failed_turn_charges_the_usage_of_completed_rounds(market, user_data, store, budget):
    boom = ModelUnavailable("cut", provider="openai")
    big = Usage(4000, 1000, 5000)
    model = ScriptedModel([[ModelEvent("tool_call", tool_call=ToolCall("a", "my_watchlists", "{}")), ModelEvent("usage", usage=big),
                            ModelEvent("finish", finish_reason="tool_calls")],
                           [ModelEvent("delta", text="Partial "), boom]])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    evs = list(svc.chat_stream("alice", "hi"))
    assert evs[-1].event == "error" and evs[-1].data["usage"]["total_tokens"] == 5000
    assert budget.used["alice"] == 5000


def test_cancelled_turn_charges_the_usage_of_completed_rounds(market, user_data, store, budget):
    big = Usage(4000, 1000, 5000)
    model = ScriptedModel([[ModelEvent("tool_call", tool_call=ToolCall("a", "my_watchlists", "{}")), ModelEvent("usage", usage=big),
                            ModelEvent("finish", finish_reason="tool_calls")],
                           [ModelEvent("delta", text=f"w{i} ") for i in range(50)] + [ModelEvent("finish", finish_reason="stop")]])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    gen = svc.chat_stream("alice", "hi")
    while next(gen).event != "delta":
        pass
    gen.close()
    assert budget.used["alice"] == 5000
    cid = next(iter(store.chats))
    assert store.chats[cid]["messages"][1]["cancelled"] is True and store.chats[cid]["messages"][1]["usage"]["total_tokens"] == 5000


def test_truncated_answer_is_flagged_in_the_response_and_the_stored_message(market, user_data, store, budget):
    model = ScriptedModel([[ModelEvent("delta", text="Apple reported "), ModelEvent("usage", usage=Usage(30, 4, 34)),
                            ModelEvent("finish", finish_reason="length")]])
    svc = service(market, user_data, store, budget, settings=make_settings(models={"provider": "openai"}), clients={"openai": model})
    out = svc.chat("alice", "news?")
    assert out["truncated"] is True and out["answer"] == "Apple reported "
    assert store.chats[out["conversation_id"]]["messages"][1]["truncated"] is True
    assert budget.used["alice"] == 34
