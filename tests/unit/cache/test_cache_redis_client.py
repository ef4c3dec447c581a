"""How the Redis client is built from settings (no server needed: nothing connects)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest
import redis
from redis.backoff import NoBackoff

from shared.cache import CacheBackend
from shared.cache.backend import build_redis_client, reset_pools, resolve_endpoint
from shared.cache.entra import EntraIdCredentialProvider
from shared.config.models import Settings


@pytest.fixture(autouse=True)
def _fresh_pools():
    reset_pools()
    yield
    reset_pools()


def test_timeouts_and_single_retry_without_backoff():
    client = build_redis_client(Settings.model_validate({"redis": {"host": "127.0.0.1", "port": 6390}}))
    kw = client.connection_pool.connection_kwargs
    assert kw["socket_timeout"] == 0.25 and kw["socket_connect_timeout"] == 0.25
    retry = kw["retry"]
    assert retry.get_retries() == 1
    assert isinstance(retry._backoff, NoBackoff)
    assert client.connection_pool.max_connections == 50


def test_one_pool_per_process_for_the_same_settings():
    settings = Settings.model_validate({"redis": {"url": "redis://127.0.0.1:6391/0"}})
    a, b = CacheBackend.from_config(settings), CacheBackend.from_config(settings)
    assert a.client is not b.client
    assert a.client.connection_pool is b.client.connection_pool
    assert a.mode == "redis"


def test_url_with_tls_and_password_from_settings():
    settings = Settings.model_validate(
        {"redis": {"url": "rediss://cache.example.test:6380/2", "password": "s3cret", "socket_timeout_ms": 400}}
    )
    pool = build_redis_client(settings).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["socket_timeout"] == 0.4


@pytest.mark.parametrize(
    ("host", "port", "ssl", "expected"),
    [
        ("myredis.westeurope.redis.azure.net", 6379, False, (10000, True)),
        ("myredis.redis.cache.windows.net", 6379, False, (6380, True)),
        ("myredis.redis.cache.windows.net", 6390, True, (6390, True)),
        ("localhost", 6379, False, (6379, False)),
    ],
)
def test_azure_endpoints_use_tls_ports(host, port, ssl, expected):
    assert resolve_endpoint(host, port, ssl) == expected


def test_host_settings_for_azure_managed_redis():
    settings = Settings.model_validate({"redis": {"host": "x.eastus.redis.azure.net", "password": "k"}})
    pool = build_redis_client(settings).connection_pool
    assert pool.connection_kwargs["port"] == 10000
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["password"] == "k"


def _jwt(claims: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{body}.sig"


@dataclass
class FakeToken:
    token: str
    expires_on: int


class FakeCredential:
    def __init__(self, lifetime_s: int = 3600) -> None:
        self.calls: list[str] = []
        self.lifetime_s = lifetime_s

    def get_token(self, scope: str) -> FakeToken:
        self.calls.append(scope)
        return FakeToken(_jwt({"oid": "object-id-1", "n": len(self.calls)}), int(time.time()) + self.lifetime_s)


def test_entra_provider_uses_oid_as_username_and_caches_token():
    cred = FakeCredential()
    provider = EntraIdCredentialProvider(credential=cred)
    user, token = provider.get_credentials()
    assert user == "object-id-1" and token.count(".") == 2
    assert provider.get_credentials() == (user, token)
    assert cred.calls == ["https://redis.azure.com/.default"]


def test_entra_provider_refreshes_a_token_close_to_expiry():
    cred = FakeCredential(lifetime_s=60)  # inside the refresh margin
    provider = EntraIdCredentialProvider(credential=cred, username="app-user")
    first = provider.get_credentials()
    second = provider.get_credentials()
    assert first[0] == second[0] == "app-user"
    assert first[1] != second[1] and len(cred.calls) == 2


def test_entra_settings_install_the_credential_provider():
    settings = Settings.model_validate({"redis": {"host": "x.redis.azure.net", "use_entra_id": True}})
    client = build_redis_client(settings, credential=FakeCredential())
    provider = client.connection_pool.connection_kwargs["credential_provider"]
    assert isinstance(provider, EntraIdCredentialProvider)
    assert "password" not in client.connection_pool.connection_kwargs


def test_ssl_setting_upgrades_a_plain_url_and_url_credentials_win():
    settings = Settings.model_validate(
        {"redis": {"url": "redis://:from-url@cache.example.test:6380/0", "password": "from-settings", "ssl": True}}
    )
    pool = build_redis_client(settings).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["password"] == "from-url"
