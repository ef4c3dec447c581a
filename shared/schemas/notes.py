"""Note and investment-idea models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.http.schemas import Page, PageQuery, StrictModel
from shared.schemas.common import Body, PatchModel, Price, ResourcePublic, Symbol, Tag, Tags, Title


class NoteCreate(StrictModel):
    title: Title | None = None
    body: Body = Field(description="Markdown, at most 20000 characters")
    tags: Tags = Field(default_factory=list)
    symbol: Symbol | None = None


class NoteUpdate(PatchModel):
    non_nullable = ("body", "tags")

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None
    symbol: Symbol | None = None


class NotePublic(ResourcePublic):
    title: str | None = None
    body: str = ""
    tags: list[str] = Field(default_factory=list)
    symbol: str | None = None


NotePage = Page[NotePublic]


class NoteListQuery(PageQuery):
    tag: Tag | None = None
    symbol: Symbol | None = None


IdeaStatus = Literal["draft", "active", "closed", "archived"]


class IdeaCreate(StrictModel):
    title: Title
    symbol: Symbol | None = None
    thesis: Body | None = None
    tags: Tags = Field(default_factory=list)
    status: IdeaStatus = "draft"
    target_price: Price | None = None


class IdeaUpdate(PatchModel):
    non_nullable = ("title", "tags", "status")

    title: Title | None = None
    symbol: Symbol | None = None
    thesis: Body | None = None
    tags: Tags | None = None
    status: IdeaStatus | None = None
    target_price: Price | None = None


class IdeaPublic(ResourcePublic):
    title: str
    symbol: str | None = None
    thesis: str | None = None
    tags: list[str] = Field(default_factory=list)
    status: str = "draft"
    target_price: float | None = None


IdeaPage = Page[IdeaPublic]


class IdeaListQuery(PageQuery):
    status: IdeaStatus | None = None
    symbol: Symbol | None = None
    tag: Tag | None = None
