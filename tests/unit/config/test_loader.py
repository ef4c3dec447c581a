"""ConfigLoader: overlays, normalisation, override modes, Key Vault, fail-fast errors."""

from pathlib import Path

import pytest

from shared.config import ConfigLoader, load_settings, normalize_env
from shared.config.keyvault import fetch_keyvault_secrets
from shared.errors import ConfigError

CURSOR_KEY = "k" * 32
PROD = {"APP_ENV": "production", "MONGODB_URI": "mongodb://db.example:27017", "ALPHA_VANTAGE_API_KEY": "av-secret"}


@pytest.mark.parametrize(
    "raw,expected",
    [("dev", "local"), ("development", "local"), ("LOCAL", "local"), ("k8s", "k8s-local"), ("stage", "staging"),
     ("prod", "production"), (None, "local"), ("  Production ", "production")],
)
def test_app_env_is_normalised(raw, expected):
    assert normalize_env(raw) == expected


def test_unknown_app_env_fails_with_one_line_naming_it():
    with pytest.raises(ConfigError) as info:
        load_settings({"APP_ENV": "moon"})
    assert "APP_ENV='moon'" in str(info.value) and "\n" not in str(info.value)


def test_local_overlay_applies_and_all_env_overrides_by_default():
    s = load_settings({"APP_ENV": "dev", "LOG_LEVEL": "DEBUG", "REDIS_PORT": "6390", "CORS_ORIGINS": "http://a, http://b"})
    assert s.app.env == "local"
    assert s.auth.local_dev_api_key.get_secret_value() == "local-dev-key"  # from config.local.yaml
    assert s.app.log_level == "DEBUG" and s.redis.port == 6390
    assert s.http.cors.origins == ["http://a", "http://b"]


def test_production_overlay_and_secrets_only_default():
    s = load_settings({**PROD, "LOG_LEVEL": "DEBUG", "OPENAI_API_KEY": "sk-test-123"})
    assert s.app.env == "production"
    assert s.market.providers["quote"] == ["yahoo", "alpha_vantage"]  # from config.production.yaml
    assert s.app.log_level == "INFO"  # not a secret: ignored in secrets-only mode
    assert s.models.openai.api_key.get_secret_value() == "sk-test-123"
    assert s.mongodb.uri.get_secret_value() == "mongodb://db.example:27017"


def test_override_mode_none_skips_environment():
    s = load_settings({"APP_ENV": "local", "CONFIG_ENV_OVERRIDE_MODE": "none", "LOG_LEVEL": "DEBUG", "OPENAI_API_KEY": "x"})
    assert s.app.log_level == "INFO" and s.models.openai.api_key is None


def test_override_mode_all_in_production_applies_plain_settings():
    s = load_settings({**PROD, "CONFIG_ENV_OVERRIDE_MODE": "all", "LOG_LEVEL": "DEBUG"})
    assert s.app.log_level == "DEBUG"


def test_bad_override_mode_and_bad_values_fail_fast():
    with pytest.raises(ConfigError, match="CONFIG_ENV_OVERRIDE_MODE"):
        load_settings({"CONFIG_ENV_OVERRIDE_MODE": "some"})
    with pytest.raises(ConfigError, match="REDIS_PORT"):
        load_settings({"REDIS_PORT": "six"})
    with pytest.raises(ConfigError, match="REDIS_SSL"):
        load_settings({"REDIS_SSL": "maybe"})


def test_empty_values_count_as_unset():
    s = load_settings({"REDIS_HOST": "", "MONGODB_URI": "", "REDIS_URL": ""})
    assert s.redis.configured is False and s.mongodb.uri is None


def test_market_providers_shorthand_sets_every_data_type():
    s = load_settings({"MARKET_PROVIDERS": "yahoo,offline"})
    assert set(s.market.providers) == {"quote", "history", "fundamentals", "news", "search"}
    assert all(order == ["yahoo", "offline"] for order in s.market.providers.values())


def test_rate_limits_setting_merges_named_groups():
    s = load_settings({"RATE_LIMITS": "market=100000/minute, chat=5/minute"})
    assert s.rate_limits.groups["market"] == "100000/minute" and s.rate_limits.groups["chat"] == "5/minute"
    assert s.rate_limits.groups["write"] == "60/minute"  # not named: as configured
    with pytest.raises(ConfigError, match="RATE_LIMITS"):
        load_settings({"RATE_LIMITS": "market"})


def test_missing_required_secret_in_production_names_it():
    with pytest.raises(ConfigError, match="^MONGODB_URI is required when APP_ENV=production$"):
        load_settings({"APP_ENV": "production", "ALPHA_VANTAGE_API_KEY": "k"})
    with pytest.raises(ConfigError, match="ALPHA_VANTAGE_API_KEY"):
        load_settings({"APP_ENV": "production", "MONGODB_URI": "mongodb://x"})


def test_a_short_cursor_signing_key_is_refused():
    with pytest.raises(ConfigError, match="http.cursor_signing_key"):
        load_settings({**PROD, "CURSOR_SIGNING_KEY": "short"})


def test_local_dev_key_refused_outside_local():
    with pytest.raises(ConfigError, match="LOCAL_DEV_API_KEY"):
        load_settings({**PROD, "LOCAL_DEV_API_KEY": "abc"})


def test_malformed_yaml_names_the_file(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("app: [unclosed\n")
    with pytest.raises(ConfigError, match=r"config.yaml line \d+: malformed YAML"):
        ConfigLoader({}, config_dir=tmp_path).load()


def test_invalid_config_value_names_the_setting(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("redis:\n  port: not-a-port\n")
    with pytest.raises(ConfigError, match="redis.port"):
        ConfigLoader({}, config_dir=tmp_path).load()


def test_secrets_never_in_repr():
    s = load_settings({"OPENAI_API_KEY": "sk-very-secret-value", "MONGODB_URI": "mongodb://u:pw-secret@h/db"})
    text = repr(s) + str(s.model_dump())
    assert "sk-very-secret-value" not in text and "pw-secret" not in text


# ------------------------------------------------------------------ Key Vault through a fake SecretClient


class _Secret:
    def __init__(self, value):
        self.value = value


class ResourceNotFoundError(Exception):
    """Same name as azure.core's: the adapter treats it as a missing secret."""


class FakeSecretClient:
    def __init__(self, secrets=None, down=False):
        self.secrets = secrets or {}
        self.down = down
        self.asked = []

    def get_secret(self, name):
        self.asked.append(name)
        if self.down:
            raise ConnectionError("vault unreachable")
        if name not in self.secrets:
            raise ResourceNotFoundError(name)
        return _Secret(self.secrets[name])


def test_keyvault_secrets_fill_settings():
    fake = FakeSecretClient({"OPENAI-API-KEY": "sk-from-vault", "MONGODB-PASSWORD": "pw", "REDIS-PASSWORD": "rp",
                             "GROK-API-KEY": "g", "ALPHA-VANTAGE-API-KEY": "av", "CURSOR-SIGNING-KEY": CURSOR_KEY})
    env = {"APP_ENV": "production", "MONGODB_URI": "mongodb://db:27017", "USE_AZURE_KEYVAULT": "true",
           "KEYVAULT_NAME": "my-vault"}
    s = ConfigLoader(env, secret_fetcher=lambda url: fake).load()
    assert s.models.openai.api_key.get_secret_value() == "sk-from-vault"
    assert s.mongodb.password.get_secret_value() == "pw"
    assert s.keyvault.vault_url == "https://my-vault.vault.azure.net/"
    assert s.http.cursor_signing_key.get_secret_value() == CURSOR_KEY
    assert sorted(fake.asked) == sorted(["OPENAI-API-KEY", "GROK-API-KEY", "ALPHA-VANTAGE-API-KEY", "REDIS-PASSWORD",
                                         "MONGODB-PASSWORD", "CURSOR-SIGNING-KEY"])


def test_keyvault_one_missing_secret_is_a_warning(caplog):
    fake = FakeSecretClient({"ALPHA-VANTAGE-API-KEY": "av", "CURSOR-SIGNING-KEY": CURSOR_KEY})
    env = {"APP_ENV": "production", "MONGODB_URI": "mongodb://db", "USE_AZURE_KEYVAULT": "true",
           "AZURE_KEYVAULT_URI": "https://v.vault.azure.net/"}
    s = ConfigLoader(env, secret_fetcher=lambda url: fake).load()
    assert s.market.alpha_vantage.api_key.get_secret_value() == "av"
    assert s.models.openai.api_key is None
    assert any("OPENAI-API-KEY not found" in r.getMessage() for r in caplog.records)


def test_keyvault_down_fails_startup_outside_local():
    env = {"APP_ENV": "production", "MONGODB_URI": "mongodb://db", "USE_AZURE_KEYVAULT": "true",
           "AZURE_KEYVAULT_URI": "https://v.vault.azure.net/", "ALPHA_VANTAGE_API_KEY": "a"}
    with pytest.raises(ConfigError, match="^Key Vault v.vault.azure.net is unreachable"):
        ConfigLoader(env, secret_fetcher=lambda url: FakeSecretClient(down=True)).load()


def test_keyvault_down_in_local_continues():
    env = {"APP_ENV": "local", "USE_AZURE_KEYVAULT": "true", "KEYVAULT_NAME": "v"}
    s = ConfigLoader(env, secret_fetcher=lambda url: FakeSecretClient(down=True)).load()
    assert s.app.env == "local"


def test_keyvault_enabled_without_vault_fails():
    with pytest.raises(ConfigError, match="AZURE_KEYVAULT_URI or KEYVAULT_NAME"):
        load_settings({"USE_AZURE_KEYVAULT": "true"})


def test_keyvault_fetches_in_parallel():
    import threading
    import time

    seen = set()

    class Slow(FakeSecretClient):
        def get_secret(self, name):
            seen.add(threading.get_ident())
            time.sleep(0.05)
            return _Secret("v")

    found = fetch_keyvault_secrets("https://v/", ["A", "B", "C", "D"], fetcher=lambda url: Slow())
    assert found == {"A": "v", "B": "v", "C": "v", "D": "v"}
    assert len(seen) > 1


def test_keyvault_that_hangs_fails_within_the_timeout():
    import threading
    import time

    release = threading.Event()

    class Hung(FakeSecretClient):
        def get_secret(self, name):
            release.wait(5)
            return _Secret("late")

    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="^Key Vault v did not answer within 0.3 s$"):
            fetch_keyvault_secrets("https://v/", ["A", "B"], fetcher=lambda url: Hung(), timeout_s=0.3)
        assert time.perf_counter() - started < 1.5
    finally:
        release.set()
