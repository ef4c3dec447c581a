"""Field types and base models shared by the user-data schemas.

Bounds live here so every domain enforces the same limits: names <= 100 characters,
tags <= 20 x 40 characters, symbols matching `SYMBOL_PATTERN` and stored upper-cased; names,
titles and tags are one line of visible text (`LINE_TEXT`, the database validators' own pattern);
quantities and prices are finite and within `MAX_AMOUNT`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator,
)

from shared.data.schema import LINE_TEXT
from shared.http.schemas import StrictModel
from shared.market.symbols import SYMBOL_PATTERN

# Symbols and currencies are accepted in any case and stored upper-cased; the patterns say so.
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_BODY = 20000
MAX_TAGS = 20
MAX_TAG = 40
MAX_SYMBOLS = 200
MAX_AMOUNT = 1e12
# The smallest non-zero quantity or price: a billionth of a unit, finer than any fractional share or
# coin, and far from subnormal floats (1e-320) that lose precision in every product they enter.
MIN_AMOUNT = 1e-9


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# Values are validated as sent (no silent trimming), so the OpenAPI schema is exactly what is accepted.
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN), BeforeValidator(_upper)]
Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN), BeforeValidator(_upper)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=LINE_TEXT)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=LINE_TEXT)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
Body = Annotated[str, StringConstraints(max_length=MAX_BODY)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG, pattern=LINE_TEXT)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]


def _zero_or_at_least_min(value: float) -> float:
    if 0 < value < MIN_AMOUNT:
        raise ValueError(f"Must be 0 or at least {MIN_AMOUNT:g}")
    return value + 0.0  # -0.0 + 0.0 is 0.0: a negative zero is stored (and shown) as 0


# Units held: finite, at least MIN_AMOUNT.
Quantity = Annotated[float, Field(ge=MIN_AMOUNT, le=MAX_AMOUNT, allow_inf_nan=False)]
# A price or cost per unit: finite, 0 or at least MIN_AMOUNT (the schema says so with anyOf).
Price = Annotated[
    float,
    Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False),
    AfterValidator(_zero_or_at_least_min),
    WithJsonSchema({"anyOf": [{"type": "number", "const": 0},
                              {"type": "number", "minimum": MIN_AMOUNT, "maximum": MAX_AMOUNT}]}),
]
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
