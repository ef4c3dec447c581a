"""The one HTTP session every yfinance call of this process goes through (imports curl_cffi: load on first use).

yfinance hides most HTTP failures: a 5xx chart answer becomes an empty frame, a 401 "Invalid Crumb" on
quoteSummary a near-empty ``info`` dict, a failed search or news call ``[]``. Its own exceptions cannot tell
"Yahoo says this symbol does not exist" from "Yahoo is down". This session records what Yahoo really answered
(status, Yahoo's JSON error code, transport error) for the calling thread, so the adapter can classify the
outcome from the evidence instead of guessing from the empty result.

It also bounds every request: yfinance uses 30 s for quoteSummary, news and its cookie/crumb dance, and one
logical call may make several requests; each request gets at most ``timeout_s`` and a call at most
``deadline_s`` in total.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from curl_cffi import requests as curl_requests
from curl_cffi.requests.exceptions import Timeout

from shared.resilience import retry_after_from

# Hosts and paths that carry data. Cookie and consent pages (fc.yahoo.com famously answers 404 while setting
# its cookie, guce/consent serve HTML) and the crumb endpoint are yfinance's plumbing: it tolerates their
# failures and lets the data request decide.
_DATA_HOSTS = frozenset({"query1.finance.yahoo.com", "query2.finance.yahoo.com", "finance.yahoo.com"})
_PLUMBING_PATHS = ("/v1/test/getcrumb",)


@dataclass(frozen=True)
class Exchange:
    """One HTTP request yfinance made, and what came back."""

    method: str
    path: str
    key: str  # path + query without the crumb: a retry of the same request has the same key
    status: int | None  # None: no HTTP answer (timeout, connection error)
    error: str | None = None  # transport error class name
    timed_out: bool = False
    retry_after: float | None = None
    yahoo_error: str | None = None  # Yahoo's JSON error code ("Not Found", "Unauthorized", "Bad Request")
    json_ok: bool = False  # the body parsed as JSON

    @property
    def is_data(self) -> bool:
        return self.path not in _PLUMBING_PATHS


@dataclass
class Observation:
    """The exchanges of one logical call, and its deadline."""

    deadline: float
    exchanges: list[Exchange] = field(default_factory=list)

    def finals(self, path_suffix: str | None = None) -> list[Exchange]:
        """The last attempt of every distinct data request (yfinance retries a failed request once)."""
        last: dict[str, Exchange] = {}
        for ex in self.exchanges:
            if ex.is_data and (path_suffix is None or ex.path.endswith(path_suffix)):
                last[ex.key] = ex
        return list(last.values())

    @property
    def failed(self) -> bool:
        return any(ex.status is None or ex.status >= 400 or not ex.json_ok or ex.yahoo_error is not None
                   for ex in self.finals())


class YahooSession(curl_requests.Session):  # type: ignore[misc]  # curl_cffi's Session is untyped generic
    """A curl_cffi session (browser impersonation, cookies kept for the process) that bounds and records requests.

    Guarantees: no request waits longer than ``timeout_s`` or past the current call's deadline (a request that
    cannot start before the deadline fails as a timeout without going out); inside ``observe()`` every request
    to a Yahoo data host is recorded for the calling thread (other threads' calls are kept apart).
    """

    def __init__(self, *, timeout_s: float = 8.0, deadline_s: float = 20.0, **kw: Any) -> None:
        kw.setdefault("impersonate", "chrome")
        super().__init__(**kw)
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self._tls = threading.local()

    @contextmanager
    def observe(self) -> Iterator[Observation]:
        """Record the requests this thread makes until the block ends (nested blocks share the outer one)."""
        outer: Observation | None = getattr(self._tls, "obs", None)
        if outer is not None:
            yield outer
            return
        obs = Observation(deadline=time.monotonic() + self.deadline_s)
        self._tls.obs = obs
        try:
            yield obs
        finally:
            self._tls.obs = None

    def request(self, method: Any, url: str, *args: Any, **kw: Any) -> Any:
        obs: Observation | None = getattr(self._tls, "obs", None)
        bound = self.timeout_s
        if obs is not None:
            bound = min(bound, obs.deadline - time.monotonic())
        asked = kw.get("timeout")
        kw["timeout"] = min(bound, float(asked)) if isinstance(asked, (int, float)) and asked > 0 else bound
        parts = urlsplit(url)
        record = obs is not None and parts.hostname in _DATA_HOSTS
        try:
            if kw["timeout"] <= 0:
                raise Timeout(f"deadline of {self.deadline_s:.0f} s for this call exceeded before {parts.path}")
            response = super().request(method, url, *args, **kw)
        except Exception as exc:
            if record and obs is not None:
                obs.exchanges.append(Exchange(str(method), parts.path, _key(parts.path, parts.query, kw.get("params")),
                                              None, type(exc).__name__, isinstance(exc, Timeout)))
            raise
        if record and obs is not None:
            obs.exchanges.append(_exchange(str(method), parts.path, _key(parts.path, parts.query, kw.get("params")), response))
        return response


def _key(path: str, query: str, params: Any) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query) if k != "crumb"]
    if isinstance(params, dict):
        pairs += [(str(k), str(v)) for k, v in params.items() if k != "crumb"]
    return path + "?" + "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _exchange(method: str, path: str, key: str, response: Any) -> Exchange:
    status = int(response.status_code)
    body: bytes = response.content or b""
    yahoo_error = None
    json_ok = False
    try:
        doc = json.loads(body)
        json_ok = True
    except ValueError:
        doc = None
    if isinstance(doc, dict) and len(doc) == 1:
        inner = next(iter(doc.values()))  # {"chart": {...}}, {"quoteSummary": {...}}, {"finance": {...}}
        err = inner.get("error") if isinstance(inner, dict) else None
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            yahoo_error = err["code"]
    retry_after = retry_after_from(response.headers) if status == 429 else None
    return Exchange(method, path, key, status, retry_after=retry_after, yahoo_error=yahoo_error, json_ok=json_ok)
