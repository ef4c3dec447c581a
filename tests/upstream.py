"""Fake upstream HTTP for provider tests: the real yfinance and Alpha Vantage adapter code runs, only the
transport is faked (no network).

Payloads live in ``tests/fixtures/upstream/<provider>/``; the README beside them says where each shape comes from.

- ``FakeYahoo``: a scripted Yahoo Finance. ``fake.session()`` is a real ``YahooSession`` (curl_cffi) whose lowest
  layer (``Session._request_once``, the call that would hand the request to libcurl) answers from routes, so
  yfinance's cookie/crumb handling, retries, JSON parsing and error hiding all run unchanged.
- ``FakeAlphaVantage``: an ``httpx.MockTransport`` answering per ``function``.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"


def upstream(provider: str, name: str) -> Any:
    """A JSON payload from the corpus."""
    return json.loads((UPSTREAM / provider / name).read_text())


@dataclass
class Reply:
    """One HTTP answer: JSON (dict/list), text or bytes body."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else bytes(self.body)


def timeout() -> Exception:
    from curl_cffi.requests.exceptions import Timeout

    return Timeout("Failed to perform, curl: (28) Operation timed out after 8001 milliseconds with 0 bytes received")


def connection_reset() -> Exception:
    from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError

    return CurlConnectionError("Failed to perform, curl: (56) Recv failure: Connection reset by peer")


# The answers yfinance's plumbing gets from Yahoo: fc.yahoo.com answers 404 while setting its cookie, the crumb
# endpoint a short token, the consent pages HTML.
_PLUMBING = [
    (r"^https://fc\.yahoo\.com", Reply(404, "<html><body>404 Not Found</body></html>")),
    (r"/v1/test/getcrumb$", Reply(200, "Ab3dEfGh1jK")),
    (r"^https://(guce|consent)\.yahoo\.com", Reply(200, "<html><body>consent</body></html>")),
]
_SERVER_ERROR_HTML = "<html><head><title>Yahoo</title></head><body>Will be right back...</body></html>"
_yf_cache_dir: str | None = None
_lock = threading.Lock()


def _isolate_yfinance_caches() -> None:
    """Point yfinance's on-disk caches (time zones, cookies) at a private directory, once per test process."""
    global _yf_cache_dir
    with _lock:
        if _yf_cache_dir is None:
            import yfinance

            _yf_cache_dir = tempfile.mkdtemp(prefix="yf-cache-")
            yfinance.set_tz_cache_location(_yf_cache_dir)


def shift_chart(body: dict[str, Any], today: date) -> dict[str, Any]:
    """The chart moved by whole weeks so its last bar is in the last 7 days (weekdays kept): yfinance cuts daily
    prices to the year before the real today."""
    body = json.loads(json.dumps(body))
    result = body["chart"]["result"][0]
    last = datetime.fromtimestamp(result["timestamp"][-1], timezone.utc).date()
    weeks = max(0, (today - last).days // 7)
    delta = int(timedelta(weeks=weeks).total_seconds())
    result["timestamp"] = [t + delta for t in result["timestamp"]]
    meta = result["meta"]
    meta["regularMarketTime"] += delta
    for part in meta["currentTradingPeriod"].values():
        part["start"] += delta
        part["end"] += delta
    return body


class FakeYahoo:
    """Routes: ``(regex on the URL, Reply | Exception | callable(method, url, params) -> Reply | Exception)``;
    the most recently added matching route answers. Every request is recorded in ``requests``."""

    def __init__(self) -> None:
        _isolate_yfinance_caches()
        from yfinance.data import YfData

        YfData.cache_get.cache_clear()  # yfinance's in-process GET cache outlives Ticker objects
        self.routes: list[tuple[re.Pattern[str], Any]] = [(re.compile(p), r) for p, r in _PLUMBING]
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # -- scripting ---------------------------------------------------------------------------
    def on(self, pattern: str, reply: Any) -> FakeYahoo:
        with self._lock:
            self.routes.append((re.compile(pattern), reply))
        return self

    def healthy(self) -> FakeYahoo:
        """Yahoo answering like on a normal day: AAPL has every kind of data, ZZZZZZ does not exist."""
        today = datetime.now(timezone.utc).date()
        chart = upstream("yahoo", "chart_aapl_1d.json")
        self.on(r"/v8/finance/chart/", Reply(404, upstream("yahoo", "chart_not_found.json")))
        self.on(r"/v8/finance/chart/AAPL$", lambda *_: Reply(200, shift_chart(chart, today)))
        self.on(r"/v10/finance/quoteSummary/", Reply(404, upstream("yahoo", "quote_summary_not_found.json")))
        self.on(r"/v10/finance/quoteSummary/AAPL$", Reply(200, upstream("yahoo", "quote_summary_aapl.json")))
        self.on(r"/v7/finance/quote", Reply(200, upstream("yahoo", "v7_quote_empty.json")))
        self.on(r"/v7/finance/quote", lambda m, u, params: Reply(200, upstream(
            "yahoo", "v7_quote_aapl.json" if (params or {}).get("symbols") == "AAPL" else "v7_quote_empty.json")))
        self.on(r"/fundamentals-timeseries/", Reply(200, upstream("yahoo", "timeseries_trailing_peg.json")))
        self.on(r"/v1/finance/search", lambda m, u, params: Reply(200, upstream(
            "yahoo", "search_apple.json" if "app" in str((params or {}).get("q", "")).lower() else "search_empty.json")))
        self.on(r"/xhr/ncp", Reply(200, upstream("yahoo", "ncp_news_aapl.json")))
        return self

    def fail_data(self, reply: Any) -> FakeYahoo:
        """Every data endpoint answers ``reply`` (an outage); cookie and crumb plumbing keeps working."""
        return self.on(r"^https://(query[12]\.finance\.yahoo\.com|finance\.yahoo\.com)/(?!v1/test/getcrumb)", reply)

    @staticmethod
    def tz(symbol: str, zone: str | None) -> None:
        """Put a symbol's time zone in yfinance's tz cache (None: forget it). Normally it is there: yfinance keeps
        it on disk for good after the first successful call."""
        import yfinance.cache

        yfinance.cache.get_tz_cache().store(symbol, zone)

    def data_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if re.search(r"finance\.yahoo\.com/(?!v1/test/getcrumb)", r["url"])]

    # -- transport ---------------------------------------------------------------------------
    def answer(self, method: str, url: str, params: Any, timeout_s: Any) -> Any:
        from curl_cffi.requests.headers import Headers
        from curl_cffi.requests.models import Response

        with self._lock:
            self.requests.append({"method": method, "url": url, "params": dict(params or {}), "timeout": timeout_s})
            route = next((r for p, r in reversed(self.routes) if p.search(url)), Reply(404, "no route"))
        reply = route(method, url, params) if callable(route) and not isinstance(route, (Reply, Exception)) else route
        if isinstance(reply, Exception):
            raise reply
        resp = Response()
        resp.url = url
        resp.status_code = reply.status
        resp.ok = reply.status < 400
        resp.reason = "OK" if reply.status < 400 else "Error"
        resp.content = reply.content()
        resp.headers = Headers({"content-type": "application/json;charset=utf-8", **reply.headers})
        return resp

    def session(self, *, timeout_s: float = 8.0, deadline_s: float = 20.0) -> Any:
        from shared.market.providers.yahoo_session import YahooSession

        fake = self

        class FakeTransportSession(YahooSession):  # type: ignore[misc]
            def _request_once(self, method: str, url: str, params: Any = None, **kw: Any) -> Any:
                return fake.answer(str(method), url, params, kw.get("timeout"))

        return FakeTransportSession(timeout_s=timeout_s, deadline_s=deadline_s)


SERVER_ERROR = Reply(503, _SERVER_ERROR_HTML, {"content-type": "text/html"})
INTERNAL_ERROR_JSON = Reply(500, {"chart": {"result": None, "error": {"code": "Internal Server Error", "description": "Server error occurred"}}})
INVALID_CRUMB = Reply(401, {"finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}})
TOO_MANY_REQUESTS = Reply(429, "Too Many Requests\r\n", {"content-type": "text/html"})
TOO_MANY_REQUESTS_RETRY_AFTER = Reply(429, "Too Many Requests\r\n", {"content-type": "text/html", "Retry-After": "30"})
# Yahoo's error object in an answer whose status says success. yfinance itself looks for it whatever the status
# (base.py `get_shares_full`: `json_data["finance"]["error"]["code"]`; scrapers/quote.py `_fetch_complementary`);
# the shape is the one Yahoo sends with its 4xx/5xx (`invalid_crumb.json`).
ERROR_OBJECT_IN_200 = Reply(200, {"finance": {"result": None, "error": {"code": "Internal Server Error",
                                                                        "description": "Service temporarily unavailable"}}})
EMPTY_BODY = Reply(200, b"")
MALFORMED_JSON = Reply(200, '{"chart": {"result": [{"meta": {"currency": "USD", "symb')


class FakeAlphaVantage:
    """``transport``: an httpx transport answering per ``function`` from ``routes`` (payload name, Reply or
    exception); ``requests`` records what was asked (the apikey included, to check it was sent)."""

    def __init__(self, routes: dict[str, Any] | None = None, default: Any = None) -> None:
        self.routes = dict(routes or {})
        self.default = default
        self.requests: list[Any] = []

    @property
    def transport(self) -> Any:
        import httpx

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            route = self.routes.get(request.url.params.get("function", ""), self.default)
            if isinstance(route, Exception):
                raise route
            if isinstance(route, Reply):
                return httpx.Response(route.status, content=route.content(), headers=route.headers)
            if route is None:
                return httpx.Response(404, text="no route")
            return httpx.Response(200, json=upstream("alpha_vantage", route))

        return httpx.MockTransport(handler)


