"""Key Vault unreachable at cold start: one-line ConfigError outside local; local keeps going."""

from __future__ import annotations

import pytest

from shared.config.loader import ConfigLoader
from shared.errors import ConfigError

pytestmark = pytest.mark.integration

VAULT = "https://stockagent-kv.vault.azure.net/"


class UnreachableVault:
    """A SecretClient whose every call fails like a network error would."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_secret(self, name: str):
        self.asked.append(name)
        raise ConnectionError("Failed to establish a new connection: [Errno 111] credential=SUPERSECRETTOKEN")


def fetcher_for(vault: UnreachableVault):
    def fetch(url: str):
        assert url == VAULT
        return vault

    return fetch


def env(app_env: str) -> dict[str, str]:
    base = {"APP_ENV": app_env, "USE_AZURE_KEYVAULT": "true", "AZURE_KEYVAULT_URI": VAULT}
    if app_env != "local":
        base.update({"MONGODB_URI": "mongodb://db.example:27017", "OPENAI_API_KEY": "sk-from-env-0123456789abcdef",
                     "ALPHA_VANTAGE_API_KEY": "AVFROMENV0123"})
    return base


@pytest.mark.parametrize("app_env", ["production", "staging"])
def test_unreachable_vault_stops_cold_start_with_one_line(app_env):
    vault = UnreachableVault()
    with pytest.raises(ConfigError) as info:
        ConfigLoader(env(app_env), secret_fetcher=fetcher_for(vault)).load()
    message = str(info.value)
    assert "\n" not in message and message
    assert "stockagent-kv.vault.azure.net" in message and "unreachable" in message.lower()
    assert "SUPERSECRETTOKEN" not in message and "sk-from-env" not in message
    assert vault.asked, "the vault was actually asked"


def test_unreachable_vault_in_local_continues_with_local_settings():
    vault = UnreachableVault()
    settings = ConfigLoader(env("local"), secret_fetcher=fetcher_for(vault)).load()
    assert settings.app.env == "local"
    assert vault.asked
    assert settings.models.openai.api_key is None  # nothing invented


def test_missing_secret_is_not_an_outage():
    """A vault that answers "not found" for some secrets is reachable: local env values stay in place."""

    class ResourceNotFoundError(Exception):
        pass

    class PartialVault:
        def get_secret(self, name: str):
            if name == "OPENAI-API-KEY":
                return type("Secret", (), {"value": "sk-from-vault-0123456789abcdef"})()
            raise ResourceNotFoundError(name)

    settings = ConfigLoader(env("production"), secret_fetcher=lambda url: PartialVault()).load()
    assert settings.models.openai.api_key.get_secret_value() == "sk-from-vault-0123456789abcdef"
