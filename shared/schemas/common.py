"""Field types and base models shared by the user-data schemas.

Bounds live here so every domain enforces the same limits: names <= 100 characters,
tags <= 20 x 40 characters, symbols upper-cased and matching `SYMBOL_PATTERN`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from shared.http.schemas import StrictModel

SYMBOL_PATTERN = r"^[A-Z0-9.\-^=]{1,15}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_BODY = 20000
MAX_TAGS = 20
MAX_TAG = 40
MAX_SYMBOLS = 200


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# Constraints first, then the before-validator: the pattern shows in the OpenAPI schema
# and is checked after upper-casing, so "aapl" is accepted as "AAPL".
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN), BeforeValidator(_upper)]
Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN), BeforeValidator(_upper)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME), BeforeValidator(_strip)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200), BeforeValidator(_strip)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
Body = Annotated[str, StringConstraints(max_length=MAX_BODY)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG), BeforeValidator(_strip)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
SymbolList = Annotated[list[Symbol], Field(max_length=MAX_SYMBOLS)]


class PatchModel(StrictModel):
    """PATCH bodies: every field optional; fields in `non_nullable` may be omitted but not set to null."""

    non_nullable: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _reject_nulls(self) -> "PatchModel":
        bad = [f for f in self.non_nullable if f in self.model_fields_set and getattr(self, f) is None]
        if bad:
            raise ValueError(f"{', '.join(bad)} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent (so omitted fields are left untouched)."""
        return self.model_dump(exclude_unset=True)


class ResourcePublic(BaseModel):
    """A stored resource as clients see it: `version` feeds the ETag."""

    model_config = ConfigDict(extra="ignore")

    id: str
    version: int
    created_at: datetime
    updated_at: datetime
