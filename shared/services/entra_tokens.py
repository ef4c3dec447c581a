"""Verification of Microsoft Entra ID access tokens (RS256) against the tenant's signing keys.

PyJWT is imported on first use: importing this module costs nothing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from shared import errors

if TYPE_CHECKING:
    from jwt import PyJWK

    from shared.config.models import AuthSettings

log = logging.getLogger(__name__)

# Entra key ids are short base64url strings; anything else is refused before any key lookup.
_KID = re.compile(r"^[A-Za-z0-9_\-+/=.]{1,128}$")
REQUIRED_CLAIMS = ("exp", "iat", "nbf")
FAILED_FETCH_RETRY_S = 5.0  # a failed key fetch is not retried sooner, whatever the traffic


def entra_issuer(auth: "AuthSettings") -> str:
    """The issuer our Entra ID tokens must carry (and the authorization server MCP clients are sent to)."""
    return auth.entra_issuer or f"https://login.microsoftonline.com/{auth.entra_tenant_id}/v2.0"


def _fetch_jwks(url: str) -> Mapping[str, Any]:
    import jwt

    data: Mapping[str, Any] = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=5).fetch_data()
    return data


class EntraTokenVerifier:
    """Callable: token -> verified claims; `Unauthorized` for any token that is not valid for us.

    Guarantees:
    - signature (RS256 only), `aud`, `iss`, and `exp`, `iat`, `nbf` (all three required) are
      checked, with `clock_skew_s` of leeway;
    - a missing, malformed or unknown `kid` is `Unauthorized` (a failed sign-in), never 503;
    - the signing keys are fetched on first use, again after `lifespan_s`, and on an unknown
      `kid` at most once per `refetch_interval_s` (a flood of made-up kids costs one fetch);
      a failed fetch is not retried for `FAILED_FETCH_RETRY_S` after it ended;
    - refreshing expired keys holds up no other caller: one caller fetches, the others verify
      with the expired keys meanwhile;
    - `ServiceUnavailable` (503) only when no keys have ever been fetched and the fetch fails;
      expired keys keep serving while their refresh fails.
    """

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        clock_skew_s: float = 60,
        refetch_interval_s: float = 60,
        lifespan_s: float = 3600,
        fetch: Callable[[str], Mapping[str, Any]] = _fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._skew = clock_skew_s
        self._refetch_interval = refetch_interval_s
        self._lifespan = lifespan_s
        self._fetch_data = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = 0.0
        self._next_fetch = 0.0
        self.fetches = 0  # key-set fetches attempted (health and tests read it)

    @classmethod
    def from_settings(cls, auth: "AuthSettings") -> "EntraTokenVerifier":
        tenant = auth.entra_tenant_id
        return cls(
            jwks_url=auth.entra_jwks_url or f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
            issuer=entra_issuer(auth),
            audience=auth.entra_audience or "",
            clock_skew_s=auth.entra_clock_skew_s,
            refetch_interval_s=auth.entra_jwks_refetch_interval_s,
            lifespan_s=auth.entra_jwks_lifespan_s,
        )

    def __call__(self, token: str) -> Mapping[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.Unauthorized("Invalid bearer token") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise errors.Unauthorized("Invalid bearer token")
        key = self._signing_key(kid)
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=self._audience, issuer=self._issuer,
                leeway=self._skew, options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError:
            raise errors.Unauthorized("Invalid bearer token") from None
        return claims

    def _signing_key(self, kid: str) -> "PyJWK":
        keys = self._keys
        if keys is not None and kid in keys:
            if self._clock() - self._fetched_at >= self._lifespan:
                self._refresh_expired()
                keys = self._keys or keys
            key = keys.get(kid)
            if key is None:  # the refreshed set no longer publishes it
                raise errors.Unauthorized("Invalid bearer token")
            return key  # the common case: no lock
        with self._lock:  # no keys yet, or an unknown kid: one fetch at a time; waiters see its result
            now = self._clock()
            keys = self._keys
            due = keys is None or now - self._fetched_at >= self._lifespan or kid not in keys
            if due and now >= self._next_fetch:
                keys = self._fetch(now) or keys
            if keys is None:
                raise errors.ServiceUnavailable("Identity provider keys unavailable", retry_after=int(FAILED_FETCH_RETRY_S))
            key = keys.get(kid)
            if key is None:
                raise errors.Unauthorized("Invalid bearer token")
            return key

    def _refresh_expired(self) -> None:
        """Fetch expired keys again in this caller unless another caller is already at it: meanwhile the others
        go on verifying with the expired keys instead of each holding a thread while they wait for that fetch."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            now = self._clock()
            if now - self._fetched_at >= self._lifespan and now >= self._next_fetch:
                self._fetch(now)
        finally:
            self._lock.release()

    def _fetch(self, now: float) -> "dict[str, PyJWK] | None":
        import jwt

        self.fetches += 1
        try:
            jwk_set = jwt.PyJWKSet.from_dict(dict(self._fetch_data(self._url)))
            keys = {k.key_id: k for k in jwk_set.keys if k.key_id and k.public_key_use in ("sig", None)}
        except (jwt.PyJWTError, OSError, ValueError, TypeError) as exc:
            # Counted from the end of the failed fetch: a fetch that timed out is not retried at once.
            self._next_fetch = self._clock() + FAILED_FETCH_RETRY_S
            log.warning("Entra ID signing keys could not be fetched (%s)", type(exc).__name__)
            return None
        self._keys, self._fetched_at, self._next_fetch = keys, now, now + self._refetch_interval
        return keys
