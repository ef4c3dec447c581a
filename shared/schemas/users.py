"""User, profile, preferences and API-key models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.http.schemas import Page, StrictModel
from shared.schemas.common import Currency, Name, PatchModel

Role = Literal["user", "admin"]
ModelProvider = Literal["openai", "grok", "azure_openai", "compatible", "offline"]
RiskProfile = Literal["conservative", "moderate", "aggressive"]
# Printable characters only: regex engines disagree on what `\s` covers (control and Unicode spaces); no bidi
# embedding, override or isolate control either (an address shown to an admin must read as it is).
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f-\x9f\u00a0\u1680\u2000-\u200b\u2028\u2029\u202a-\u202f\u205f\u2066-\u2069\u3000\ufeff]"
EMAIL_PATTERN = rf"^{_EMAIL_CHAR}+@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+$"


class UserPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    email: str
    name: str | None = None
    roles: list[str] = Field(default_factory=lambda: ["user"])
    disabled: bool = False
    version: int
    created_at: datetime
    updated_at: datetime


UserPage = Page[UserPublic]


class UserCreate(StrictModel):
    """Admin only. `roles` is accepted here (and only here); a `role` field is unknown (422)."""

    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    name: Name | None = None
    roles: list[Role] = Field(default_factory=lambda: ["user"], min_length=1, max_length=2)
    api_key_name: Name = "default"


class ProfileUpdate(PatchModel):
    display_name: Name | None = None
    bio: str | None = Field(None, max_length=2000)
    avatar_url: str | None = Field(None, max_length=2048, pattern=r"^https://\S+$")


class ProfilePublic(BaseModel):
    """The caller's profile; `version` 0 means it was never saved (If-Match: W/"0" still works)."""

    model_config = ConfigDict(extra="ignore")

    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    version: int = 0
    updated_at: datetime | None = None


class PreferencesUpdate(StrictModel):
    """PUT replaces every preference; omitted fields return to their defaults."""

    preferred_model_provider: ModelProvider | None = None
    default_watchlist_id: str | None = Field(None, max_length=64)
    risk_profile: RiskProfile = "moderate"
    currency: Currency = "USD"


class PreferencesPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")

    preferred_model_provider: ModelProvider | None = None
    default_watchlist_id: str | None = None
    risk_profile: RiskProfile = "moderate"
    currency: str = "USD"
    version: int = 0
    updated_at: datetime | None = None


class ApiKeyCreate(StrictModel):
    name: Name


class ApiKeyPublic(BaseModel):
    """A key as listed: never the secret, never its hash."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str | None = None
    prefix: str
    version: int
    created_at: datetime
    last_used_at: datetime | None = None


ApiKeyPage = Page[ApiKeyPublic]


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="Shown once; store it now, it cannot be retrieved again")


class UserCreated(BaseModel):
    user: UserPublic
    api_key: ApiKeyCreated
