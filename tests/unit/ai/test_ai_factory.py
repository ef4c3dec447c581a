"""ModelFactory: configuration, provider selection, breaker, describe(), debug prompt logging."""

import json
import logging

import pytest
from ai_fakes import ScriptedModel, make_settings

from shared.ai.factory import ModelFactory, omitted_params
from shared.ai.models.base import ModelEvent
from shared.ai.models.offline import OfflineModel
from shared.errors import ContentFiltered, ModelUnavailable, UpstreamMisconfigured, UpstreamRateLimited, ValidationFailed

MSGS = [{"role": "user", "content": "hi"}]


def test_defaults_only_offline_is_configured():
    f = ModelFactory(make_settings())
    assert f.configured_providers() == ["offline"]
    assert f.resolve() == "offline" and f.candidates() == ["offline"]
    assert isinstance(f.get("offline"), OfflineModel) and f.get("offline") is f.get("offline")


def test_configured_detection():
    f = ModelFactory(make_settings(models={
        "openai": {"api_key": "sk-1"}, "grok": {"api_key": "xai"},
        "azure_openai": {"endpoint": "https://x.openai.azure.com", "deployment": "d", "use_entra_id": True},
        "compatible": {"base_url": "http://127.0.0.1:1/v1"},
    }))
    assert f.configured_providers() == ["openai", "grok", "azure_openai", "compatible", "offline"]
    assert not ModelFactory(make_settings(models={"azure_openai": {"endpoint": "https://x"}})).configured("azure_openai")


def test_selection_order_explicit_then_preference_then_settings():
    f = ModelFactory(make_settings(models={"provider": "grok", "openai": {"api_key": "a"}, "grok": {"api_key": "b"}}))
    assert f.resolve() == "grok"
    assert f.resolve(preference="openai") == "openai"
    assert f.resolve(provider="offline", preference="openai") == "offline"
    assert f.resolve(preference="compatible") == "grok"  # preference not configured: ignored
    assert f.candidates() == ["grok", "openai", "offline"]
    with pytest.raises(ValidationFailed):
        f.resolve(provider="compatible")
    with pytest.raises(ValidationFailed):
        f.resolve(provider="gpt-9")


def test_unconfigured_default_provider_falls_back_to_configured():
    f = ModelFactory(make_settings(models={"provider": "openai"}))
    assert f.resolve() == "offline"


def test_no_fallback_when_disabled():
    f = ModelFactory(make_settings(models={"provider": "openai", "allow_fallback": False, "openai": {"api_key": "a"}}))
    assert f.candidates() == ["openai"]


def test_describe_has_no_secrets_and_marks_default():
    f = ModelFactory(make_settings(models={"provider": "openai", "openai": {"api_key": "sk-secret-123", "model": "gpt-x"}}))
    d = f.describe()
    assert [p["name"] for p in d] == ["openai", "grok", "azure_openai", "compatible", "offline"]
    openai = d[0]
    assert openai == {"name": "openai", "configured": True, "model": "gpt-x", "default": True, "healthy": True, "breaker": "closed",
                      "misconfigured": False}
    assert d[1]["configured"] is False and d[1]["model"] is None
    assert "sk-secret-123" not in json.dumps(d)


def test_open_stream_falls_back_and_breaker_opens_with_the_configured_policy():
    now = [0.0]
    failing = ScriptedModel([ModelUnavailable("down", provider="openai")] * 5)
    settings = make_settings(models={"provider": "openai", "breaker": {"failure_threshold": 2, "cooldown_s": 10}})
    f = ModelFactory(settings, clients={"openai": failing}, clock=lambda: now[0])
    for _ in range(2):
        trace: list = []
        name, _, events = f.open_stream(MSGS, None, f.candidates(), trace)
        list(events)
        assert name == "offline" and trace == [{"provider": "openai", "outcome": "unavailable", "error": "down"}]
    assert f.breaker_state("openai") == "open" and f.describe()[0]["healthy"] is False
    trace = []
    name, _, events = f.open_stream(MSGS, None, f.candidates(), trace)
    list(events)
    assert name == "offline" and trace[0]["outcome"] == "breaker_open" and len(failing.requests) == 2
    assert trace[0]["retry_after"] == 10
    now[0] = 11.0
    assert f.breaker_state("openai") == "half_open"


def test_request_errors_do_not_fall_back():
    model = ScriptedModel([ContentFiltered("blocked")])
    f = ModelFactory(make_settings(models={"provider": "openai"}), clients={"openai": model})
    with pytest.raises(ContentFiltered):
        f.open_stream(MSGS, None, f.candidates(), [])
    assert f.breaker_state("openai") == "closed"


def test_a_success_resets_the_failure_count():
    model = ScriptedModel([ModelUnavailable("x", provider="openai"), "fine", ModelUnavailable("y", provider="openai")])
    settings = make_settings(models={"provider": "openai", "allow_fallback": False, "breaker": {"failure_threshold": 2}})
    f = ModelFactory(settings, clients={"openai": model})
    with pytest.raises(ModelUnavailable):
        f.open_stream(MSGS, None, f.candidates(), [])
    name, _, events = f.open_stream(MSGS, None, f.candidates(), [])
    assert name == "openai" and "".join(e.text for e in events if e.type == "delta") == "fine "
    with pytest.raises(ModelUnavailable):
        f.open_stream(MSGS, None, f.candidates(), [])
    assert f.breaker_state("openai") == "closed"  # two failures, but not consecutive


def test_failure_after_the_first_event_counts_on_the_breaker():
    model = ScriptedModel([[ModelEvent("delta", text="half "), ModelUnavailable("cut", provider="openai")]])
    settings = make_settings(models={"provider": "openai", "breaker": {"failure_threshold": 1}})
    f = ModelFactory(settings, clients={"openai": model})
    name, _, events = f.open_stream(MSGS, None, f.candidates(), [])
    assert name == "openai"
    with pytest.raises(ModelUnavailable):
        list(events)
    assert f.breaker_state("openai") == "open"


def test_misconfigured_provider_is_disabled_and_shown():
    model = ScriptedModel([UpstreamMisconfigured("openai rejected our credentials (HTTP 401)", provider="openai")] * 3)
    f = ModelFactory(make_settings(models={"provider": "openai"}), clients={"openai": model})
    for _ in range(2):
        trace: list = []
        name, _, events = f.open_stream(MSGS, None, f.candidates(), trace)
        list(events)
        assert name == "offline" and trace[0]["outcome"] == "misconfigured"
    assert len(model.requests) == 1  # not called again until the configuration changes (or the re-check)
    described = f.describe()[0]
    assert described["breaker"] == "disabled" and described["misconfigured"] and not described["healthy"]


def test_health_names_misconfigured_providers_and_degrades():
    model = ScriptedModel([UpstreamMisconfigured("openai rejected our credentials (HTTP 401)", provider="openai")])
    f = ModelFactory(make_settings(models={"provider": "openai"}), clients={"openai": model})
    ok, details = f.health()
    assert ok and details["status"] == "healthy" and (details["provider"], details["breaker"]) == ("openai", "closed")
    assert details["misconfigured"] == [] and set(details["providers"]) == {"openai", "offline"}
    list(f.open_stream(MSGS, None, f.candidates(), [])[2])
    ok, details = f.health()
    assert not ok and details["status"] == "degraded" and details["breaker"] == "disabled"
    assert details["misconfigured"] == ["openai"]
    assert details["providers"]["openai"]["last_error"] == "openai rejected our credentials (HTTP 401)"


def test_every_provider_rate_limited_is_rate_limited_with_the_soonest_retry():
    model = ScriptedModel([UpstreamRateLimited("slow down", provider="openai", retry_after=30)])
    f = ModelFactory(make_settings(models={"provider": "openai", "allow_fallback": False}), clients={"openai": model})
    trace: list = []
    with pytest.raises(UpstreamRateLimited) as ei:
        f.open_stream(MSGS, None, f.candidates(), trace)
    assert ei.value.retry_after == 30 and trace[0]["outcome"] == "rate_limited"


def test_a_provider_with_a_fallback_behind_it_is_asked_not_to_retry():
    first, second = ScriptedModel(["one"]), ScriptedModel(["two"], provider="grok")
    f = ModelFactory(make_settings(models={"provider": "openai", "fallback_order": ["openai", "grok"]}),
                     clients={"openai": first, "grok": second})
    f.open_stream(MSGS, None, ["openai", "grok"], [])
    f.open_stream(MSGS, None, ["grok"], [])
    assert first.requests[0]["opts"]["max_retries"] == 0
    assert "max_retries" not in second.requests[0]["opts"]  # the last one left may use its own retries


@pytest.mark.parametrize("model, temperature_sent", [
    ("gpt-4o-mini", True), ("o4-mini", False), ("o3", False), ("gpt-5", False), ("gpt-5-mini-2025-08-07", False),
    ("gpt-5-chat-latest", True), ("grok-4", False), ("grok-3-mini", False), ("grok-4-1-fast-non-reasoning", True),
    ("openai/o3-mini", False), ("llama3.1", True),
])
def test_model_families_decide_whether_temperature_is_sent(model, temperature_sent):
    assert ("temperature" not in omitted_params(model, make_settings().models.families)) is temperature_sent


def test_model_families_are_overridable_by_name():
    families = make_settings(models={"families": {
        "openai-reasoning": {"match": ["o1*"], "omit": ["temperature"]},
        "local-llama": {"match": ["llama*"], "omit": ["temperature", "stream_options"]},
    }}).models.families
    assert omitted_params("o3", families) == frozenset()  # redefined: only o1 now
    assert omitted_params("llama3.1", families) == {"temperature", "stream_options"}
    assert omitted_params("grok-4", families) == {"temperature"}  # defaults not named stay


@pytest.mark.parametrize("env, debug, logged", [("local", True, True), ("production", True, False), ("local", False, False)])
def test_debug_prompt_logged_only_locally(caplog, env, debug, logged):
    f = ModelFactory(make_settings(models={"debug_prompt": debug}, env=env))
    with caplog.at_level(logging.INFO, logger="shared.ai.factory"):
        _, _, events = f.open_stream([{"role": "user", "content": "secret-prompt-text"}], None, ["offline"], [])
        list(events)
    assert ("secret-prompt-text" in caplog.text) is logged


def test_clients_are_created_lazily_once():
    f = ModelFactory(make_settings(models={"openai": {"api_key": "k"}}))
    c = f.get("openai")
    assert c is f.get("openai") and c._client is None  # no SDK client until the first call


def test_importing_the_package_imports_no_sdk():
    import subprocess
    import sys

    code = "import sys, shared.ai, shared.ai.models; print(sorted(m for m in ('openai', 'azure.identity', 'pandas', 'yfinance') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
