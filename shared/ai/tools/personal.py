"""The caller's own data as tools: watchlists, portfolios (positions and valuation), notes.

They read through `ctx.personal()` with the executor's user_id, never an argument, so a tool call can only
ever see the caller's data. A valuation cites the quote behind each priced position.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.ai.tools.registry import TOOLS, NoArgs, ToolArgs, ToolContext, ToolResult, read_now, source
from shared.ai.tools.text import prov_line, scalars
from shared.market.args import Symbol
from shared.market.models import Provenance
from shared.schemas.valuations import PortfolioValuation

OWN_DATA = "stockagent"  # the provenance source of the caller's own records


class NotesArgs(ToolArgs):
    symbol: Symbol | None = Field(None, description="Only the notes about this symbol")


class WatchlistItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    symbols: list[str]


class NoteItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str | None = None
    body: str = ""
    tags: list[str] = Field(default_factory=list)
    symbol: str | None = None
    updated_at: datetime


class MyWatchlists(BaseModel):
    watchlists: list[WatchlistItem]
    provenance: Provenance


class MyPortfolios(BaseModel):
    portfolios: list[PortfolioValuation]
    provenance: Provenance


class MyNotes(BaseModel):
    notes: list[NoteItem]
    provenance: Provenance


def watchlists_text(d: dict[str, Any]) -> list[str]:
    wls = d.get("watchlists") or []
    if not wls:
        return ["- You have no watchlists."]
    return [f"- Watchlist {w.get('name')}: " + (", ".join(str(s) for s in w.get("symbols") or []) or "empty")
            + prov_line(d.get("provenance")) for w in wls]


def portfolios_text(d: dict[str, Any]) -> list[str]:
    ports = d.get("portfolios") or []
    if not ports:
        return ["- You have no portfolios."]
    out = []
    for p in ports:
        extra = scalars(p)
        out.append(f"- Portfolio {p.get('name')}" + (f": {extra}" if extra else ""))
        for pos in p.get("positions") or []:
            extra = scalars(pos)
            out.append(f"  - {pos.get('symbol')}" + (f": {extra}" if extra else "") + prov_line(pos.get("provenance")))
    return out


def notes_text(d: dict[str, Any]) -> list[str]:
    notes = d.get("notes") or []
    if not notes:
        return ["- You have no matching notes."]
    out = []
    for n in notes:
        sym = f"[{n['symbol']}] " if n.get("symbol") else ""
        out.append(f"- Note {sym}{n.get('title') or n.get('body') or ''}")
    return out


@TOOLS.tool("my_watchlists", title="My watchlists", args=NoArgs, output=MyWatchlists, text=watchlists_text, personal=True)
def my_watchlists(ctx: ToolContext, a: NoArgs) -> ToolResult[MyWatchlists]:
    """The current user's watchlists."""
    items = ctx.personal().list_watchlists(ctx.user_id)
    prov = read_now(OWN_DATA)
    return ToolResult(MyWatchlists(watchlists=items, provenance=prov), f"watchlists: {len(items)}",
                      [source(prov, None, "watchlists")])


@TOOLS.tool("my_portfolio", title="My portfolios", args=NoArgs, output=MyPortfolios, text=portfolios_text,
            personal=True, open_world=True)
def my_portfolio(ctx: ToolContext, a: NoArgs) -> ToolResult[MyPortfolios]:
    """The current user's portfolios with positions and valuation."""
    items = ctx.personal().portfolio_summary(ctx.user_id)
    prov = read_now(OWN_DATA)
    # Valuations carry the provenance of the quote behind each priced position: cite those too.
    quotes = [source(pos.provenance, pos.symbol, "quote") for p in items for pos in p.positions if pos.provenance]
    return ToolResult(MyPortfolios(portfolios=items, provenance=prov), f"portfolios: {len(items)}",
                      [source(prov, None, "portfolios"), *quotes])


@TOOLS.tool("my_notes", title="My notes", args=NotesArgs, output=MyNotes, text=notes_text, personal=True)
def my_notes(ctx: ToolContext, a: NotesArgs) -> ToolResult[MyNotes]:
    """The current user's research notes, optionally for one symbol."""
    items = ctx.personal().list_notes(ctx.user_id, a.symbol)
    prov = read_now(OWN_DATA)
    return ToolResult(MyNotes(notes=items, provenance=prov), f"notes: {len(items)}", [source(prov, None, "notes")])
