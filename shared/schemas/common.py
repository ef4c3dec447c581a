"""Field types and base models shared by the user-data schemas.

Bounds live here so every domain enforces the same limits: names <= 100 characters,
tags <= 20 x 40 characters, symbols matching `SYMBOL_PATTERN` and stored upper-cased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from shared.http.schemas import StrictModel
from shared.market.symbols import SYMBOL_PATTERN

# Symbols and currencies are accepted in any case and stored upper-cased; the patterns say so.
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
# "Contains a character that is not ASCII white space": spelled out because regex engines
# (Python, Rust, ECMAScript) disagree on which Unicode characters `\s` covers.
NOT_BLANK = r"[^ \t\n\r\f\v]"
MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_BODY = 20000
MAX_TAGS = 20
MAX_TAG = 40
MAX_SYMBOLS = 200


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# Values are validated as sent (no silent trimming), so the OpenAPI schema is exactly what is accepted.
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN), BeforeValidator(_upper)]
Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN), BeforeValidator(_upper)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=NOT_BLANK)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
Body = Annotated[str, StringConstraints(max_length=MAX_BODY)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG, pattern=NOT_BLANK)]
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

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        """Document `non_nullable` fields as omittable but never null (what the validator enforces)."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        for name in cls.non_nullable:
            prop = schema.get("properties", {}).get(name)
            if not prop or "anyOf" not in prop:
                continue
            rest = [b for b in prop["anyOf"] if b.get("type") != "null"]
            if len(rest) == 1:
                del prop["anyOf"]
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest
            prop.pop("default", None)
        return schema

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
