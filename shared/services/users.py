"""Users (admin), the caller's profile and preferences, and API-key management."""

from __future__ import annotations

from typing import Any

from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from shared.schemas.users import (
    ApiKeyCreated, ApiKeyPage, ApiKeyPublic, PreferencesPublic, PreferencesUpdate, ProfilePublic, ProfileUpdate,
    UserCreate, UserCreated, UserPage, UserPublic,
)
from shared.services.base import BaseService
from shared.services.protocols import ApiKeyIssuer


def _check_version(current: dict[str, Any] | None, expected_version: int | None) -> None:
    version = (current or {}).get("version", 0)
    if expected_version is not None and version != expected_version:
        raise PreconditionFailed(f"Resource is at version {version}, not {expected_version}",
                                 extra={"current_version": version})


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

    def list_users(self, *, limit: int = 20, cursor: str | None = None) -> UserPage:
        items, next_cursor = self._users.find_many(limit=limit, cursor=cursor)
        return UserPage(items=[UserPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_user(self, data: UserCreate) -> UserCreated:
        """Create a user and its first API key; the key's secret is in this result only. Duplicate email -> 409."""
        if self._users.find_by_email(data.email) is not None:
            raise Conflict("A user with this email already exists", extra={"field": "email"})
        user = self._users.insert_one({"email": data.email, "name": data.name or data.email.split("@")[0],
                                       "roles": sorted(set(data.roles) | {"user"})})
        record, secret = self._keys.create_api_key(user["id"], data.api_key_name)
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
        _check_version(current, expected_version)
        if current is None:
            doc = self._profiles.upsert_for_owner(user_id, changes)
        elif changes:
            doc = self._profiles.update_one(user_id, current["id"], changes, current["version"])
        else:
            doc = current
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
        _check_version(current, expected_version)
        changes = {"preferences": data.model_dump(mode="json")}
        if current is None:
            doc = self._preferences.upsert_for_owner(user_id, changes)
        else:
            doc = self._preferences.update_one(user_id, current["id"], changes, current["version"])
        return PreferencesPublic.model_validate({**doc["preferences"], "version": doc["version"],
                                                 "updated_at": doc.get("updated_at")})

    # ------------------------------------------------------------ API keys

    def create_api_key(self, user_id: str, name: str) -> ApiKeyCreated:
        record, secret = self._keys.create_api_key(user_id, name)
        return ApiKeyCreated.model_validate({**record, "secret": secret})

    def list_api_keys(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> ApiKeyPage:
        items, next_cursor = self._keys.list_api_keys(user_id, limit=limit, cursor=cursor)
        return ApiKeyPage(items=[ApiKeyPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def revoke_api_key(self, user_id: str, key_id: str) -> None:
        self._keys.revoke_api_key(user_id, key_id)
