"""Request and response schemas of the market-data routes."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from shared.http.schemas import QueryModel
from shared.market.indicators import SUPPORTED_HELP, IndicatorName, indicator_list_pattern
from shared.schemas.symbols import SymbolPath  # one definition of a symbol path parameter
from shared.market.models import Fundamentals, History, IndicatorSeries, Interval, News, Period, Quote, QuoteBatch

MAX_INDICATORS = 10


class HistoryQuery(QueryModel):
    period: Period = Field("1mo", description="Look-back period (ignored when start is given)")
    interval: Interval = Field("1d", description="Bar interval")
    start: date | None = Field(None, description="First day, YYYY-MM-DD")
    end: date | None = Field(None, description="Last day, YYYY-MM-DD")


class NewsQuery(QueryModel):
    limit: int = Field(10, ge=1, le=50)


class IndicatorsQuery(QueryModel):
    names: str = Field(
        "sma_20,rsi_14",
        max_length=200,
        pattern=indicator_list_pattern(MAX_INDICATORS),
        description=f"Comma-separated, at most {MAX_INDICATORS}: {SUPPORTED_HELP}",
    )

    @property
    def name_list(self) -> list[IndicatorName]:
        return [n for n in self.names.split(",") if n]


class QuotesQuery(QueryModel):
    symbols: str = Field(
        max_length=900,
        pattern=r"^[A-Za-z0-9.\-^=]{1,15}(,[A-Za-z0-9.\-^=]{1,15}){0,49}$",
        description="Comma-separated tickers, at most 50",
    )

    @property
    def symbol_list(self) -> list[str]:
        return [s.upper() for s in self.symbols.split(",") if s.strip()]


class IndicatorsResponse(BaseModel):
    symbol: str
    indicators: list[IndicatorSeries]


__all__ = [
    "Fundamentals", "History", "HistoryQuery", "IndicatorsQuery", "IndicatorsResponse", "News", "NewsQuery",
    "Quote", "QuoteBatch", "QuotesQuery", "SymbolPath",
]
