"""Runs schema migrations for the timer, the admin endpoint and local start-up."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.services.base import BaseService


class MigrationService(BaseService):
    def __init__(self, *, settings: Settings, repos: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._settings = settings
        self._repos = repos

    def run(self, *, dry_run: bool = False, wait_s: float = 0) -> dict[str, Any]:
        """Apply pending migrations; a second run reports nothing to do. `wait_s`: how long to wait
        for another instance's run to release the lock (else MigrationLocked, 409)."""
        from shared.data.migrations import run_migrations

        summary = run_migrations(self._repos.db, self._settings, dry_run=dry_run, wait_s=wait_s)
        self.logger.info("migrations: %s (applied: %s)", summary.get("status"), ", ".join(summary.get("applied") or []) or "none")
        return summary

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"database": self._repos})
