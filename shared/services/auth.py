"""Authentication: API keys, Microsoft Entra ID bearer tokens, App Service Authentication (Easy Auth).

API keys are random (32 bytes), shown once, stored only as a SHA-256 hash with a display
prefix. Resolved principals are kept in a small in-process TTL cache so a request does not
pay a database round trip for its key; revoking a key clears it here at once and other
instances within `PRINCIPAL_TTL_S`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Any, Callable, Mapping

from shared import errors
from shared.config import Settings
from shared.http.api import Principal
from shared.services.base import BaseService

KEY_PREFIX = "sak_"
PRINCIPAL_TTL_S = 30.0
LAST_USED_EVERY_S = 60.0


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(key: str) -> str:
    return key[:12]


def principal_from(user: Mapping[str, Any], method: str) -> Principal:
    return Principal(
        id=str(user["id"]),
        email=user.get("email"),
        name=user.get("name"),
        roles=frozenset(user.get("roles") or ["user"]),
        auth_method=method,
    )


def _api_key_from(headers: Mapping[str, str]) -> str | None:
    """The API key of `X-API-Key`, or of `Authorization: Bearer <key>` when the token is not a JWT."""
    key = headers.get("x-api-key")
    if key is None:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token and not (token.count(".") == 2 and not token.startswith(KEY_PREFIX)):
            key = token
    return key.strip() if key is not None else None


def _active(user: Mapping[str, Any] | None, detail: str) -> Mapping[str, Any]:
    """The user when it exists and is not disabled; Unauthorized otherwise (same answer for both)."""
    if user is None or user.get("disabled"):
        raise errors.Unauthorized(detail)
    return user


class _TTLCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[1]

    def put(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def drop_where(self, predicate: Callable[[Any], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, v) in self._data.items() if predicate(v)]:
                del self._data[key]


class AuthService(BaseService):
    def __init__(
        self,
        *,
        settings: Settings,
        user_repository: Any,
        api_key_repository: Any,
        executor: Executor | None = None,
        jwt_verifier: Callable[[str], Mapping[str, Any]] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._settings = settings
        self._users = user_repository
        self._keys = api_key_repository
        self._executor = executor
        self._principals = _TTLCache()
        self._last_used: dict[str, float] = {}
        self._jwt_verifier = jwt_verifier

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"users": self._users, "api_keys": self._keys})

    # ------------------------------------------------------------ request authentication

    def has_credentials(self, headers: Mapping[str, str]) -> bool:
        return bool(
            headers.get("authorization")
            or headers.get("x-api-key")
            or (self._settings.auth.easy_auth_enabled and headers.get("x-ms-client-principal"))
        )

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Resolve the caller from API key, bearer token or Easy Auth; Unauthorized otherwise."""
        authz = headers.get("authorization")
        if headers.get("x-api-key") is None and authz:
            scheme, _, token = authz.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise errors.Unauthorized("Authorization must be 'Bearer <api key or token>'")
            token = token.strip()
            if token.count(".") == 2 and not token.startswith(KEY_PREFIX):
                return self._authenticate_jwt(token)
        api_key = _api_key_from(headers)
        if api_key is not None:
            return self._authenticate_key(api_key)
        if self._settings.auth.easy_auth_enabled and headers.get("x-ms-client-principal"):
            return self._authenticate_easy_auth(headers["x-ms-client-principal"])
        raise errors.Unauthorized("Missing API key or bearer token")

    def cached_principal(self, headers: Mapping[str, str]) -> Principal | None:
        """The caller when their API key was resolved recently (in-process, no I/O), else None."""
        key = _api_key_from(headers)
        return self._cached_key_principal(hash_key(key)) if key and len(key) <= 256 else None

    def _cached_key_principal(self, digest: str) -> Principal | None:
        cached = self._principals.get(digest)
        if cached is None:
            return None
        self._touch(digest, cached[1])
        return cached[0]

    def _authenticate_key(self, key: str) -> Principal:
        if not key or len(key) > 256:
            raise errors.Unauthorized("Invalid API key")
        digest = hash_key(key)
        cached = self._cached_key_principal(digest)
        if cached is not None:
            return cached
        record = self._keys.find_by_hash(digest)
        if record is None:
            raise errors.Unauthorized("Invalid or revoked API key")
        user = _active(self._users.find_one({"id": record["owner_id"]}), "Invalid or revoked API key")
        principal = principal_from(user, "api_key")
        self._principals.put(digest, (principal, record["id"]), PRINCIPAL_TTL_S)
        self._touch(digest, record["id"])
        return principal

    def _touch(self, digest: str, key_id: str) -> None:
        """Record last use at most once a minute per key, off the request path."""
        now = time.monotonic()
        if now - self._last_used.get(digest, 0.0) < LAST_USED_EVERY_S:
            return
        self._last_used[digest] = now

        def write() -> None:
            try:
                self._keys.touch_last_used(key_id, self._utc_now())
            except Exception:  # bookkeeping must never fail a request
                self.logger.warning("could not record API key use", exc_info=True)

        if self._executor is not None:
            self._executor.submit(write)
        else:
            write()

    def _authenticate_jwt(self, token: str) -> Principal:
        auth = self._settings.auth
        if not (auth.entra_tenant_id and auth.entra_audience):
            raise errors.Unauthorized("Bearer tokens are not accepted here; use an API key")
        claims = (self._jwt_verifier or self._verify_entra)(token)
        subject = claims.get("oid") or claims.get("sub")
        if not subject:
            raise errors.Unauthorized("Token has no subject")
        email = claims.get("preferred_username") or claims.get("email") or claims.get("upn")
        return self._principal_for_external("entra", str(subject), email, claims.get("name"))

    def _verify_entra(self, token: str) -> Mapping[str, Any]:
        import jwt  # PyJWT: only needed when Entra ID is configured

        auth = self._settings.auth
        issuer = auth.entra_issuer or f"https://login.microsoftonline.com/{auth.entra_tenant_id}/v2.0"
        jwks_url = auth.entra_jwks_url or f"https://login.microsoftonline.com/{auth.entra_tenant_id}/discovery/v2.0/keys"
        if not hasattr(self, "_jwks"):
            self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=5)
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            return jwt.decode(token, key.key, algorithms=["RS256"], audience=auth.entra_audience, issuer=issuer)
        except jwt.PyJWKClientError:
            raise errors.ServiceUnavailable("Identity provider keys unavailable", retry_after=5) from None
        except jwt.PyJWTError:
            raise errors.Unauthorized("Invalid bearer token") from None

    def _authenticate_easy_auth(self, encoded: str) -> Principal:
        try:
            data = json.loads(base64.b64decode(encoded, validate=False))
            if not isinstance(data, dict) or not isinstance(data.get("claims", []), list):
                raise TypeError("not a client principal")
            claims = {c["typ"]: c["val"] for c in data.get("claims", [])}
        except (ValueError, KeyError, TypeError):
            raise errors.Unauthorized("Malformed X-MS-CLIENT-PRINCIPAL") from None
        subject = claims.get("http://schemas.microsoft.com/identity/claims/objectidentifier") or claims.get("oid") or data.get("userId")
        if not subject:
            raise errors.Unauthorized("Client principal has no subject")
        email = claims.get("preferred_username") or claims.get("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
        return self._principal_for_external("easyauth", str(subject), email, claims.get("name"))

    def _principal_for_external(self, provider: str, subject: str, email: str | None, name: str | None) -> Principal:
        cache_key = f"{provider}:{subject}"
        cached = self._principals.get(cache_key)
        if cached is not None:
            return cached[0]
        user = self._users.find_one({"external_id": cache_key})
        if user is None:  # a first-seen principal gets a user record
            try:
                user = self._users.insert_one({
                    "email": (email or f"{subject}@{provider}.invalid").lower(),
                    "name": name or email or subject,
                    "roles": ["user"],
                    "external_id": cache_key,
                })
            except errors.Conflict:
                # Only the same identity created concurrently may be taken. An existing account with this
                # email is never adopted: the token's email claim does not prove ownership of that account.
                user = self._users.find_one({"external_id": cache_key})
                if user is None:
                    raise errors.Unauthorized(
                        "An account with this email already exists; sign in with its API key"
                    ) from None
        principal = principal_from(_active(user, "This account is disabled"), provider)
        self._principals.put(cache_key, (principal, None), PRINCIPAL_TTL_S)
        return principal

    # ------------------------------------------------------------ key management

    def create_api_key(self, user_id: str, name: str) -> tuple[dict[str, Any], str]:
        """Create a key for `user_id`; the secret is returned here once and never stored."""
        key = new_api_key()
        record = self._keys.insert_one(user_id, {"name": name, "key_hash": hash_key(key), "prefix": display_prefix(key)})
        return record, key

    def list_api_keys(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        return self._keys.find_many(user_id, {"revoked_at": None}, limit=limit, cursor=cursor)

    def revoke_api_key(self, user_id: str, key_id: str) -> None:
        record = self._keys.get(user_id, key_id)  # NotFound for another user's key
        if record.get("revoked_at"):
            raise errors.NotFound("API key not found")
        self._keys.revoke(user_id, key_id)
        self._principals.drop_where(lambda v: v[1] == key_id)

    # ------------------------------------------------------------ local development

    def seed_local_admin(self) -> dict[str, Any] | None:
        """With APP_ENV=local, make sure the demo admin exists and owns LOCAL_DEV_API_KEY."""
        secret = self._settings.auth.local_dev_api_key
        if not self._settings.is_local or secret is None:
            return None
        key = secret.get_secret_value()
        user = self._users.find_by_email("admin@localhost")
        if user is None:
            try:
                user = self._users.insert_one({"email": "admin@localhost", "name": "Local admin", "roles": ["admin", "user"]})
            except errors.Conflict:  # another worker seeded it first
                user = self._users.find_by_email("admin@localhost")
        digest = hash_key(key)
        if self._keys.find_by_hash(digest, include_revoked=True) is None:
            try:
                self._keys.insert_one(user["id"], {"name": "local development", "key_hash": digest, "prefix": display_prefix(key)})
            except errors.Conflict:  # seeded concurrently
                pass
        return user
