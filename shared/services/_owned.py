"""Helpers shared by the CRUD services over owner-scoped repositories."""

from __future__ import annotations

from typing import Any, Mapping

from shared.data.repository import check_version


def patch(repo: Any, owner_id: str, item_id: str, changes: Mapping[str, Any], expected_version: int | None) -> dict[str, Any]:
    """Apply `changes` with optimistic concurrency; an empty patch changes nothing (and bumps no version)."""
    if changes:
        return repo.update_one(owner_id, item_id, dict(changes), expected_version)
    doc = repo.get(owner_id, item_id)  # NotFound for a missing/foreign/malformed id
    check_version(doc.get("version"), expected_version)
    return doc


def iterate_all(fetch_page: Any, *, page_size: int = 100, max_items: int | None = None, cursor: str | None = None) -> Any:
    """Yield every item of a cursor-paginated `fetch_page(limit=, cursor=) -> (items, next_cursor)`, from the
    one after `cursor` (the first without), at most `max_items` of them; pages are read as items are consumed."""
    if max_items is not None:
        page_size = max(1, min(page_size, max_items))
    seen = 0
    while True:
        items, cursor = fetch_page(limit=page_size, cursor=cursor)
        for item in items:
            if max_items is not None and seen >= max_items:
                return
            seen += 1
            yield item
        if not cursor:
            return
