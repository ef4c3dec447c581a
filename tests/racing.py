"""A collection double for optimistic-concurrency tests: another writer changes the document once,
between our read and our conditional write."""

from __future__ import annotations

from typing import Any


class RacingCollection:
    """Delegates to a real collection. `times` times (once by default), another writer bumps the
    document's `version` (and sets `also_set`): right after our `find_one` (on="find_one") or just
    before our `find_one_and_update` (on="find_one_and_update")."""

    def __init__(self, inner: Any, *, on: str = "find_one", also_set: dict[str, Any] | None = None,
                 times: int = 1) -> None:
        self._inner = inner
        self._on = on
        self._update: dict[str, Any] = {"$inc": {"version": 1}, **({"$set": also_set} if also_set else {})}
        self._left = times
        self.races = 0

    @property
    def raced(self) -> bool:
        return self.races > 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _race(self, doc_id: Any) -> None:
        if self._left > 0:
            self._left -= 1
            self.races += 1
            self._inner.update_one({"_id": doc_id}, self._update)

    def find_one(self, *args: Any, **kwargs: Any) -> Any:
        doc = self._inner.find_one(*args, **kwargs)
        if doc is not None and self._on == "find_one":
            self._race(doc["_id"])
        return doc

    def find_one_and_update(self, query: dict[str, Any], update: Any, **kwargs: Any) -> Any:
        if self._on == "find_one_and_update":
            self._race(query["_id"])
        return self._inner.find_one_and_update(query, update, **kwargs)
