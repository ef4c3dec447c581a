"""Authentication: API keys, Microsoft Entra ID bearer tokens, App Service Authentication (Easy Auth).

API keys are random (32 bytes), shown once, stored only as a SHA-256 hash with a display
prefix. Resolved principals are kept in a small in-process TTL cache so a request does not
pay a database round trip for its key. Revoking a key (or disabling a user, changing a
role) drops it here at once and is published through the cache's Redis pub/sub, so every
instance drops it at once while Redis is up; when it is not, `PRINCIPAL_TTL_S` bounds how
long another instance may still accept it.

Roles: a user's stored roles, plus `admin` for the request when an Entra ID token (or an
Easy Auth principal) carries the configured app role (`auth.entra_admin_role`). The token
never changes the stored user, except once at creation: a first-seen principal whose
verified email is in `auth.admin_emails` is created as admin (bootstrap, logged).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Any, Callable, Iterable, Mapping

from shared import errors
from shared.config import Settings
from shared.data.schema import LINE_TEXT
from shared.schemas.common import MAX_NAME
from shared.schemas.users import EMAIL_PATTERN
from shared.services.base import BaseService
from shared.services.principal import ADMIN, USER, Principal

KEY_PREFIX = "sak_"
PRINCIPAL_TTL_S = 30.0
LAST_USED_EVERY_S = 60.0
REVOCATIONS_CHANNEL = "auth-revocations"  # messages: "key:<key id>" | "user:<user id>"

# Easy Auth claim types (App Service forwards the identity provider's claims under these names).
_EA_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_EA_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
_EA_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_EA_ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
_TRUE = (True, 1, "true", "True", "1")


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
        roles=frozenset(user.get("roles") or [USER]),
        auth_method=method,
    )


def _strings(value: Any) -> list[str]:
    """A claim that may be one string or a list of them, as a list of its strings."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def verified_email(first: Callable[[str], Any]) -> str | None:
    """The email an identity provider vouches for, from a claim lookup (`first(name)`), else None.

    `upn` (Entra ID: always in one of the tenant's verified domains; guests get an #EXT# upn);
    `email` only when flagged verified (`email_verified` of Google and others, Entra ID's
    `xms_edov`); Entra ID's optional `verified_primary_email`. Never `preferred_username`,
    which the user or another tenant may control.
    """
    upn = first("upn")
    if isinstance(upn, str) and "@" in upn and "#EXT#" not in upn:
        return upn.strip().lower()
    email = first("email")
    if isinstance(email, str) and "@" in email and (first("email_verified") in _TRUE or first("xms_edov") in _TRUE):
        return email.strip().lower()
    primary = _strings(first("verified_primary_email"))
    return primary[0].strip().lower() if primary and "@" in primary[0] else None


def _as_name(value: Any) -> str | None:
    """`value` as a name the API would accept (one line of visible text, at most MAX_NAME characters), else None."""
    if not isinstance(value, str):
        return None
    value = value[:MAX_NAME]
    return value if re.fullmatch(LINE_TEXT, value) else None


def _as_email(value: Any) -> str | None:
    """`value` as an email the API would accept (lower-cased), else None."""
    return value.lower() if isinstance(value, str) and len(value) <= 320 and re.fullmatch(EMAIL_PATTERN, value) else None


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
    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self._clock = clock

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] < self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[1]

    def put(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._data[key] = (self._clock() + ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def drop_where(self, predicate: Callable[[Any], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, v) in self._data.items() if predicate(v)]:
                del self._data[key]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class AuthService(BaseService):
    def __init__(
        self,
        *,
        settings: Settings,
        user_repository: Any,
        api_key_repository: Any,
        executor: Executor | None = None,
        jwt_verifier: Callable[[str], Mapping[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._settings = settings
        self._users = user_repository
        self._keys = api_key_repository
        self._executor = executor
        self._clock = clock
        self._principals = _TTLCache(clock=clock)
        self._last_used: dict[str, float] = {}
        self._jwt_verifier = jwt_verifier
        self._admin_role = settings.auth.entra_admin_role
        self._admin_emails = frozenset(e.strip().lower() for e in settings.auth.admin_emails if e.strip())
        # Bumped by every drop: a principal looked up before a drop is not cached after it (see _remember).
        self._epoch = 0
        self._cache_lock = threading.Lock()
        self._subscription: Any = None
        self._listen_lock = threading.Lock()

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
        self._listen()
        epoch = self._epoch
        record = self._keys.find_by_hash(digest)
        if record is None:
            raise errors.Unauthorized("Invalid or revoked API key")
        user = _active(self._users.find_one({"id": record["owner_id"]}), "Invalid or revoked API key")
        principal = principal_from(user, "api_key")
        self._remember(digest, principal, record["id"], epoch)
        self._touch(digest, record["id"])
        return principal

    def _touch(self, digest: str, key_id: str) -> None:
        """Record last use at most once a minute per key, off the request path."""
        now = self._clock()
        # Never used: due now (a monotonic clock may read under a minute just after boot).
        if now - self._last_used.get(digest, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
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
        if not auth.entra_configured:
            raise errors.Unauthorized("Bearer tokens are not accepted here; use an API key")
        if self._jwt_verifier is None:
            from shared.services.entra_tokens import EntraTokenVerifier

            self._jwt_verifier = EntraTokenVerifier.from_settings(auth)
        claims = self._jwt_verifier(token)
        subject = claims.get("oid") or claims.get("sub")
        if not subject or not isinstance(subject, str):
            raise errors.Unauthorized("Token has no subject")
        email = claims.get("preferred_username") or claims.get("email") or claims.get("upn")
        return self._principal_for_external(
            "entra", subject, email if isinstance(email, str) else None, claims.get("name"),
            verified=verified_email(claims.get), token_roles=_strings(claims.get("roles")),
        )

    def _authenticate_easy_auth(self, encoded: str) -> Principal:
        try:
            data = json.loads(base64.b64decode(encoded, validate=False))
            if not isinstance(data, dict) or not isinstance(data.get("claims", []), list):
                raise TypeError("not a client principal")
            claims: dict[str, list[str]] = {}
            for claim in data.get("claims", []):  # a claim type may repeat (one entry per role)
                claims.setdefault(str(claim["typ"]), []).append(str(claim["val"]))
        except (ValueError, KeyError, TypeError):
            raise errors.Unauthorized("Malformed X-MS-CLIENT-PRINCIPAL") from None

        def first(*types: str) -> str | None:
            return next((claims[t][0] for t in types if claims.get(t)), None)

        subject = first(_EA_OID, "oid") or data.get("userId")
        if not subject or not isinstance(subject, str):
            raise errors.Unauthorized("Client principal has no subject")
        email = first("preferred_username", _EA_EMAIL)
        aliases = {"upn": ("upn", _EA_UPN), "email": ("email", _EA_EMAIL)}
        role_types = {str(data.get("role_typ") or _EA_ROLE), _EA_ROLE, "roles"}
        return self._principal_for_external(
            "easyauth", subject, email, first("name"),
            verified=verified_email(lambda name: first(*aliases.get(name, (name,)))),
            token_roles=[role for t in role_types for role in claims.get(t, [])],
        )

    def _principal_for_external(self, provider: str, subject: str, email: str | None, name: Any, *,
                                verified: str | None, token_roles: Iterable[str]) -> Principal:
        """The stored user of an external identity (created when first seen), with the token's role applied."""
        cache_key = f"{provider}:{subject}"
        cached = self._principals.get(cache_key)
        if cached is not None:
            principal: Principal = cached[0]
        else:
            self._listen()
            epoch = self._epoch
            user = self._users.find_one({"external_id": cache_key})
            if user is None:
                user = self._create_external_user(provider, subject, cache_key, email, name, verified)
            principal = principal_from(_active(user, "This account is disabled"), provider)
            self._remember(cache_key, principal, None, epoch)
        if self._admin_role in token_roles and not principal.is_admin:
            # The token's app role applies to this request only; the stored user is unchanged.
            principal = dataclasses.replace(principal, roles=principal.roles | {ADMIN})
        return principal

    def _create_external_user(self, provider: str, subject: str, external_id: str, email: str | None, name: Any,
                              verified: str | None) -> dict[str, Any]:
        bootstrap = verified is not None and verified in self._admin_emails
        # The token's claims were never validated as a request body is: keep the same rules as the API's names
        # and emails (what admins see must read as it is), or a neutral stand-in.
        address = _as_email(email) or f"{subject}@{provider}.invalid".lower()
        try:
            user: dict[str, Any] = self._users.insert_one({
                "email": address,
                "name": _as_name(name) or _as_name(address) or subject,
                "roles": [ADMIN, USER] if bootstrap else [USER],
                "external_id": external_id,
            })
        except errors.Conflict:
            # Only the same identity created concurrently may be taken. An existing account with this
            # email is never adopted: the token's email claim does not prove ownership of that account.
            found = self._users.find_one({"external_id": external_id})
            if found is None:
                raise errors.Unauthorized("An account with this email already exists; sign in with its API key") from None
            return found
        if bootstrap:
            self.logger.warning("bootstrap admin: first-seen %s principal %s (verified email %s) created as admin "
                                "because ADMIN_EMAILS lists it", provider, user["id"], verified)
        return user

    # ------------------------------------------------------------ the principal cache and revocation

    def _remember(self, cache_key: str, principal: Principal, key_id: str | None, epoch: int) -> None:
        """Cache a principal resolved from a lookup that started at `epoch`, unless a drop happened since
        (the lookup may have read a key or user that is revoked by now)."""
        with self._cache_lock:
            if self._epoch == epoch:
                self._principals.put(cache_key, (principal, key_id), PRINCIPAL_TTL_S)

    def _drop(self, predicate: Callable[[tuple[Principal, str | None]], bool]) -> None:
        with self._cache_lock:
            self._epoch += 1
            self._principals.drop_where(predicate)

    def _drop_all(self) -> None:
        with self._cache_lock:
            self._epoch += 1
            self._principals.clear()

    def _on_revocation(self, message: str) -> None:
        kind, _, ident = message.partition(":")
        if kind == "key":
            self._drop(lambda v: v[1] == ident)
        elif kind == "user":
            self._drop(lambda v: v[0].id == ident)
        else:
            self.logger.warning("ignoring unknown revocation message %r", message[:64])

    def _listen(self) -> None:
        """Subscribe to revocations from other instances once, before the first principal is looked up.

        A (re)subscription drops the whole cache: revocations published while this instance
        was not listening are lost, and the cache cannot tell which entries they concerned.
        """
        if self._subscription is not None or self.cache is None or not hasattr(self.cache, "subscribe"):
            return
        with self._listen_lock:
            if self._subscription is None:
                self._subscription = self.cache.subscribe(REVOCATIONS_CHANNEL, self._on_revocation, self._drop_all) or False

    def _broadcast(self, message: str) -> None:
        if self.cache is not None and hasattr(self.cache, "publish") and self.cache.redis_configured:
            if not self.cache.publish(REVOCATIONS_CHANNEL, message):
                self.logger.warning("revocation not broadcast (cache unavailable): other instances apply it "
                                    "within %.0f s", PRINCIPAL_TTL_S)

    def forget_user(self, user_id: str) -> None:
        """Drop the user's cached sign-ins here and on every instance (after a role change or disabling)."""
        self._drop(lambda v: v[0].id == user_id)
        self._broadcast(f"user:{user_id}")

    # ------------------------------------------------------------ key management

    def create_api_key(self, user_id: str, name: str) -> tuple[dict[str, Any], str]:
        """Create a key for `user_id`; the secret is returned here once and never stored."""
        key = new_api_key()
        record = self._keys.insert_one(user_id, {"name": name, "key_hash": hash_key(key), "prefix": display_prefix(key)})
        return record, key

    def list_api_keys(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        return self._keys.find_many(user_id, {"revoked_at": None}, limit=limit, cursor=cursor)

    def get_api_key(self, user_id: str, key_id: str) -> dict[str, Any]:
        """One of the user's active keys (its record: never the secret); NotFound when revoked, missing or another's."""
        record = self._keys.get(user_id, key_id)
        if record.get("revoked_at"):
            raise errors.NotFound("API key not found")
        return record

    def revoke_api_key(self, user_id: str, key_id: str) -> None:
        """Revoke the user's key: refused from now on here, and on every instance at once while Redis is up."""
        self.get_api_key(user_id, key_id)  # NotFound for another user's, a missing or an already revoked key
        self._keys.revoke(user_id, key_id)
        self._drop(lambda v: v[1] == key_id)
        self._broadcast(f"key:{key_id}")

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
