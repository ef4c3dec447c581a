"""Notes (markdown, tags, optional symbol) and investment ideas."""

from __future__ import annotations

from typing import Any

from shared.market.symbols import normalize_symbol
from shared.schemas.notes import (
    IdeaCreate, IdeaPage, IdeaPublic, IdeaUpdate, NoteCreate, NotePage, NotePublic, NoteUpdate,
)
from shared.services._owned import patch
from shared.services.base import BaseService


class NoteService(BaseService):
    """Scoped to `owner_id`; the repository normalises tags (trimmed, de-duplicated in order) and symbols."""

    def __init__(self, *, note_repository: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._repo = note_repository

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"note_repository": self._repo})

    def list_notes(self, owner_id: str, *, tag: str | None = None, symbol: str | None = None,
                   limit: int = 20, cursor: str | None = None) -> NotePage:
        items, next_cursor = self._repo.list_notes(owner_id, tag=tag, symbol=symbol, limit=limit, cursor=cursor)
        return NotePage(items=[NotePublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_note(self, owner_id: str, data: NoteCreate) -> NotePublic:
        return NotePublic.model_validate(self._repo.insert_one(owner_id, data.model_dump()))

    def get_note(self, owner_id: str, note_id: str) -> NotePublic:
        return NotePublic.model_validate(self._repo.get(owner_id, note_id))

    def update_note(self, owner_id: str, note_id: str, data: NoteUpdate, expected_version: int | None = None) -> NotePublic:
        changes = data.changes()
        return NotePublic.model_validate(patch(self._repo, owner_id, note_id, changes, expected_version))

    def delete_note(self, owner_id: str, note_id: str, expected_version: int | None = None) -> None:
        self._repo.delete_one(owner_id, note_id, expected_version)


class IdeaService(BaseService):
    """Investment ideas, scoped to `owner_id`; filterable by status, symbol and tag."""

    def __init__(self, *, idea_repository: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._repo = idea_repository

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"idea_repository": self._repo})

    def list_ideas(self, owner_id: str, *, status: str | None = None, symbol: str | None = None,
                   tag: str | None = None, limit: int = 20, cursor: str | None = None) -> IdeaPage:
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if symbol:
            query["symbol"] = normalize_symbol(symbol)
        if tag:
            query["tags"] = tag
        items, next_cursor = self._repo.find_many(owner_id, query, limit=limit, cursor=cursor)
        return IdeaPage(items=[IdeaPublic.model_validate(d) for d in items], next_cursor=next_cursor)

    def create_idea(self, owner_id: str, data: IdeaCreate) -> IdeaPublic:
        return IdeaPublic.model_validate(self._repo.insert_one(owner_id, data.model_dump()))

    def get_idea(self, owner_id: str, idea_id: str) -> IdeaPublic:
        return IdeaPublic.model_validate(self._repo.get(owner_id, idea_id))

    def update_idea(self, owner_id: str, idea_id: str, data: IdeaUpdate, expected_version: int | None = None) -> IdeaPublic:
        changes = data.changes()
        return IdeaPublic.model_validate(patch(self._repo, owner_id, idea_id, changes, expected_version))

    def delete_idea(self, owner_id: str, idea_id: str, expected_version: int | None = None) -> None:
        self._repo.delete_one(owner_id, idea_id, expected_version)
