"""Users (admin), the caller's profile and preferences, and API-key management."""

from __future__ import annotations

import logging
from typing import Any, Iterable

from shared.data.repository import check_version
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.schemas.users import (
    ApiKeyCreated, ApiKeyPage, ApiKeyPublic, PreferencesPublic, PreferencesUpdate, ProfilePublic, ProfileUpdate,
    Role, UserCreate, UserCreated, UserPage, UserPublic,
)
from shared.services.base import BaseService
from shared.services.principal import ADMIN, USER
from shared.services.protocols import ApiKeyIssuer

logger = logging.getLogger(__name__)


def _check_version(current: dict[str, Any] | None, expected_version: int | None) -> None:
    check_version((current or {}).get("version", 0), expected_version)


def _save_per_owner(repo: Any, owner_id: str, current: dict[str, Any] | None, changes: dict[str, Any],
                    expected_version: int | None) -> dict[str, Any]:
    """Write the owner's single document with optimistic concurrency.

    Only the client's `expected_version` is a precondition (412); without one a concurrent
    write is Conflict (409). The first save is an insert, so the unique owner index turns two
    racing first saves into 412 (`expected_version` given) or 409 for the loser.
    """
    _check_version(current, expected_version)
    if current is not None:
        return repo.update_one(owner_id, current["id"], changes, expected_version)
    try:
        return repo.insert_one(owner_id, changes)
    except Conflict:
        if expected_version is None:
            raise Conflict("Modified concurrently; reload and retry") from None
        _check_version(repo.get_for_owner(owner_id), expected_version)
        raise


class UserService(BaseService):
    """Per-user data is always keyed by the authenticated caller's id, never by a body field."""

    def __init__(self, *, user_repository: Any, profile_repository: Any, preferences_repository: Any,
                 api_keys: ApiKeyIssuer, watchlist_repository: Any | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._users = user_repository
        self._profiles = profile_repository
        self._preferences = preferences_repository
        self._keys = api_keys
        self._watchlists = watchlist_repository

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(
            required={"user_repository": self._users, "profile_repository": self._profiles,
                      "preferences_repository": self._preferences},
            optional={"watchlist_repository": self._watchlists},
        )

    # ------------------------------------------------------------ users

    def get_user(self, user_id: str) -> UserPublic:
        return UserPublic.model_validate(self._users.get(user_id))

    def get_me(self, user_id: str, roles: Iterable[str]) -> UserPublic:
        """The caller's record with the roles this request holds (an identity provider's app role
        may add `admin` for the request; the stored record is not changed by it)."""
        return self.get_user(user_id).model_copy(update={"roles": sorted(roles)})

    def get_user_by_email(self, email: str) -> UserPublic:
        user = self._users.find_by_email(email)
        if user is None:
            raise NotFound(f"No user with email {email.strip().lower()}")
        return UserPublic.model_validate(user)

    def set_role(self, user_id: str, role: Role) -> UserPublic:
        """Make the user an admin (`admin`) or not (`user`); every instance applies it to the user's next request."""
        user = self._users.update_one(user_id, {"roles": [ADMIN, USER] if role == ADMIN else [USER]})
        self._keys.forget_user(user_id)
        return UserPublic.model_validate(user)

    def set_disabled(self, user_id: str, disabled: bool) -> UserPublic:
        """Refuse (or accept again) every credential of the user, on every instance; their data stays."""
        user = self._users.update_one(user_id, {"disabled": disabled})
        self._keys.forget_user(user_id)
        return UserPublic.model_validate(user)

    def list_users(self, *, limit: int = 20, cursor: str | None = None) -> UserPage:
        items, next_cursor = self._users.find_many(limit=limit, cursor=cursor)
        return UserPage(items=[UserPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_user(self, data: UserCreate) -> UserCreated:
        """Create a user and its first API key; the key's secret is in this result only. Duplicate email -> 409."""
        if self._users.find_by_email(data.email) is not None:
            raise Conflict("A user with this email already exists", extra={"field": "email"})
        user = self._users.insert_one({"email": data.email, "name": data.name or data.email.split("@")[0],
                                       "roles": sorted(set(data.roles) | {"user"})})
        try:
            record, secret = self._keys.create_api_key(user["id"], data.api_key_name)
        except BaseException:
            # A user without a key is unusable and would make the retry a 409: undo the insert.
            try:
                self._users.delete_one(user["id"])
            except Exception:  # noqa: BLE001 - the key failure is the error to report
                logger.exception("could not remove user %s after its API key failed", user["id"])
            raise
        return UserCreated(user=UserPublic.model_validate(user),
                           api_key=ApiKeyCreated.model_validate({**record, "secret": secret}))

    # ------------------------------------------------------------ profile

    def get_profile(self, user_id: str) -> ProfilePublic:
        doc = self._profiles.get_for_owner(user_id)
        return ProfilePublic.model_validate(doc) if doc else ProfilePublic()

    def update_profile(self, user_id: str, data: ProfileUpdate, expected_version: int | None = None) -> ProfilePublic:
        """Partial update; `expected_version` 0 means "not saved yet"."""
        changes = data.changes()
        current = self._profiles.get_for_owner(user_id)
        if current is not None and not changes:
            _check_version(current, expected_version)
            doc = current
        else:
            doc = _save_per_owner(self._profiles, user_id, current, changes, expected_version)
        return ProfilePublic.model_validate(doc)

    # ------------------------------------------------------------ preferences

    def get_preferences(self, user_id: str) -> PreferencesPublic:
        doc = self._preferences.get_for_owner(user_id)
        if not doc:
            return PreferencesPublic()
        return PreferencesPublic.model_validate({**(doc.get("preferences") or {}), "version": doc["version"],
                                                 "updated_at": doc.get("updated_at")})

    def replace_preferences(self, user_id: str, data: PreferencesUpdate,
                            expected_version: int | None = None) -> PreferencesPublic:
        """Replace all preferences; a default watchlist must be one of the caller's (422 otherwise)."""
        if data.default_watchlist_id is not None and self._watchlists is not None:
            try:
                self._watchlists.get(user_id, data.default_watchlist_id)
            except NotFound:
                raise ValidationFailed("Unknown watchlist",
                                       errors={"default_watchlist_id": ["No such watchlist"]}) from None
        current = self._preferences.get_for_owner(user_id)
        changes = {"preferences": data.model_dump(mode="json")}
        doc = _save_per_owner(self._preferences, user_id, current, changes, expected_version)
        return PreferencesPublic.model_validate({**doc["preferences"], "version": doc["version"],
                                                 "updated_at": doc.get("updated_at")})

    # ------------------------------------------------------------ API keys

    def create_api_key(self, user_id: str, name: str) -> ApiKeyCreated:
        record, secret = self._keys.create_api_key(user_id, name)
        return ApiKeyCreated.model_validate({**record, "secret": secret})

    def list_api_keys(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> ApiKeyPage:
        items, next_cursor = self._keys.list_api_keys(user_id, limit=limit, cursor=cursor)
        return ApiKeyPage(items=[ApiKeyPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def get_api_key(self, user_id: str, key_id: str) -> ApiKeyPublic:
        return ApiKeyPublic.model_validate(self._keys.get_api_key(user_id, key_id))

    def revoke_api_key(self, user_id: str, key_id: str) -> None:
        self._keys.revoke_api_key(user_id, key_id)

    def revoke_api_key_by_prefix(self, user_id: str, prefix: str) -> ApiKeyPublic:
        """Revoke the user's one active key whose display prefix starts with `prefix`.

        NotFound when none does; Conflict when several do (a longer prefix tells them apart).
        """
        matches: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            items, cursor = self._keys.list_api_keys(user_id, limit=100, cursor=cursor)
            matches += [k for k in items if prefix and str(k.get("prefix", "")).startswith(prefix)]
            if cursor is None:
                break
        if not matches:
            raise NotFound(f"No active API key with prefix {prefix!r}")
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} active API keys start with {prefix!r}; give more of the prefix")
        self._keys.revoke_api_key(user_id, matches[0]["id"])
        return ApiKeyPublic.model_validate(matches[0])
