"""Workspaces: CRUD with names unique per owner, and an NDJSON-friendly stream."""

from __future__ import annotations

from typing import Any, Iterator

from shared.data.utils import batched
from shared.schemas.workspaces import WorkspaceCreate, WorkspacePage, WorkspacePublic, WorkspaceUpdate
from shared.services._owned import iterate_all, patch
from shared.services.base import BaseService


class WorkspaceService(BaseService):
    """Every method is scoped to `owner_id`: another owner's workspace is NotFound, like a missing one."""

    STREAM_CHUNK = 50

    def __init__(self, *, workspace_repository: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._repo = workspace_repository

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"workspace_repository": self._repo})

    def list_workspaces(self, owner_id: str, *, limit: int = 20, cursor: str | None = None) -> WorkspacePage:
        items, next_cursor = self._repo.find_many(owner_id, limit=limit, cursor=cursor)
        return WorkspacePage(items=[WorkspacePublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_workspace(self, owner_id: str, data: WorkspaceCreate) -> WorkspacePublic:
        """Conflict (409, from the repository's unique name index) when the owner already has that name (case-insensitive)."""
        return WorkspacePublic.model_validate(self._repo.insert_one(owner_id, data.model_dump()))

    def get_workspace(self, owner_id: str, workspace_id: str) -> WorkspacePublic:
        return WorkspacePublic.model_validate(self._repo.get(owner_id, workspace_id))

    def update_workspace(self, owner_id: str, workspace_id: str, data: WorkspaceUpdate,
                         expected_version: int | None = None) -> WorkspacePublic:
        changes = data.changes()
        return WorkspacePublic.model_validate(patch(self._repo, owner_id, workspace_id, changes, expected_version))

    def delete_workspace(self, owner_id: str, workspace_id: str, expected_version: int | None = None) -> None:
        self._repo.delete_one(owner_id, workspace_id, expected_version)

    def stream_workspaces(self, owner_id: str, *, limit: int | None = None, cursor: str | None = None,
                          chunk_size: int = STREAM_CHUNK) -> Iterator[list[dict[str, Any]]]:
        """The owner's workspaces (at most `limit`, after `cursor`) as JSON-safe dicts, in chunks of `chunk_size`
        (lazy: pages are read as consumed)."""
        records = iterate_all(lambda limit, cursor: self._repo.find_many(owner_id, limit=limit, cursor=cursor),
                              max_items=limit, cursor=cursor)
        serialized = (WorkspacePublic.model_validate(d).model_dump(mode="json") for d in records)
        yield from batched(serialized, chunk_size)
