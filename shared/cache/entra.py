"""Microsoft Entra ID authentication for Azure Redis (imported only when `redis.use_entra_id` is set).

azure-identity is imported on first use, never at module import of the cache package.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

from redis.credentials import CredentialProvider

REDIS_SCOPE = "https://redis.azure.com/.default"
# Refresh this long before the token expires so new connections never AUTH with a dying token.
_REFRESH_MARGIN_S = 300


def _token_object_id(token: str) -> str | None:
    """The `oid` claim of a JWT (no signature check: we only need the username Azure expects)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload)).get("oid")
    except (IndexError, ValueError):
        return None


class EntraIdCredentialProvider(CredentialProvider):
    """Supplies (username, access token) for each new Redis connection.

    The token is cached and refreshed `_REFRESH_MARGIN_S` before expiry. The username is
    the configured one or the token's object id (what Azure Cache / Managed Redis expect).
    Note: redis-py asks for credentials on connect only; when Azure closes a connection
    whose token expired, the client's single retry reconnects with a fresh token.
    """

    def __init__(self, *, username: str | None = None, credential: Any = None, scope: str = REDIS_SCOPE) -> None:
        self._username = username
        self._credential = credential
        self._scope = scope
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def _get_credential(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential  # heavy: import on first use

            self._credential = DefaultAzureCredential()
        return self._credential

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        with self._lock:
            if self._token is None or time.time() >= self._expires_on - _REFRESH_MARGIN_S:
                access = self._get_credential().get_token(self._scope)
                self._token, self._expires_on = access.token, float(access.expires_on)
            username = self._username or _token_object_id(self._token)
            return (username, self._token) if username else (self._token,)
