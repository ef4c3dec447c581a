"""The authenticated caller, as the auth service resolves it and the request pipeline carries it."""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = "admin"
USER = "user"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    `roles` are the roles this request holds: the stored user's roles, plus the admin role an
    Entra ID / Easy Auth token grants through the configured app role (for this request only).
    """

    id: str
    email: str | None = None
    name: str | None = None
    roles: frozenset[str] = frozenset({USER})
    auth_method: str = "api_key"

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles
