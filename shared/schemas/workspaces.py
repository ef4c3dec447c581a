"""Workspace models."""

from __future__ import annotations

from pydantic import Field

from shared.http.schemas import Page, PageQuery, StrictModel
from shared.schemas.common import Description, Name, PatchModel, ResourcePublic


class WorkspaceCreate(StrictModel):
    name: Name
    description: Description | None = None


class WorkspaceUpdate(PatchModel):
    non_nullable = ("name",)

    name: Name | None = None
    description: Description | None = None


class WorkspacePublic(ResourcePublic):
    name: str
    description: str | None = None


WorkspacePage = Page[WorkspacePublic]


class WorkspaceListQuery(PageQuery):
    stream: bool = Field(False, description="Stream as NDJSON: every workspace, or at most `limit` when it is given")
