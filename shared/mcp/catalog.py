"""The MCP endpoint's resources and prompts (its tools are the agent's: shared.ai.tools.TOOLS).

Registration points: `RESOURCES` (a kind of the caller's records readable as `<scheme>://{id}`; reports add
`report://{id}` here) and `PROMPTS`. No MCP SDK here: shared.mcp.server turns these into protocol objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

from shared.market.symbols import check_symbol

# (services, owner_id, id) -> the record; NotFound for an unknown id and for another user's.
Reader = Callable[[Any, str, str], BaseModel]
# (services, owner_id) -> [(id, display name)] of the owner's records, newest first.
Lister = Callable[[Any, str], list[tuple[str, str]]]
MAX_LISTED = 100
_URI = re.compile(r"^([a-z][a-z0-9+.-]*)://([A-Za-z0-9_-]{1,64})$")


@dataclass(frozen=True)
class ResourceKind:
    """The caller's records of one kind as MCP resources `<scheme>://{id}` (JSON)."""

    scheme: str
    title: str
    description: str
    read: Reader
    list: Lister

    @property
    def uri_template(self) -> str:
        return f"{self.scheme}://{{id}}"

    def uri(self, record_id: str) -> str:
        return f"{self.scheme}://{record_id}"


def _read_watchlist(services: Any, owner_id: str, watchlist_id: str) -> BaseModel:
    record: BaseModel = services.watchlists.get_watchlist(owner_id, watchlist_id)
    return record


def _list_watchlists(services: Any, owner_id: str) -> list[tuple[str, str]]:
    return [(w.id, w.name) for w in services.watchlists.list_watchlists(owner_id, limit=MAX_LISTED).items]


RESOURCES: tuple[ResourceKind, ...] = (
    ResourceKind("watchlist", "Watchlist", "One of your watchlists: its name and symbols.", _read_watchlist,
                 _list_watchlists),
)


def parse_uri(uri: str) -> tuple[ResourceKind, str] | None:
    """The kind and id a resource URI names, or None when it names none of ours."""
    match = _URI.fullmatch(uri)
    kind = next((k for k in RESOURCES if match and k.scheme == match.group(1)), None)
    return (kind, match.group(2)) if kind is not None and match is not None else None


@dataclass(frozen=True)
class PromptArgument:
    name: str
    description: str
    check: Callable[[str], str]  # the canonical value; ValueError with a reason otherwise


@dataclass(frozen=True)
class PromptSpec:
    """A prompt template: its arguments and the user message it renders (from checked arguments)."""

    name: str
    title: str
    description: str
    arguments: tuple[PromptArgument, ...]
    render: Callable[[dict[str, str]], str]

    def message(self, given: dict[str, str] | None) -> str:
        """The rendered message; ValueError naming the argument that is missing or invalid."""
        values: dict[str, str] = {}
        for arg in self.arguments:
            raw = (given or {}).get(arg.name)
            if raw is None:
                raise ValueError(f"argument {arg.name} is required")
            try:
                values[arg.name] = arg.check(raw)
            except ValueError as exc:
                raise ValueError(f"argument {arg.name}: {exc}") from None
        return self.render(values)


CITE = ("State only figures the tools returned, cite each one's source and as-of time, and say when data is stale. "
        "This is research, not financial advice.")


PROMPTS: tuple[PromptSpec, ...] = (
    PromptSpec(
        "research_symbol", "Research a symbol", "A cited research brief on one stock: price, valuation, trend, "
        "technicals, news and your own notes.",
        (PromptArgument("symbol", "Ticker symbol, e.g. AAPL", check_symbol),),
        lambda a: (
            f"Research {a['symbol']} for me. Use get_quote for the price, get_fundamentals for valuation and margins, "
            f"get_history_summary with period 1y for the trend, get_indicators with rsi_14, sma_50 and sma_200 for "
            f"the technicals and get_news for recent headlines, and my_notes with symbol {a['symbol']} for what I "
            f"wrote before. Summarise the picture and end with the open questions. {CITE}"
        ),
    ),
    PromptSpec(
        "review_my_portfolio", "Review my portfolio", "A review of your portfolios: valuation, concentration, "
        "positions without a quote, and news on the largest holdings.",
        (),
        lambda a: (
            "Review my portfolios. Call my_portfolio for the positions and their valuation, then get_news and "
            "get_indicators (rsi_14, sma_50) for my largest positions. Point out concentration, positions the "
            f"valuation could not price and currency mismatches it reports. {CITE}"
        ),
    ),
)
