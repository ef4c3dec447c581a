"""OfflineModel: answers without an LLM. It plans tool calls from the question (intent + symbol detection)
and writes the answer from each tool's text form (Tool.text), which quotes numbers exactly as they appear in
the result, so its answers have zero ungrounded numbers. Every answer says it comes from the offline model."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from shared.ai.models.base import BaseModelClient, ModelEvent, ToolCall, Usage, estimate_tokens
from shared.ai.tools import TOOLS, parse_tool_message

OFFLINE_NOTICE = "Offline model (no LLM): this answer is assembled from tool results only."

_TICKER_RE = re.compile(r"(?<![\w$])\$?([A-Z]{1,5}(?:\.[A-Z])?)(?![\w])")
_NOT_TICKERS = {
    "I", "A", "AN", "THE", "AND", "OR", "VS", "RSI", "SMA", "EMA", "MACD", "PE", "EPS", "ETF", "USD", "EUR", "CEO",
    "CFO", "IPO", "AI", "YTD", "US", "USA", "EU", "UK", "OK", "GDP", "P", "E", "IS", "IT", "MY", "ME", "ON", "IN", "OF",
    "TO", "FOR", "WHAT", "HOW", "WHY", "WHO", "DO", "DOES", "NEWS", "TTM", "FY", "Q", "API", "LLM", "PM", "AM", "UTC",
    "ROI", "ROE", "EBIT", "EBITDA", "NYSE", "SEC", "FED", "BUY", "SELL", "HOLD", "TELL", "ME", "SHOW", "GIVE",
}
_STOPWORDS = set(
    """a an the and or vs versus of on in for to with about at by from is are was were be been do does did how what what's whats
    who why when which tell me show give get find latest recent current currently today now price prices quote quotes news
    headlines headline fundamentals fundamental valuation margins margin earnings revenue history performance performed perform
    doing trend trends chart indicator indicators technical technicals rsi sma ema macd moving average compare comparison
    my our your please stock stocks share shares company companies ticker symbol look looking like trading trade traded
    it its this that these those over past last year years month months week weeks day days ytd cap market p/e ratio eps
    dividend dividends yield beta sector overbought oversold has have had can could would should will up down going
    watchlist watchlists portfolio portfolios holdings positions notes note i me much many cost worth value
    summary summarize overview info information update updates between than better worse quarter happening announce""".split()
)


def _intents(q: str) -> set[str]:
    s = q.lower()
    out: set[str] = set()
    rules = {
        "news": r"\bnews\b|headline|what'?s happening|happening|announce",
        "fundamentals": r"fundamental|valuation|p/?e\b|\bpe ratio|margin|earnings|\beps\b|revenue|market cap|dividend|sector|\bbeta\b|valued",
        "history": r"histor|perform|trend|over the (?:past|last)|\bytd\b|\breturns?\b|chart|(?:past|last) (?:year|month|week|quarter)",
        "indicators": r"\brsi\b|\bsma\b|\bema\b|\bmacd\b|moving average|indicator|technical|overbought|oversold",
        "quote": r"price|quote|trading|trade at|\bcost|worth|how much|doing",
        "compare": r"\bcompare|\bvs\.?\b|versus|better than",
        "overview": r"tell me about|overview|summar|what do you know about",
        "watchlist": r"watch ?lists?",
        "portfolio": r"portfolio|holdings|my positions",
        "notes": r"\bnotes?\b",
    }
    for name, pat in rules.items():
        if re.search(pat, s):
            out.add(name)
    return out


def _period(q: str) -> str:
    s = q.lower()
    for pat, p in [
        (r"\bytd\b|year to date", "ytd"), (r"5 ?years?", "5y"), (r"\b(?:1 |one |past |last |12 months)?year\b|\b1y\b|12 months", "1y"),
        (r"6 ?months|half a year", "6mo"), (r"3 ?months|quarter", "3mo"), (r"\bweek\b|5 ?days", "5d"), (r"\btoday\b|intraday", "1d"),
    ]:
        if re.search(pat, s):
            return p
    return "1mo"


def _indicator_names(q: str) -> list[str]:
    s = q.lower()
    names: list[str] = []
    if "rsi" in s or "overbought" in s or "oversold" in s:
        names.append("rsi_14")
    for m in re.finditer(r"\b(sma|ema)[ _-]?(\d{1,3})\b|\b(\d{1,3})[- ]day (sma|ema|moving average)", s):
        kind = (m.group(1) or ("ema" if m.group(4) == "ema" else "sma"))
        n = m.group(2) or m.group(3)
        names.append(f"{kind}_{n}")
    if not any(n.startswith("sma") for n in names) and ("sma" in s or "moving average" in s):
        names += ["sma_20", "sma_50"]
    if not any(n.startswith("ema") for n in names) and re.search(r"\bema\b", s):
        names.append("ema_12")
    if "macd" in s:
        names.append("macd")
    if not names:
        names = ["rsi_14", "sma_20"]
    return list(dict.fromkeys(names))[:5]


def _tickers(text: str) -> list[str]:
    out = []
    for m in _TICKER_RE.finditer(text):
        t = m.group(1)
        if t not in _NOT_TICKERS and t not in out:
            out.append(t)
    return out


def _name_candidates(q: str) -> list[str]:
    """Words that may name a company: capitalised ones (not opening the sentence) first; other non-stopwords
    only when the question clearly asks about a stock."""
    words = re.findall(r"[A-Za-z][A-Za-z&.'-]{2,}", q)
    caps, other = [], []
    first = True
    for w in words:
        lw = re.sub(r"'s$", "", w.lower().strip(".'"))
        if not lw or lw in _STOPWORDS:
            first = False
            continue
        (caps if w[0].isupper() and not first else other).append(lw)
        first = False
    if caps:
        return list(dict.fromkeys(caps))[:2]
    if _intents(q) - {"watchlist", "portfolio", "notes"}:
        return list(dict.fromkeys(other))[:2]
    return []


class OfflineModel(BaseModelClient):
    """A deterministic, template-based stand-in for an LLM (always configured, never fails)."""

    provider = "offline"

    def __init__(self, model: str = "offline-template-v1") -> None:
        self.model = model

    # -- conversation state --------------------------------------------------------------------------
    @staticmethod
    def _turn(messages: list[dict]) -> tuple[str, list[dict], list[dict], list[tuple[str, dict]]]:
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        question = str(messages[last_user].get("content") or "") if last_user >= 0 else ""
        earlier = messages[:last_user] if last_user >= 0 else []
        after = messages[last_user + 1 :]
        calls = [tc for m in after if m.get("role") == "assistant" for tc in (m.get("tool_calls") or [])]
        results = []
        for m in after:
            if m.get("role") == "tool":
                parsed = parse_tool_message(str(m.get("content") or ""))
                if parsed:
                    results.append(parsed)
        return question, earlier, calls, results

    def generate_stream(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> Iterator[ModelEvent]:
        available = {t["function"]["name"] for t in (tools or []) if t.get("type") == "function"}
        question, earlier, calls, results = self._turn(messages)
        prompt_tokens = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
        planned: list[tuple[str, dict]] = []
        if available and opts.get("tool_choice") != "none":
            if not calls:
                planned = self._plan(question, earlier, available)
            elif results and all(name == "search_symbols" for name, _ in results):
                symbols = []
                for _, payload in results:
                    matches = payload.get("matches") or []
                    if matches and matches[0].get("symbol") not in symbols:
                        symbols.append(matches[0]["symbol"])
                planned = self._data_calls(question, symbols, available)
        if planned:
            n = len(calls)
            for i, (name, args) in enumerate(planned):
                yield ModelEvent("tool_call", tool_call=ToolCall(f"offline_{n + i + 1}", name, json.dumps(args)))
            yield ModelEvent("usage", usage=Usage(prompt_tokens, 0, prompt_tokens))
            yield ModelEvent("finish", finish_reason="tool_calls")
            return
        answer = self.write_answer(question, results)
        for piece in re.findall(r"\S+\s*|\s+", answer):
            yield ModelEvent("delta", text=piece)
        completion = estimate_tokens(answer)
        yield ModelEvent("usage", usage=Usage(prompt_tokens, completion, prompt_tokens + completion))
        yield ModelEvent("finish", finish_reason="stop")

    # -- planning ----------------------------------------------------------------------------------
    def _plan(self, question: str, earlier: list[dict], available: set[str]) -> list[tuple[str, dict]]:
        intents = _intents(question)
        symbols = _tickers(question)
        personal: list[tuple[str, dict]] = []
        if "watchlist" in intents:
            personal.append(("my_watchlists", {}))
        if "portfolio" in intents:
            personal.append(("my_portfolio", {}))
        if "notes" in intents:
            personal.append(("my_notes", {"symbol": symbols[0]} if symbols else {}))
        personal = [p for p in personal if p[0] in available]
        if personal:
            return personal
        if not symbols:
            # "what about its news?" continues the last symbol the user mentioned.
            for m in reversed(earlier):
                if m.get("role") == "user":
                    prev = _tickers(str(m.get("content") or ""))
                    if prev:
                        symbols = prev[:2]
                        break
        if symbols:
            return self._data_calls(question, symbols, available)
        names = _name_candidates(question)
        if names and "search_symbols" in available:
            return [("search_symbols", {"query": n, "limit": 3}) for n in names]
        return []

    @staticmethod
    def _data_calls(question: str, symbols: list[str], available: set[str]) -> list[tuple[str, dict]]:
        intents = _intents(question) - {"watchlist", "portfolio", "notes", "compare"}
        if "overview" in intents:
            intents |= {"quote", "fundamentals"}
        if not intents:
            intents = {"quote"}
        calls: list[tuple[str, dict]] = []
        for sym in symbols[:2]:
            if "quote" in intents:
                calls.append(("get_quote", {"symbol": sym}))
            if "news" in intents:
                calls.append(("get_news", {"symbol": sym, "limit": 5}))
            if "fundamentals" in intents:
                calls.append(("get_fundamentals", {"symbol": sym}))
            if "history" in intents:
                calls.append(("get_history_summary", {"symbol": sym, "period": _period(question)}))
            if "indicators" in intents:
                calls.append(("get_indicators", {"symbol": sym, "names": _indicator_names(question)}))
        return [c for c in calls if c[0] in available][:8]

    # -- writing ----------------------------------------------------------------------------------
    def write_answer(self, question: str, results: list[tuple[str, dict]]) -> str:
        lines = [OFFLINE_NOTICE, ""]
        if not results:
            lines.append(
                "I could not tell which stock or personal data you are asking about. "
                "Name a ticker (for example AAPL) and what you want: price, news, fundamentals, history or indicators."
            )
            return "\n".join(lines)
        for name, payload in results:
            err = payload.get("error")
            if err:
                args = payload.get("arguments") or {}
                what = name.replace("_", " ")
                target = f" for {args['symbol']}" if args.get("symbol") else ""
                lines.append(f"- Could not run {what}{target}: {err.get('title')}. {err.get('detail') or ''}".rstrip())
                continue
            tool = TOOLS.get(name)
            lines.extend(tool.text(payload) if tool else [f"- {name}: data received."])
        return "\n".join(lines).rstrip() + "\n"
