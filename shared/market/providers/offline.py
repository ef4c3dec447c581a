"""Offline market data: deterministic, plausible data for the built-in catalogue, no network and no keys.

Prices are a geometric random walk per symbol, generated from a fixed base date with a
stream seeded by the symbol, so a given (symbol, date) always has the same bar. Every datum
says ``source: "offline"``.
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from bisect import bisect_left
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Sequence

from shared.errors import ApiError, NotFound, UpstreamUnsupported
from shared.market.hours import CLOSE_TIME, NEW_YORK, OPEN_TIME, is_trading_day, quote_as_of
from shared.market.models import Bar, Fundamentals, History, News, NewsItem, Provenance, Quote, SymbolMatch
from shared.market.periods import INTRADAY, date_range
from shared.market.symbols import builtin_index, builtin_symbols

NAME = "offline"
BASE_DATE = date(2015, 1, 2)
# Prices are scaled so that the close on ANCHOR_DATE equals the symbol's profile price: the walk
# then stays in a plausible range around today instead of drifting for a decade.
ANCHOR_DATE = date(2025, 1, 2)
_SLOTS = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _profile(symbol: str) -> dict[str, float]:
    r = random.Random(_seed("profile", symbol))
    kind = builtin_index().get(symbol, {}).get("type", "equity")
    if kind == "index":
        return {"start": r.uniform(1500, 12000), "vol": r.uniform(0.008, 0.012), "drift": 0.0003, "volume": r.uniform(2e9, 5e9)}
    if kind == "etf":
        return {"start": r.uniform(40, 300), "vol": r.uniform(0.007, 0.013), "drift": 0.0003, "volume": r.uniform(5e6, 8e7)}
    return {"start": r.uniform(15, 250), "vol": r.uniform(0.011, 0.022), "drift": r.uniform(0.0001, 0.0007), "volume": r.uniform(2e6, 6e7)}


class _Walk:
    """One symbol's full-day bars as compact columns (about 120 KB for ten years)."""

    __slots__ = ("days", "o", "h", "l", "c", "v")

    def __init__(self) -> None:
        self.days = array("l")  # date ordinals
        self.o, self.h, self.l, self.c = array("d"), array("d"), array("d"), array("d")
        self.v = array("q")


# Sized above the catalogue (~160 symbols, a few `last` days each): evicting a walk costs ~18 ms to rebuild.
@lru_cache(maxsize=512)
def _daily_walk(symbol: str, last: date) -> _Walk:
    """Full-day bars from BASE_DATE to ``last`` (inclusive); a bar never depends on ``last``."""
    p = _profile(symbol)
    r = random.Random(_seed("walk", symbol))
    vol, drift = p["vol"], p["drift"]
    prev = 1.0
    w = _Walk()
    anchor_close = None
    d = BASE_DATE
    stop = max(last, ANCHOR_DATE)
    while d <= stop:
        if is_trading_day(d):
            ret = r.gauss(drift - vol * vol / 2, vol)
            o = prev * math.exp(r.gauss(0, vol / 4))
            c = prev * math.exp(ret)
            h = max(o, c) * (1 + abs(r.gauss(0, vol / 2)))
            lo = min(o, c) * (1 - abs(r.gauss(0, vol / 2)))
            v = int(p["volume"] * math.exp(r.gauss(0, 0.35)) * (1 + 8 * abs(ret)))
            if d <= ANCHOR_DATE:
                anchor_close = c
            if d <= last:
                w.days.append(d.toordinal())
                w.o.append(o)
                w.h.append(h)
                w.l.append(lo)
                w.c.append(c)
                w.v.append(v)
            prev = c
        d += timedelta(days=1)
    k = p["start"] / (anchor_close or 1.0)
    for col in (w.o, w.h, w.l, w.c):
        for i in range(len(col)):
            col[i] = round(col[i] * k, 2)
    return w


def _session_fraction(now: datetime, d: date) -> float:
    """Share of day ``d``'s session elapsed at ``now`` (0 before the open, 1 after the close)."""
    ny = now.astimezone(NEW_YORK)
    if ny.date() != d:
        return 1.0 if ny.date() > d else 0.0
    open_dt = datetime.combine(d, OPEN_TIME, tzinfo=NEW_YORK)
    close_dt = datetime.combine(d, CLOSE_TIME, tzinfo=NEW_YORK)
    return min(1.0, max(0.0, (ny - open_dt) / (close_dt - open_dt)))


def _midnight(d: date) -> datetime:
    """A daily bar's stamp: the day's midnight in New York (as Yahoo stamps daily bars), in UTC."""
    return datetime.combine(d, time(0), tzinfo=NEW_YORK).astimezone(timezone.utc)


def _session_close_utc(d: date) -> datetime:
    return datetime.combine(d, CLOSE_TIME, tzinfo=NEW_YORK).astimezone(timezone.utc)


class OfflineProvider:
    """Deterministic demo data for the ~160 built-in tickers; unknown symbols raise NotFound."""

    name = NAME

    def __init__(self, *, clock: Callable[[], datetime] | None = None, authoritative: bool = True) -> None:
        """``authoritative``: the catalogue is the whole universe (offline is the only provider configured), so a
        symbol outside it is unknown (NotFound). Behind real providers it is a fallback that knows a demo subset:
        a symbol outside it is UpstreamUnsupported, never "unknown" because a real provider was down."""
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._authoritative = authoritative

    # -- helpers ---------------------------------------------------------------------------
    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)

    def _entry(self, symbol: str) -> dict[str, Any]:
        entry = builtin_index().get(symbol)
        if entry is None:
            if not self._authoritative:
                raise UpstreamUnsupported(f"{symbol} is not in the offline catalogue", provider=NAME)
            raise NotFound(f"Unknown symbol {symbol}", extra={"symbol": symbol})
        return entry

    def _bars_until_now(self, symbol: str, first: date | None = None) -> list[Bar]:
        """Daily bars from ``first`` up to now; today's bar is partial while the session runs and absent before the open."""
        now = self._now()
        today = now.astimezone(NEW_YORK).date()
        w = _daily_walk(symbol, today)
        lo_idx = bisect_left(w.days, first.toordinal()) if first else 0
        bars: list[Bar] = []
        for i in range(lo_idx, len(w.days)):
            d = date.fromordinal(w.days[i])
            o, h, lo, c, v = w.o[i], w.h[i], w.l[i], w.c[i], int(w.v[i])
            frac = _session_fraction(now, d)
            if frac <= 0:
                continue
            if frac < 1:
                c2 = round(o + (c - o) * frac, 2)
                h = round(max(o, c2) + (h - max(o, c)) * frac, 2)
                lo = round(min(o, c2) - (min(o, c) - lo) * frac, 2)
                c, v = c2, int(v * frac)
            bars.append(Bar(ts=_midnight(d), open=o, high=h, low=lo, close=c, volume=v))
        return bars

    def _recent(self, symbol: str, days: int) -> list[Bar]:
        return self._bars_until_now(symbol, self._now().date() - timedelta(days=days))

    def _prov(self, as_of: datetime | None) -> Provenance:
        return Provenance(source=NAME, as_of=as_of, fetched_at=self._now())

    # -- roles -----------------------------------------------------------------------------
    def get_quote(self, symbol: str) -> Quote:
        entry = self._entry(symbol)
        bars = self._recent(symbol, 14)
        last, prev = bars[-1], bars[-2]
        now = self._now()
        as_of = quote_as_of(now, last.ts.date())
        change = last.close - prev.close
        return Quote(
            symbol=symbol,
            price=last.close,
            currency=entry.get("currency") or "USD",
            change=round(change, 4),
            change_percent=round(change / prev.close * 100, 4),
            previous_close=prev.close,
            open=last.open,
            day_high=last.high,
            day_low=last.low,
            volume=last.volume,
            market_cap=self._market_cap(symbol, last.close),
            provenance=self._prov(as_of),
        )

    def get_quotes_batch(self, symbols: Sequence[str]) -> dict[str, Quote | ApiError]:
        out: dict[str, Quote | ApiError] = {}
        for s in symbols:
            try:
                out[s] = self.get_quote(s)
            except ApiError as exc:
                out[s] = exc
        return out

    def get_history(self, symbol: str, *, period: str = "1mo", interval: str = "1d", start: date | None = None, end: date | None = None) -> History:
        entry = self._entry(symbol)
        today = self._now().astimezone(NEW_YORK).date()
        first, last = date_range(period, today, start, end)
        if start is None and end is None and period in ("1d", "5d"):
            # Like Yahoo: the last 1/5 sessions, even before today's open.
            daily = self._recent(symbol, 14)[-int(period[0]):]
        else:
            daily = [b for b in self._bars_until_now(symbol, first) if b.ts.date() <= last]
        if interval in INTRADAY:
            bars = [ib for b in daily for ib in self._intraday(symbol, b, interval)]
        elif interval == "1wk":
            bars = _aggregate(daily, lambda d: d - timedelta(days=d.weekday()))
        elif interval == "1mo":
            bars = _aggregate(daily, lambda d: d.replace(day=1))
        else:
            bars = daily
        if not bars:
            raise NotFound(f"No offline bars for {symbol} in the requested range", extra={"symbol": symbol})
        return History(symbol=symbol, interval=interval, bars=bars, currency=entry.get("currency") or "USD", provenance=self._prov(bars[-1].ts))

    def _intraday(self, symbol: str, day_bar: Bar, interval: str) -> list[Bar]:
        """Split a daily bar into session slots with a seeded Brownian bridge from open to close."""
        d = day_bar.ts.date()
        step = _SLOTS[interval]
        minutes = int(390 * _session_fraction(self._now(), d))
        n = max(1, math.ceil(minutes / step))
        r = random.Random(_seed("intraday", symbol, d.isoformat(), interval))
        walk = [0.0]
        for _ in range(n):
            walk.append(walk[-1] + r.gauss(0, 1))
        o, c = day_bar.open, day_bar.close
        lo_b, hi_b = day_bar.low, day_bar.high
        scale = (hi_b - lo_b) / 6 or 0.01
        path = [min(hi_b, max(lo_b, o + (c - o) * i / n + (walk[i] - walk[-1] * i / n) * scale)) for i in range(n + 1)]
        start = datetime.combine(d, OPEN_TIME, tzinfo=NEW_YORK).astimezone(timezone.utc)
        vol_each = (day_bar.volume or 0) // n
        bars = []
        for i in range(n):
            a, b = path[i], path[i + 1]
            wig = abs(r.gauss(0, scale / 4))
            bars.append(Bar(ts=start + timedelta(minutes=step * i), open=round(a, 2), high=round(min(hi_b, max(a, b) + wig), 2),
                            low=round(max(lo_b, min(a, b) - wig), 2), close=round(b, 2), volume=vol_each))
        return bars

    def _market_cap(self, symbol: str, price: float) -> float | None:
        if builtin_index()[symbol].get("type") != "equity":
            return None
        r = random.Random(_seed("shares", symbol))
        shares = 10 ** r.uniform(8.3, 10.2)
        return round(price * shares, -3)

    def get_fundamentals(self, symbol: str) -> Fundamentals:
        entry = self._entry(symbol)
        bars = self._recent(symbol, 370)
        price = bars[-1].close
        year = bars[-252:]
        is_equity = entry.get("type") == "equity"
        r = random.Random(_seed("fundamentals", symbol))
        pe = r.uniform(9, 45) if is_equity else None
        mcap = self._market_cap(symbol, price)
        return Fundamentals(
            symbol=symbol,
            name=entry["name"],
            sector=entry.get("sector"),
            industry=entry.get("sector"),
            exchange=entry.get("exchange"),
            currency=entry.get("currency") or "USD",
            market_cap=mcap,
            pe_ratio=round(pe, 2) if pe else None,
            forward_pe=round(pe * r.uniform(0.75, 1.05), 2) if pe else None,
            eps=round(price / pe, 2) if pe else None,
            dividend_yield=round(r.choice([0.0, 0.0, r.uniform(0.004, 0.045)]), 4) if is_equity else round(r.uniform(0.0, 0.02), 4),
            beta=round(r.uniform(0.6, 1.8), 2) if is_equity else (1.0 if entry.get("type") == "index" else round(r.uniform(0.8, 1.2), 2)),
            profit_margin=round(r.uniform(0.03, 0.35), 4) if is_equity else None,
            operating_margin=round(r.uniform(0.05, 0.45), 4) if is_equity else None,
            revenue=round(mcap / r.uniform(1.0, 10.0), -3) if mcap else None,
            week52_high=max(b.high for b in year),
            week52_low=min(b.low for b in year),
            description=f"{entry['name']} ({symbol}), listed on {entry.get('exchange')}. Offline demo data: generated, not real figures.",
            provenance=self._prov(bars[-1].ts),
        )

    def get_news(self, symbol: str, limit: int = 10) -> News:
        entry = self._entry(symbol)
        bars = self._recent(symbol, 21)
        items = []
        topics = ["quarterly earnings", "analyst ratings", "sector rotation", "interest-rate outlook", "product news", "guidance", "supply chain", "institutional flows"]
        for i, bar in enumerate(reversed(bars[-min(limit, 8):])):
            d = bar.ts.date()
            prev = bars[-2 - i] if len(bars) >= 2 + i else bar
            move = (bar.close - prev.close) / prev.close * 100 if prev.close else 0.0
            r = random.Random(_seed("news", symbol, d.isoformat()))
            topic = r.choice(topics)
            verb = "rise" if move >= 0 else "fall"
            title = f"{entry['name']} shares {verb} {abs(move):.1f}% as investors weigh {topic}"
            published = datetime.combine(d, time(r.randint(13, 21), r.randint(0, 59)), tzinfo=timezone.utc)
            items.append(NewsItem(
                id=hashlib.sha1(f"{symbol}|{d}|{i}".encode()).hexdigest()[:16],
                symbol=symbol,
                title=title,
                summary=f"Offline demo item: {symbol} closed at {bar.close:.2f} on {d.isoformat()}; market attention on {topic}.",
                publisher="Offline Wire",
                url=None,
                published_at=min(published, self._now()),
                sentiment=round(max(-1.0, min(1.0, move / 5 + r.uniform(-0.2, 0.2))), 3),
            ))
        return News(symbol=symbol, items=items[:limit], provenance=self._prov(items[0].published_at if items else None))

    def search_symbols(self, query: str, limit: int = 10) -> list[SymbolMatch]:
        matches = search_catalogue(builtin_symbols(), query, limit)
        if not matches and not self._authoritative:  # "no match" in a demo subset says nothing about the market
            raise UpstreamUnsupported(f"No offline catalogue match for {query!r}", provider=NAME)
        return matches


def search_catalogue(rows: Sequence[dict[str, Any]], query: str, limit: int = 10) -> list[SymbolMatch]:
    """Rank catalogue rows against a query: exact symbol > symbol prefix > name word prefix > name substring."""
    q = (query or "").strip().upper()
    if not q:
        return []
    scored = []
    for row in rows:
        sym, name = row["symbol"], row["name"].upper()
        if sym == q:
            score = 1.0
        elif sym.startswith(q):
            score = 0.9 - 0.01 * (len(sym) - len(q))
        elif any(w.startswith(q) for w in name.replace(",", " ").split()):
            score = 0.7
        elif q in name:
            score = 0.5
        else:
            continue
        scored.append((score, sym, row))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [
        SymbolMatch(symbol=row["symbol"], name=row["name"], exchange=row.get("exchange"), type=row.get("type"),
                    currency=row.get("currency"), score=round(score, 3))
        for score, _, row in scored[: max(1, limit)]
    ]


def _aggregate(bars: list[Bar], bucket: Callable[[date], date]) -> list[Bar]:
    out: list[Bar] = []
    groups: dict[date, list[Bar]] = {}
    for b in bars:
        groups.setdefault(bucket(b.ts.date()), []).append(b)
    for key in sorted(groups):
        g = groups[key]
        out.append(Bar(ts=_midnight(key), open=g[0].open, high=max(b.high for b in g),
                       low=min(b.low for b in g), close=g[-1].close, volume=sum(b.volume or 0 for b in g)))
    return out
