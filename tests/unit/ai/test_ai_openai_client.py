"""OpenAI / Grok / Azure / compatible adapters through the REAL openai SDK against the local fake server."""

import json
import time

import pytest
from ai_fakes import make_settings, openai_settings
from fake_openai import error_reply, text_reply, tool_reply

from shared.ai.factory import ModelFactory
from shared.ai.models.openai_chat import AzureOpenAIChat, OpenAIChat
from shared.ai.tools import tool_definitions
from shared.errors import ContentFiltered, ModelUnavailable, ValidationFailed

MSGS = [{"role": "user", "content": "hi"}]


def client_for(srv, **kw) -> OpenAIChat:
    opts = dict(provider="openai", model="gpt-test", api_key="test-key", base_url=srv.base_url, timeout_s=2.0, max_retries=0)
    opts.update(kw)
    return OpenAIChat(**opts)


def test_generate_parses_text_tool_calls_and_usage(fake_openai):  # BaseModelClient.generate over the stream
    fake_openai.push(tool_reply([("get_quote", {"symbol": "AAPL"})], text="checking", usage=(20, 4)))
    res = client_for(fake_openai).generate(MSGS, tool_definitions(["get_quote"]), temperature=0.1)
    assert res.text == "checking"
    assert [(c.name, json.loads(c.arguments)) for c in res.tool_calls] == [("get_quote", {"symbol": "AAPL"})]
    assert (res.usage.prompt_tokens, res.usage.completion_tokens, res.usage.total_tokens) == (20, 4, 24)
    assert res.finish_reason == "tool_calls" and res.provider == "openai"
    req = fake_openai.requests[0]
    assert req["headers"]["authorization"] == "Bearer test-key"
    assert req["body"]["model"] == "gpt-test" and req["body"]["temperature"] == 0.1
    assert req["body"]["tools"][0]["function"]["name"] == "get_quote"
    assert req["body"]["stream"] is True  # one response parser: the stream's


def test_openai_chat_has_no_second_response_parser():
    assert "generate" not in OpenAIChat.__dict__  # BaseModelClient.generate collects generate_stream


def test_stream_text_deltas_usage_and_finish(fake_openai):
    fake_openai.push(text_reply("Hello there, investor!", text_chunk=3, usage=(9, 6)))
    events = list(client_for(fake_openai).generate_stream(MSGS, None))
    deltas = [e.text for e in events if e.type == "delta"]
    assert len(deltas) > 3 and "".join(deltas) == "Hello there, investor!"
    usage = [e.usage for e in events if e.type == "usage"]
    assert len(usage) == 1 and usage[0].total_tokens == 15
    assert events[-1].type == "finish" and events[-1].finish_reason == "stop"
    body = fake_openai.requests[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_stream_tool_call_arguments_split_across_chunks_are_accumulated(fake_openai):
    args1 = {"symbol": "AAPL", "names": ["rsi_14", "sma_20"]}
    fake_openai.push(tool_reply([("get_indicators", args1), ("get_quote", {"symbol": "MSFT"})], args_chunk=3))
    events = list(client_for(fake_openai).generate_stream(MSGS, tool_definitions()))
    calls = [e.tool_call for e in events if e.type == "tool_call"]
    assert [c.name for c in calls] == ["get_indicators", "get_quote"]
    assert json.loads(calls[0].arguments) == args1 and json.loads(calls[1].arguments) == {"symbol": "MSFT"}
    assert calls[0].id == "call_0" and calls[1].id == "call_1"
    assert events[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    "reply, exc_type, text",
    [
        (error_reply(500, "boom"), ModelUnavailable, "HTTP 500"),
        (error_reply(429, "slow down"), ModelUnavailable, "rate limiting"),
        (error_reply(401, "bad key"), ModelUnavailable, "credentials"),
        (error_reply(400, "This model's maximum context length is 8192 tokens", code="context_length_exceeded"), ValidationFailed, "too long"),
        (error_reply(400, "filtered", code="content_filter"), ContentFiltered, "content filter"),
    ],
)
def test_sdk_errors_become_ours(fake_openai, reply, exc_type, text):
    fake_openai.push(reply, reply)
    client = client_for(fake_openai)
    with pytest.raises(exc_type) as ei:
        list(client.generate_stream(MSGS))
    assert text in ei.value.detail
    if exc_type is ModelUnavailable:
        assert ei.value.status == 502 and ei.value.provider == "openai"
    with pytest.raises(exc_type):
        client.generate(MSGS)


def test_content_filter_finish_reason_in_stream(fake_openai):
    fake_openai.push(text_reply("partial", finish_reason="content_filter"))
    with pytest.raises(ContentFiltered):
        list(client_for(fake_openai).generate_stream(MSGS))


def test_slow_first_token_times_out_quickly(fake_openai):
    fake_openai.push(text_reply("late", first_delay=3.0))
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable):
        list(client_for(fake_openai, timeout_s=0.3).generate_stream(MSGS))
    assert time.monotonic() - t0 < 2.5  # explicit timeout, not the SDK's 10-minute default


def test_stream_cut_mid_answer_raises_after_partial_text(fake_openai):
    fake_openai.push(text_reply("The price is going to be discussed at length", text_chunk=4, cut_after=3))
    got = []
    with pytest.raises(ModelUnavailable) as ei:
        for ev in client_for(fake_openai).generate_stream(MSGS):
            got.append(ev)
    assert [e.type for e in got] == ["delta", "delta"]
    assert "ended before" in ei.value.detail


def test_retries_are_explicit(fake_openai):
    fake_openai.push(error_reply(429, "slow down"), text_reply("second time lucky"))
    res = client_for(fake_openai, max_retries=1).generate(MSGS)
    assert res.text == "second time lucky" and len(fake_openai.requests) == 2


def test_factory_grok_uses_openai_sdk_with_grok_settings(fake_openai):
    settings = make_settings(models={"provider": "grok", "grok": {"api_key": "xai-key", "base_url": fake_openai.base_url, "max_retries": 0}})
    factory = ModelFactory(settings)
    client = factory.get("grok")
    assert isinstance(client, OpenAIChat) and client.provider == "grok" and factory.get("grok") is client
    fake_openai.push(text_reply("grok says hi"))
    res = client.generate(MSGS)
    assert res.text == "grok says hi" and res.provider == "grok"
    req = fake_openai.requests[0]
    assert req["body"]["model"] == "grok-3-mini" and req["headers"]["authorization"] == "Bearer xai-key"
    assert "xai-key" not in repr(client)
    default = ModelFactory(make_settings(models={"grok": {"api_key": "k"}})).get("grok")
    assert default._base_url == "https://api.x.ai/v1"


def test_factory_compatible_endpoint(fake_openai):
    settings = make_settings(models={"provider": "compatible", "compatible": {"base_url": fake_openai.base_url, "model": "llama3", "max_retries": 0}})
    factory = ModelFactory(settings)
    assert factory.configured_providers() == ["compatible", "offline"]
    fake_openai.push(text_reply("local model"))
    events = list(factory.get("compatible").generate_stream(MSGS))
    assert "".join(e.text for e in events if e.type == "delta") == "local model"
    assert fake_openai.requests[0]["body"]["model"] == "llama3"


def test_factory_azure_openai_with_api_key(fake_openai):
    settings = make_settings(models={"provider": "azure_openai", "azure_openai": {
        "endpoint": fake_openai.root_url, "deployment": "dep1", "api_key": "az-key", "max_retries": 0}})
    factory = ModelFactory(settings)
    client = factory.get("azure_openai")
    assert isinstance(client, AzureOpenAIChat)
    fake_openai.push(text_reply("from azure"))
    events = list(client.generate_stream(MSGS))
    assert "".join(e.text for e in events if e.type == "delta") == "from azure"
    req = fake_openai.requests[0]
    assert req["path"].startswith("/openai/deployments/dep1/chat/completions")
    assert "api-version=2024-10-21" in req["path"] and req["headers"]["api-key"] == "az-key"


def test_closing_the_stream_disconnects_from_the_server(fake_openai):
    fake_openai.push(text_reply("word " * 200, text_chunk=5, chunk_delay=0.02))
    stream = client_for(fake_openai).generate_stream(MSGS)
    first = [next(stream), next(stream)]
    assert all(e.type == "delta" for e in first)
    stream.close()
    assert fake_openai.wait_for_disconnect(timeout=5.0)


def test_openai_settings_helper_points_at_fake(fake_openai):
    factory = ModelFactory(openai_settings(fake_openai))
    assert factory.candidates() == ["openai", "offline"]


def test_azure_entra_id_uses_bearer_token_provider(fake_openai, monkeypatch):
    import azure.identity

    scopes = []

    class FakeCredential:
        pass

    def fake_provider(credential, scope):
        assert isinstance(credential, FakeCredential)
        scopes.append(scope)
        return lambda: "entra-token"

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr(azure.identity, "get_bearer_token_provider", fake_provider)
    client = AzureOpenAIChat(endpoint=fake_openai.root_url, deployment="dep2", api_version="2024-10-21",
                             use_entra_id=True, timeout_s=2.0, max_retries=0)
    fake_openai.push(text_reply("entra ok"))
    assert client.generate(MSGS).text == "entra ok"
    assert scopes == ["https://cognitiveservices.azure.com/.default"]
    assert fake_openai.requests[0]["headers"]["authorization"] == "Bearer entra-token"
