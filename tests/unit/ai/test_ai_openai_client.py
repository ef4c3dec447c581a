"""OpenAI / Grok / Azure / compatible adapters through the REAL openai SDK against the local fake server
(only the HTTP peer is fake): wire shapes from tests/fixtures/upstream/openai/, the outage matrix, retries,
timeouts, parameter families and authentication."""

import json

import pytest
from ai_fakes import make_settings, openai_settings
from fake_openai import Reply, error_reply, raw_reply, record_sdk_retry_waits, reset_reply, sse_fixture, text_reply, tool_reply

from shared.ai.factory import ModelFactory
from shared.ai.models.openai_chat import AzureOpenAIChat, OpenAIChat
from shared.ai.tools import tool_definitions
from shared.config.models import ModelClientSettings
from shared.errors import (
    ContentFiltered,
    ModelUnavailable,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    ValidationFailed,
)

MSGS = [{"role": "user", "content": "hi"}]


class Sleeps(list):
    """Records the waits a client asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sdk_sleeps(monkeypatch):
    """Every wait the openai SDK's own retry loop would make (there must be none: max_retries=0)."""
    return record_sdk_retry_waits(monkeypatch)


def client_for(srv, sleep=None, omit=(), **settings) -> OpenAIChat:
    limits = {"first_token_timeout_s": 2.0, "max_retries": 0, **settings}
    return OpenAIChat(provider="openai", model="gpt-test", api_key="test-key", base_url=srv.base_url,
                      settings=ModelClientSettings(**limits), omit=omit, sleep=Sleeps() if sleep is None else sleep)


def events(client, tools=None, **opts):
    return list(client.generate_stream(MSGS, tools, **opts))


def calls_of(evs):
    return [(e.tool_call.id, e.tool_call.name, json.loads(e.tool_call.arguments)) for e in evs if e.type == "tool_call"]


def usages(evs):
    return [e.usage.to_dict() for e in evs if e.type == "usage"]


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


def test_stream_text_deltas_usage_and_finish(fake_openai):
    fake_openai.push(text_reply("Hello there, investor!", text_chunk=3, usage=(9, 6)))
    evs = events(client_for(fake_openai))
    deltas = [e.text for e in evs if e.type == "delta"]
    assert len(deltas) > 3 and "".join(deltas) == "Hello there, investor!"
    assert usages(evs) == [{"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}]
    assert evs[-1].type == "finish" and evs[-1].finish_reason == "stop"
    body = fake_openai.requests[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


# -- wire shapes (tests/fixtures/upstream/openai) --------------------------------------------------


def test_openai_parallel_tool_calls_and_usage_chunk(fake_openai):
    fake_openai.push(sse_fixture("openai_parallel_tool_calls.sse"))
    evs = events(client_for(fake_openai), tool_definitions())
    assert calls_of(evs) == [("call_Q1w9hXe2kTbF0sLpY7cJ3mNa", "get_quote", {"symbol": "AAPL"}),
                             ("call_R8vT2nKd5WqZ1yHmB4xLc6Pe", "get_news", {"symbol": "AAPL", "limit": 3})]
    assert usages(evs) == [{"prompt_tokens": 688, "completion_tokens": 52, "total_tokens": 740}]
    assert evs[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize("fixture, text, usage", [
    ("openai_answer_text.sse", "AAPL trades at 189.84 USD (source: offline).", (951, 12, 963)),
    # vLLM-style servers report cumulative usage on every chunk: the last report is the total, not their sum.
    ("vllm_running_usage.sse", "AAPL closed at 189.84 USD according to the quote.", (812, 13, 825)),
    # Azure's prompt and filter annotation chunks (empty choices, choices without delta) carry no text.
    ("azure_filter_annotations.sse", "Apple (AAPL) last traded at 189.84 USD.", (705, 9, 714)),
])
def test_answer_streams_text_and_one_usage_total(fake_openai, fixture, text, usage):
    fake_openai.push(sse_fixture(fixture))
    evs = events(client_for(fake_openai))
    assert "".join(e.text for e in evs if e.type == "delta") == text
    assert usages(evs) == [dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"), usage))]
    assert evs[-1].finish_reason == "stop"


def test_running_usage_of_a_tool_call_round(fake_openai):
    fake_openai.push(sse_fixture("vllm_tool_call_running_usage.sse"))
    evs = events(client_for(fake_openai), tool_definitions())
    assert calls_of(evs) == [("chatcmpl-tool-5e0c2f7a9b3d4c1e8f6a2b0d7c9e1f34", "get_quote", {"symbol": "AAPL"})]
    assert usages(evs) == [{"prompt_tokens": 812, "completion_tokens": 14, "total_tokens": 826}]


def test_tool_calls_without_index_are_told_apart_by_id(fake_openai):
    fake_openai.push(sse_fixture("index_omitted_parallel_tool_calls.sse"))
    evs = events(client_for(fake_openai), tool_definitions())
    assert calls_of(evs) == [("function-call-5861497011418612391", "get_quote", {"symbol": "AAPL"}),
                             ("function-call-5861497011418612392", "get_quote", {"symbol": "MSFT"})]


def test_stream_tool_call_arguments_split_across_chunks_are_accumulated(fake_openai):
    args1 = {"symbol": "AAPL", "names": ["rsi_14", "sma_20"]}
    fake_openai.push(tool_reply([("get_indicators", args1), ("get_quote", {"symbol": "MSFT"})], args_chunk=3))
    evs = events(client_for(fake_openai), tool_definitions())
    assert calls_of(evs) == [("call_0", "get_indicators", args1), ("call_1", "get_quote", {"symbol": "MSFT"})]
    assert evs[-1].finish_reason == "tool_calls"


def test_azure_filter_stopping_the_answer_is_content_filtered(fake_openai):
    fake_openai.push(sse_fixture("azure_filter_blocked.sse"))
    got = []
    with pytest.raises(ContentFiltered):
        for ev in client_for(fake_openai).generate_stream(MSGS):
            got.append(ev)
    assert "".join(e.text for e in got if e.type == "delta") == "Hey Jude,"


@pytest.mark.parametrize("fixture", ["openai_length_text.sse", "openai_length_tool_call.sse"])
def test_output_limit_is_reported_as_finish_reason_length(fake_openai, fixture):
    fake_openai.push(sse_fixture(fixture))
    assert events(client_for(fake_openai), tool_definitions())[-1].finish_reason == "length"


def test_usage_reported_before_a_cut_is_kept(fake_openai):
    fake_openai.push(sse_fixture("vllm_running_usage.sse", cut_after=5))  # comment block + 4 chunks
    got = []
    with pytest.raises(ModelUnavailable) as ei:
        for ev in client_for(fake_openai).generate_stream(MSGS):
            got.append(ev)
    assert "ended before" in ei.value.detail
    assert usages(got) == [{"prompt_tokens": 812, "completion_tokens": 3, "total_tokens": 815}]


# -- outage matrix: every failure lands in one outcome class ---------------------------------------

OUTAGES = {
    "500": (error_reply(500, "The server had an error"), ModelUnavailable, "HTTP 500"),
    "503 html page": (raw_reply(503, b"<html><body>503 Service Unavailable</body></html>", "text/html"), ModelUnavailable, "HTTP 503"),
    "timeout": (text_reply("too late", first_delay=1.5), ModelUnavailable, "timed out"),
    "connection reset": (reset_reply(), ModelUnavailable, "could not be reached"),
    "429 retry-after": (error_reply(429, "Rate limit reached", code="rate_limit_exceeded", headers={"retry-after": "30"}),
                        UpstreamRateLimited, "rate limiting"),
    "429 no retry-after": (error_reply(429, "Rate limit reached", code="rate_limit_exceeded"), UpstreamRateLimited, "rate limiting"),
    "429 quota": (error_reply(429, "You exceeded your current quota", code="insufficient_quota"), UpstreamMisconfigured, "quota"),
    "empty 200 stream": (raw_reply(200, b"", "text/event-stream"), ModelUnavailable, "ended before"),
    "malformed json": (raw_reply(200, b'data: {"id": "chatcmpl-1", "choices": [{"delta": \n\n', "text/event-stream"),
                       ModelUnavailable, "malformed"),
    "401 invalid key": (error_reply(401, "Incorrect API key provided: sk-abc***xyz.", code="invalid_api_key"),
                        UpstreamMisconfigured, "credentials (HTTP 401)"),
    "403": (error_reply(403, "Project does not have access to model"), UpstreamMisconfigured, "credentials (HTTP 403)"),
    "404 unknown model": (error_reply(404, "The model `gpt-9` does not exist", code="model_not_found"), UpstreamMisconfigured, "HTTP 404"),
    "400 unsupported parameter": (error_reply(400, "Unsupported parameter: 'temperature'", code="unsupported_parameter"),
                                  UpstreamMisconfigured, "models.families"),
    "400 context": (error_reply(400, "This model's maximum context length is 8192 tokens", code="context_length_exceeded"),
                    ValidationFailed, "too long"),
    "400 filtered": (error_reply(400, "filtered", code="content_filter"), ContentFiltered, "content filter"),
}


@pytest.mark.parametrize("name", list(OUTAGES))
def test_outage_matrix_outcome_classes(fake_openai, sdk_sleeps, name):
    reply, exc_type, text = OUTAGES[name]
    fake_openai.push(reply)
    with pytest.raises(exc_type) as ei:
        events(client_for(fake_openai, first_token_timeout_s=0.5, max_retries=1), max_retries=0)
    assert text in ei.value.detail
    assert "sk-abc" not in ei.value.detail  # a server's auth message can echo part of the key
    if isinstance(ei.value, (ModelUnavailable, UpstreamMisconfigured, UpstreamRateLimited)):
        assert ei.value.provider == "openai"
    assert len(fake_openai.requests) == 1 and sdk_sleeps == []


def test_rate_limit_carries_the_upstream_retry_after(fake_openai):
    fake_openai.push(error_reply(429, "slow down", headers={"retry-after": "30"}),
                     error_reply(429, "slow down", headers={"retry-after-ms": "1500"}),
                     error_reply(429, "slow down"))
    client = client_for(fake_openai)
    got = []
    for _ in range(3):
        with pytest.raises(UpstreamRateLimited) as ei:
            events(client)
        got.append(ei.value.retry_after)
    assert got == [30.0, 1.5, None]


# -- retries: never the SDK's, never in front of a fallback, never longer than retry_wait_max_s ----


def test_the_sdk_wait_recorder_sees_the_sdks_own_retries(fake_openai, sdk_sleeps):
    """What the `sdk_sleeps == []` assertions rest on: an SDK client left to retry is seen waiting."""
    from openai import OpenAI

    fake_openai.push(error_reply(429, "slow down", headers={"retry-after": "30"}), text_reply("ok"))
    OpenAI(api_key="k", base_url=fake_openai.base_url, max_retries=1).chat.completions.create(model="m", messages=MSGS)
    assert len(sdk_sleeps) == 1 and len(fake_openai.requests) == 2


def test_transient_failure_is_retried_when_no_fallback_is_left(fake_openai, sdk_sleeps):
    fake_openai.push(error_reply(503, "busy"), text_reply("second time lucky"))
    sleeps = Sleeps()
    res = client_for(fake_openai, sleep=sleeps, max_retries=1).generate(MSGS)
    assert res.text == "second time lucky" and len(fake_openai.requests) == 2
    assert sleeps == [0.25] and sdk_sleeps == []


def test_short_retry_after_is_honoured(fake_openai):
    fake_openai.push(error_reply(429, "slow down", headers={"retry-after": "0.5"}), text_reply("ok now"))
    sleeps = Sleeps()
    assert client_for(fake_openai, sleep=sleeps, max_retries=2).generate(MSGS).text == "ok now"
    assert sleeps == [0.5]


def test_long_retry_after_is_reported_not_waited_for(fake_openai, sdk_sleeps):
    fake_openai.push(error_reply(429, "slow down", headers={"retry-after": "30"}), text_reply("never asked"))
    sleeps = Sleeps()
    with pytest.raises(UpstreamRateLimited) as ei:
        events(client_for(fake_openai, sleep=sleeps, max_retries=3))
    assert ei.value.retry_after == 30.0
    assert len(fake_openai.requests) == 1 and sleeps == [] and sdk_sleeps == []


def test_no_retry_when_a_fallback_follows(fake_openai, sdk_sleeps):
    fake_openai.push(error_reply(500, "boom"), text_reply("never asked"))
    sleeps = Sleeps()
    with pytest.raises(ModelUnavailable):
        events(client_for(fake_openai, sleep=sleeps, max_retries=3), max_retries=0)
    assert len(fake_openai.requests) == 1 and sleeps == [] and sdk_sleeps == []


def test_misconfiguration_is_not_retried(fake_openai):
    fake_openai.push(error_reply(401, "bad key"), text_reply("never asked"))
    with pytest.raises(UpstreamMisconfigured):
        events(client_for(fake_openai, max_retries=3))
    assert len(fake_openai.requests) == 1


# -- timeouts ------------------------------------------------------------------------------------


def test_timeouts_reach_the_sdk_client(fake_openai):
    client = client_for(fake_openai, connect_timeout_s=3.0, first_token_timeout_s=90.0, stream_timeout_s=240.0)
    timeout = client.client.timeout
    assert (timeout.connect, timeout.read) == (3.0, 90.0)
    assert client.client.max_retries == 0


def test_slow_first_token_is_a_timeout(fake_openai):
    fake_openai.push(text_reply("late", first_delay=1.5))
    with pytest.raises(ModelUnavailable) as ei:
        events(client_for(fake_openai, first_token_timeout_s=0.3))
    assert "timed out" in ei.value.detail


def test_answer_longer_than_the_stream_timeout_is_cut(fake_openai):
    fake_openai.push(text_reply("word " * 40, text_chunk=5, chunk_delay=0.02))
    got = []
    with pytest.raises(ModelUnavailable) as ei:
        for ev in client_for(fake_openai, stream_timeout_s=0.1).generate_stream(MSGS):
            got.append(ev)
    assert "did not finish its answer within 0.1 s" in ei.value.detail
    assert 0 < len([e for e in got if e.type == "delta"]) < 40


@pytest.mark.parametrize("kind", ["openai", "azure_openai"])
def test_keep_alive_comments_do_not_stretch_an_answer_past_the_stream_timeout(fake_openai, kind):
    """Servers and proxies send SSE comments while a model thinks (": ping"; OpenRouter's ": OPENROUTER PROCESSING"),
    which the SDK reads and skips: no event reached the client, so it never checked the time, and a server pinging
    for ever held the chat (and its stream slot) for ever. 200 pings over about 4 s, and no data."""
    fake_openai.push(Reply(sse=": ping\n\n" * 200, chunk_delay=0.02))
    limits = ModelClientSettings(first_token_timeout_s=2.0, stream_timeout_s=0.3, max_retries=0)
    client = client_for(fake_openai, stream_timeout_s=0.3) if kind == "openai" else AzureOpenAIChat(
        endpoint=fake_openai.root_url, deployment="dep", api_version="2024-10-21", api_key="k", settings=limits)
    with pytest.raises(ModelUnavailable) as ei:
        events(client)
    assert "did not finish its answer within 0.3 s" in ei.value.detail


def test_stream_cut_mid_answer_raises_after_partial_text(fake_openai):
    fake_openai.push(text_reply("The price is going to be discussed at length", text_chunk=4, cut_after=3))
    got = []
    with pytest.raises(ModelUnavailable) as ei:
        for ev in client_for(fake_openai).generate_stream(MSGS):
            got.append(ev)
    assert [e.type for e in got] == ["delta", "delta"]
    assert "ended before" in ei.value.detail


def test_content_filter_finish_reason_in_stream(fake_openai):
    fake_openai.push(text_reply("partial", finish_reason="content_filter"))
    with pytest.raises(ContentFiltered):
        events(client_for(fake_openai))


# -- parameters per model family -------------------------------------------------------------------


@pytest.mark.parametrize("model, sent", [("o4-mini", False), ("gpt-4o-mini", True), ("gpt-5-chat-latest", True)])
def test_reasoning_models_get_no_temperature(fake_openai, model, sent):
    settings = openai_settings(fake_openai, models={"openai": {"api_key": "k", "base_url": fake_openai.base_url, "model": model,
                                                               "max_retries": 0}})
    fake_openai.push(text_reply("fine"))
    list(ModelFactory(settings).get("openai").generate_stream(MSGS, None, temperature=0.3))
    body = fake_openai.requests[0]["body"]
    assert ("temperature" in body) is sent and body["model"] == model


def test_omitted_parameters_are_never_sent(fake_openai):
    fake_openai.push(text_reply("fine"))
    events(client_for(fake_openai, omit={"tool_choice", "stream_options"}), tool_definitions(["get_quote"]), temperature=0.2)
    body = fake_openai.requests[0]["body"]
    assert "tool_choice" not in body and "stream_options" not in body and body["temperature"] == 0.2


# -- providers and authentication ----------------------------------------------------------------


def test_factory_grok_uses_openai_sdk_with_grok_settings(fake_openai):
    settings = make_settings(models={"provider": "grok", "grok": {"api_key": "xai-key", "base_url": fake_openai.base_url, "max_retries": 0}})
    factory = ModelFactory(settings)
    client = factory.get("grok")
    assert isinstance(client, OpenAIChat) and client.provider == "grok" and factory.get("grok") is client
    fake_openai.push(text_reply("grok says hi"))
    res = client.generate(MSGS, temperature=0.3)
    assert res.text == "grok says hi" and res.provider == "grok"
    req = fake_openai.requests[0]
    assert req["body"]["model"] == "grok-4-1-fast-non-reasoning" and req["headers"]["authorization"] == "Bearer xai-key"
    assert req["body"]["temperature"] == 0.3  # a non-reasoning model
    assert "xai-key" not in repr(client)
    default = ModelFactory(make_settings(models={"grok": {"api_key": "k"}})).get("grok")
    assert default._base_url == "https://api.x.ai/v1"


def test_factory_compatible_endpoint(fake_openai):
    settings = make_settings(models={"provider": "compatible", "compatible": {"base_url": fake_openai.base_url, "model": "llama3", "max_retries": 0}})
    factory = ModelFactory(settings)
    assert factory.configured_providers() == ["compatible", "offline"]
    fake_openai.push(text_reply("local model"))
    evs = events(factory.get("compatible"))
    assert "".join(e.text for e in evs if e.type == "delta") == "local model"
    assert fake_openai.requests[0]["body"]["model"] == "llama3"


def test_factory_azure_openai_with_api_key(fake_openai):
    settings = make_settings(models={"provider": "azure_openai", "azure_openai": {
        "endpoint": fake_openai.root_url, "deployment": "dep1", "api_key": "az-key", "max_retries": 0}})
    client = ModelFactory(settings).get("azure_openai")
    assert isinstance(client, AzureOpenAIChat)
    fake_openai.push(text_reply("from azure"))
    assert "".join(e.text for e in events(client) if e.type == "delta") == "from azure"
    req = fake_openai.requests[0]
    assert req["path"].startswith("/openai/deployments/dep1/chat/completions")
    assert "api-version=2024-10-21" in req["path"] and req["headers"]["api-key"] == "az-key"


def test_factory_azure_openai_v1_endpoint_uses_the_plain_client(fake_openai):
    settings = make_settings(models={"provider": "azure_openai", "azure_openai": {
        "endpoint": f"{fake_openai.root_url}/openai/v1/", "deployment": "my-o4", "model": "o4-mini", "api_key": "az-key",
        "max_retries": 0}})
    client = ModelFactory(settings).get("azure_openai")
    assert type(client) is OpenAIChat and client.provider == "azure_openai"
    fake_openai.push(text_reply("from azure v1"))
    events(client, temperature=0.3)
    req = fake_openai.requests[0]
    assert req["path"] == "/openai/v1/chat/completions"  # no api-version, no deployment in the path
    assert req["headers"]["authorization"] == "Bearer az-key"
    assert req["body"]["model"] == "my-o4" and "temperature" not in req["body"]  # family of the served model


@pytest.fixture
def entra(monkeypatch):
    """azure.identity with a fake credential; records the scopes asked for and hands out numbered tokens."""
    import azure.identity

    scopes: list[str] = []
    issued = iter(range(1, 100))

    class FakeCredential:
        pass

    def fake_provider(credential, scope):
        assert isinstance(credential, FakeCredential)
        scopes.append(scope)
        return lambda: f"entra-token-{next(issued)}"

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr(azure.identity, "get_bearer_token_provider", fake_provider)
    return scopes


def test_azure_entra_id_uses_bearer_token_provider(fake_openai, entra):
    client = AzureOpenAIChat(endpoint=fake_openai.root_url, deployment="dep2", api_version="2024-10-21",
                             use_entra_id=True, settings=ModelClientSettings(max_retries=0))
    fake_openai.push(text_reply("entra ok"))
    assert client.generate(MSGS).text == "entra ok"
    assert entra == ["https://cognitiveservices.azure.com/.default"]
    assert fake_openai.requests[0]["headers"]["authorization"] == "Bearer entra-token-1"
    assert "api-key" not in fake_openai.requests[0]["headers"]


def test_azure_v1_endpoint_with_entra_id_refreshes_the_token(fake_openai, entra):
    settings = make_settings(models={"provider": "azure_openai", "azure_openai": {
        "endpoint": f"{fake_openai.root_url}/openai/v1", "deployment": "dep3", "use_entra_id": True, "max_retries": 0}})
    client = ModelFactory(settings).get("azure_openai")
    fake_openai.push(text_reply("one"), text_reply("two"))
    events(client)
    events(client)
    assert entra == ["https://cognitiveservices.azure.com/.default"]
    assert [r["headers"]["authorization"] for r in fake_openai.requests] == ["Bearer entra-token-1", "Bearer entra-token-2"]


def test_compatible_endpoint_with_entra_id(fake_openai, entra):
    settings = make_settings(models={"provider": "compatible", "compatible": {
        "base_url": fake_openai.base_url, "model": "Phi-4", "use_entra_id": True, "entra_scope": "https://ml.azure.com/.default",
        "max_retries": 0}})
    fake_openai.push(text_reply("from foundry"))
    events(ModelFactory(settings).get("compatible"))
    assert entra == ["https://ml.azure.com/.default"]
    assert fake_openai.requests[0]["headers"]["authorization"] == "Bearer entra-token-1"


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
