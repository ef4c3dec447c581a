"""Hand-written fakes of the AI core's Protocols (MarketData, UserData, ChatStore, Budget) and a scripted model."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from shared.ai.models.base import BaseModelClient, ModelEvent, ToolCall, Usage
from shared.config.models import Settings
from shared.errors import NotFound, RateLimited
from shared.ai.tools.personal import NoteItem, WatchlistItem
from shared.market.models import (
    Bar, Fundamentals, History, IndicatorPoint, IndicatorSeries, News, NewsItem, Provenance, Quote, QuoteError, SymbolMatch,
)
from shared.schemas.valuations import PortfolioValuation, PositionValuation

AS_OF = datetime(2026, 11, 26, 14, 30, tzinfo=timezone.utc)


def prov(source: str = "offline", stale: bool = False) -> Provenance:
    return Provenance(source=source, as_of=AS_OF, fetched_at=AS_OF, cache_age_s=0.0, stale=stale)


QUOTES = {
    "AAPL": dict(price=189.84, change=1.23, change_percent=0.65, previous_close=188.61, day_high=190.5,
                 day_low=187.02, volume=51234000, market_cap=2950000000000.0),
    "MSFT": dict(price=415.5, change=-2.1, change_percent=-0.5, previous_close=417.6, day_high=419.0,
                 day_low=414.2, volume=20111000, market_cap=3090000000000.0),
}
FUNDAMENTALS = {
    "AAPL": dict(name="Apple Inc.", sector="Technology", pe_ratio=29.4, forward_pe=27.1, eps=6.46, profit_margin=0.2531,
                 operating_margin=0.3012, revenue=391035000000.0, beta=1.24, week52_high=199.62, week52_low=164.08,
                 market_cap=2950000000000.0, description="Apple designs phones."),
    "MSFT": dict(name="Microsoft Corporation", sector="Technology", pe_ratio=35.2, profit_margin=0.3596,
                 operating_margin=0.4459, market_cap=3090000000000.0),
}
NAMES = {"apple": ("AAPL", "Apple Inc."), "microsoft": ("MSFT", "Microsoft Corporation")}


class FakeMarket:
    """Deterministic MarketData; `fail[method] = exc` makes a method raise; `calls` records every call."""

    def __init__(self) -> None:
        self.fail: dict[str, Exception] = {}
        self.calls: list[tuple[str, tuple]] = []
        self.news_items: dict[str, list[NewsItem]] = {
            "AAPL": [
                NewsItem(id="n1", symbol="AAPL", title="Apple unveils new chip", publisher="Reuters", published_at=AS_OF),
                NewsItem(id="n2", symbol="AAPL", title="Apple services revenue grows", publisher="Bloomberg", published_at=AS_OF),
            ]
        }

    def _enter(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.fail:
            raise self.fail[name]

    @staticmethod
    def _known(symbol: str) -> None:
        if symbol not in QUOTES:
            raise NotFound(f"unknown symbol {symbol}")

    def get_quote(self, symbol: str) -> Quote:
        self._enter("get_quote", symbol)
        self._known(symbol)
        return Quote(symbol=symbol, provenance=prov(), **QUOTES[symbol])

    def get_quotes(self, symbols: list[str]) -> list[Quote | QuoteError]:
        self._enter("get_quotes", tuple(symbols))
        out: list[Quote | QuoteError] = []
        for s in dict.fromkeys(symbols):
            try:
                out.append(self.get_quote(s))
            except NotFound as exc:
                out.append(QuoteError.of(s, exc))
        return out

    def get_history(self, symbol: str, period: str = "1mo", interval: str = "1d") -> History:
        self._enter("get_history", symbol, period, interval)
        self._known(symbol)
        closes = [180.0, 182.5, 185.25, 184.1, 189.84]
        bars = [
            Bar(ts=AS_OF - timedelta(days=len(closes) - i), open=c - 1, high=c + 1.5, low=c - 2.0, close=c, volume=1000 + i)
            for i, c in enumerate(closes)
        ]
        return History(symbol=symbol, interval=interval, bars=bars, provenance=prov())

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        self._enter("get_fundamentals", symbol)
        self._known(symbol)
        return Fundamentals(symbol=symbol, provenance=prov(stale=symbol == "MSFT"), **FUNDAMENTALS[symbol])

    def get_news(self, symbol: str, limit: int = 10) -> News:
        self._enter("get_news", symbol, limit)
        self._known(symbol)
        return News(symbol=symbol, items=self.news_items.get(symbol, [])[:limit], provenance=prov())

    def get_indicators(self, symbol: str, names: list[str]) -> list[IndicatorSeries]:
        self._enter("get_indicators", symbol, tuple(names))
        self._known(symbol)
        values = {"rsi_14": 56.12, "sma_20": 185.3, "sma_50": 181.07, "ema_12": 187.9}
        out = []
        for n in names:
            pts = [IndicatorPoint(ts=AS_OF.date(), value=values.get(n, 1.5))]
            if n.startswith("macd"):
                pts = [IndicatorPoint(ts=AS_OF.date(), values={"macd": 1.82, "signal": 1.4, "hist": 0.42})]
            out.append(IndicatorSeries(symbol=symbol, name=n, points=pts, provenance=prov()))
        return out

    def search_symbols(self, q: str, limit: int = 10) -> list[SymbolMatch]:
        self._enter("search_symbols", q, limit)
        ql = q.lower()
        out = [SymbolMatch(symbol=s, name=n, exchange="NASDAQ", type="equity") for k, (s, n) in NAMES.items() if ql in k or ql == s.lower()]
        return out[:limit]


def valuation(portfolio_id: str, name: str, positions: list[PositionValuation]) -> PortfolioValuation:
    value = sum(p.market_value or 0.0 for p in positions)
    return PortfolioValuation(portfolio_id=portfolio_id, name=name, currency="USD", status="complete" if positions else "empty",
                              as_of=AS_OF, market_value=value, priced_positions=len(positions), positions=positions)


class FakeUserData:
    """Owner-keyed personal data; records the user_id of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.watchlists = {
            "alice": [WatchlistItem(id="w1", name="Tech", symbols=["AAPL", "MSFT"])],
            "bob": [WatchlistItem(id="w2", name="BobSecret", symbols=["GME"])],
        }
        self.portfolios = {
            "alice": [valuation("p1", "Main", [PositionValuation(
                position_id="x", symbol="AAPL", quantity=100, currency="USD", price=189.84, quote_currency="USD",
                market_value=18984.0, included_in_totals=True, provenance=prov())])],
            "bob": [valuation("p2", "BobFund", [])],
        }
        self.notes = {"alice": [NoteItem(id="x1", symbol="AAPL", title="Wait for earnings", updated_at=AS_OF)],
                      "bob": [NoteItem(id="x2", title="bob private", updated_at=AS_OF)]}

    def list_watchlists(self, user_id: str) -> list[WatchlistItem]:
        self.calls.append(("list_watchlists", user_id))
        return self.watchlists.get(user_id, [])

    def portfolio_summary(self, user_id: str) -> list[PortfolioValuation]:
        self.calls.append(("portfolio_summary", user_id))
        return self.portfolios.get(user_id, [])

    def list_notes(self, user_id: str, symbol: str | None = None) -> list[NoteItem]:
        self.calls.append(("list_notes", user_id))
        return [n for n in self.notes.get(user_id, []) if symbol is None or n.symbol == symbol]


class MemoryChatStore:
    def __init__(self) -> None:
        self.chats: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def create(self, user_id: str, title: str) -> dict:
        cid = f"c{next(self._ids)}"
        self.chats[cid] = {"id": cid, "user_id": user_id, "title": title, "messages": []}
        return dict(self.chats[cid])

    def get(self, user_id: str, chat_id: str) -> dict:
        c = self.chats.get(chat_id)
        if c is None or c["user_id"] != user_id:
            raise NotFound("conversation not found")
        return {**c, "messages": list(c["messages"])}

    def append_messages(self, user_id: str, chat_id: str, messages: list[dict]) -> None:
        self.get(user_id, chat_id)
        self.chats[chat_id]["messages"].extend(messages)


class MemoryBudget:
    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.used: dict[str, int] = {}
        self.checks = 0

    def check(self, user_id: str) -> None:
        self.checks += 1
        if self.used.get(user_id, 0) >= self.limit:
            raise RateLimited("daily token budget exhausted", retry_after=3600)

    def add(self, user_id: str, tokens: int) -> None:
        self.used[user_id] = self.used.get(user_id, 0) + tokens


class ScriptedModel(BaseModelClient):
    """A model client replaying scripted turns: each turn is a list of ModelEvents, a str (answer text),
    a list of ToolCalls, or an exception to raise before the first event. Records every request."""

    def __init__(self, turns: list[Any], provider: str = "openai", model: str = "scripted-1", delta_count: int | None = None) -> None:
        self.provider, self.model = provider, model
        self.turns = list(turns)
        self.requests: list[dict] = []
        self.closed = 0
        self.events_sent = 0

    def generate_stream(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> Iterator[ModelEvent]:
        self.requests.append({"messages": [dict(m) for m in messages], "tools": tools, "opts": opts})
        turn = self.turns.pop(0) if self.turns else "ok"
        return self._gen(turn)

    def _gen(self, turn: Any) -> Iterator[ModelEvent]:
        try:
            if isinstance(turn, BaseException):
                raise turn
            if isinstance(turn, str):
                events = [ModelEvent("delta", text=w) for w in turn.split(" ") for w in [w + " "]]
                events += [ModelEvent("usage", usage=Usage(5, 3, 8)), ModelEvent("finish", finish_reason="stop")]
            elif turn and isinstance(turn[0], ToolCall):
                events = [ModelEvent("tool_call", tool_call=tc) for tc in turn]
                events += [ModelEvent("usage", usage=Usage(5, 1, 6)), ModelEvent("finish", finish_reason="tool_calls")]
            else:
                events = list(turn)
            for ev in events:
                if isinstance(ev, BaseException):
                    raise ev
                self.events_sent += 1
                yield ev
        finally:
            self.closed += 1


def make_settings(models: dict | None = None, chat: dict | None = None, env: str = "test") -> Settings:
    return Settings.model_validate({"app": {"env": env}, "models": models or {}, "chat": chat or {}})


def openai_settings(srv: Any, **extra) -> Settings:
    """OpenAI primary at the fake server, offline fallback, fast timeouts and no retries."""
    models = {
        "provider": "openai",
        "fallback_order": ["openai", "offline"],
        "openai": {"api_key": "test-key", "base_url": srv.base_url, "model": "gpt-test", "first_token_timeout_s": 2.0, "max_retries": 0},
    }
    models.update(extra.pop("models", {}))
    return make_settings(models=models, **extra)
