"""ModelFactory: configuration, provider selection, breaker, describe(), debug prompt logging."""

import json
import logging

import pytest
from ai_fakes import ScriptedModel, make_settings

from shared.ai.factory import ModelFactory
from shared.ai.models.offline import OfflineModel
from shared.errors import ContentFiltered, ModelUnavailable, ValidationFailed

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
    assert openai == {"name": "openai", "configured": True, "model": "gpt-x", "default": True, "healthy": True, "breaker": "closed"}
    assert d[1]["configured"] is False and d[1]["model"] is None
    assert "sk-secret-123" not in json.dumps(d)


def test_open_stream_falls_back_and_breaker_opens():
    now = [0.0]
    failing = ScriptedModel([ModelUnavailable("down", provider="openai")] * 5)
    settings = make_settings(models={"provider": "openai"})
    f = ModelFactory(settings, clients={"openai": failing}, breaker_threshold=2, breaker_cooldown_s=10, clock=lambda: now[0])
    for _ in range(2):
        trace: list = []
        name, _, events = f.open_stream(MSGS, None, f.candidates(), trace)
        list(events)
        assert name == "offline" and trace == [{"provider": "openai", "error": "down"}]
    assert f.breaker_state("openai") == "open" and f.describe()[0]["healthy"] is False
    trace = []
    name, _, events = f.open_stream(MSGS, None, f.candidates(), trace)
    list(events)
    assert name == "offline" and trace[0]["error"].startswith("circuit open") and len(failing.requests) == 2
    now[0] = 11.0
    assert f.breaker_state("openai") == "half_open"


def test_request_errors_do_not_fall_back():
    model = ScriptedModel([ContentFiltered("blocked")])
    f = ModelFactory(make_settings(models={"provider": "openai"}), clients={"openai": model})
    with pytest.raises(ContentFiltered):
        f.open_stream(MSGS, None, f.candidates(), [])


def test_success_resets_breaker():
    model = ScriptedModel([ModelUnavailable("x", provider="openai"), "fine"])
    f = ModelFactory(make_settings(models={"provider": "openai", "allow_fallback": False}), clients={"openai": model}, breaker_threshold=2)
    with pytest.raises(ModelUnavailable):
        f.open_stream(MSGS, None, f.candidates(), [])
    name, _, events = f.open_stream(MSGS, None, f.candidates(), [])
    assert name == "openai" and "".join(e.text for e in events if e.type == "delta") == "fine "
    assert f._breakers["openai"].failures == 0


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
