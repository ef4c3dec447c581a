"""The arguments of DataManager's public methods: every rule a caller can break, in one place.

``parse`` turns any violation into one ValidationFailed (422) naming each bad field, so HTTP handlers, the
agent's tools and services get the same answer for the same mistake.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from shared.errors import ValidationFailed
from shared.market.models import Interval, Period
from shared.market.periods import INTRADAY, INTRADAY_MAX_DAYS, date_range
from shared.market.symbols import SYMBOL_PATTERN, check_symbol

MAX_BATCH = 50


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _query(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _optional_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return value.strip()[:10] or None
    return value


# The argument types, shared with the agent's tools (whose JSON schemas are generated from them).
Symbol = Annotated[
    str, BeforeValidator(check_symbol),
    WithJsonSchema({"type": "string", "pattern": SYMBOL_PATTERN, "description": "Ticker symbol, e.g. AAPL"}),
]
PeriodArg = Annotated[Period, BeforeValidator(_lower), Field(description="Look-back period")]
IntervalArg = Annotated[Interval, BeforeValidator(_lower), Field(description="Bar interval; intraday ones reach back "
    + ", ".join(f"{interval}: {days} days" for interval, days in INTRADAY_MAX_DAYS.items()))]
SearchQuery = Annotated[str, BeforeValidator(_query), Field(min_length=1, max_length=64,
                                                            description="Company name or ticker")]


class MarketArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def parse(cls, *, context: dict[str, Any] | None = None, **values: Any) -> Self:
        """The validated arguments, or ValidationFailed with the messages per field."""
        try:
            args = cls.model_validate(values)
        except ValidationError as exc:
            errors: dict[str, list[str]] = {}
            for err in exc.errors(include_url=False):
                field = str(err["loc"][0]) if err["loc"] else "arguments"
                ctx_error = (err.get("ctx") or {}).get("error")
                errors.setdefault(field, []).append(str(ctx_error) if ctx_error is not None else err["msg"])
            raise ValidationFailed("Invalid market data request", errors=errors) from None
        errors = args._check(context or {})
        if errors:
            raise ValidationFailed("Invalid market data request", errors=errors)
        return args

    def _check(self, context: dict[str, Any]) -> dict[str, list[str]]:
        """Rules across fields or needing context; errors per field."""
        return {}


class SymbolArgs(MarketArgs):
    symbol: Symbol


class NewsArgs(SymbolArgs):
    limit: int = Field(10, ge=1, le=50)


class QuotesArgs(MarketArgs):
    """1-50 symbols as given: each is validated on its own so one bad symbol is reported in place."""

    symbols: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class SearchArgs(MarketArgs):
    q: SearchQuery
    limit: int = Field(10, ge=1, le=50)


class HistoryArgs(SymbolArgs):
    """Pass ``context={"today": date}``: start may not be in the future and intraday look-back is limited."""

    period: PeriodArg = "1mo"
    interval: IntervalArg = "1d"
    start: Annotated[date | None, BeforeValidator(_optional_date)] = None
    end: Annotated[date | None, BeforeValidator(_optional_date)] = None

    def _check(self, context: dict[str, Any]) -> dict[str, list[str]]:
        today: date = context.get("today") or date.today()
        errors: dict[str, list[str]] = {}
        if self.start and self.end and self.start > self.end:
            errors["start"] = ["start must not be after end"]
        if self.start and self.start > today:
            errors["start"] = ["start must not be in the future"]
        if not errors and self.interval in INTRADAY:
            first, _ = date_range(self.period, today, self.start, self.end)
            if (today - first).days > INTRADAY_MAX_DAYS[self.interval]:
                errors["period"] = [f"Interval {self.interval} is limited to the last {INTRADAY_MAX_DAYS[self.interval]} days"]
        return errors
