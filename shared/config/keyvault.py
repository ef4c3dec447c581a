"""Fetch the app's secrets from Azure Key Vault once per cold start, in parallel.

Vault secret names use dashes (OPENAI-API-KEY); the app's names use underscores.
azure.identity and azure.keyvault are imported only when a vault is actually used.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Iterable, Protocol

from shared.errors import ConfigError

log = logging.getLogger(__name__)


class SecretClientLike(Protocol):
    def get_secret(self, name: str): ...  # returns an object with `.value`


SecretFetcher = Callable[[str], SecretClientLike]


def _azure_secret_client(vault_url: str) -> SecretClientLike:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    return SecretClient(vault_url=vault_url, credential=DefaultAzureCredential())


def vault_name(setting_name: str) -> str:
    return setting_name.replace("_", "-")


def fetch_keyvault_secrets(
    vault_url: str, names: Iterable[str], *, fetcher: SecretFetcher | None = None, timeout_s: float = 10.0
) -> dict[str, str]:
    """Return {SETTING_NAME: value} for each secret found.

    A missing secret is a warning. A vault that cannot be reached (any other error)
    raises `ConfigError` naming the vault host, never the credential.
    """
    client = (fetcher or _azure_secret_client)(vault_url)
    names = list(names)

    def get(name: str) -> tuple[str, str | None, Exception | None]:
        try:
            return name, client.get_secret(vault_name(name)).value, None
        except Exception as exc:  # translated below: the SDK's error types stay in this adapter
            return name, None, exc

    found: dict[str, str] = {}
    pool = ThreadPoolExecutor(max_workers=min(8, len(names) or 1), thread_name_prefix="keyvault")
    futures = [pool.submit(get, name) for name in names]
    done, pending = wait(futures, timeout=timeout_s)
    pool.shutdown(wait=False, cancel_futures=True)  # a hung call must not hold start-up past the timeout
    host = vault_url.split("//")[-1].rstrip("/")
    if pending:
        raise ConfigError(f"Key Vault {host} did not answer within {timeout_s:g} s")
    results = [f.result() for f in futures]
    unreachable = []
    for name, value, exc in results:
        if exc is None and value is not None:
            found[name] = value
        elif exc is not None and type(exc).__name__ == "ResourceNotFoundError":
            log.warning("Key Vault secret %s not found; using configured value if any", vault_name(name))
        elif exc is not None:
            unreachable.append((name, exc))
    if unreachable and len(unreachable) == len(names):
        raise ConfigError(f"Key Vault {host} is unreachable ({type(unreachable[0][1]).__name__})")
    for name, exc in unreachable:
        log.warning("Key Vault secret %s could not be read (%s)", vault_name(name), type(exc).__name__)
    return found
