"""Structured JSON logging with request context and secret redaction.

Every record carries the request id of the request it belongs to (a contextvar set by
the pipeline). The redaction filter runs on every handler, so a secret cannot reach a
log line whatever code logs it: API keys, Authorization/X-API-Key headers, passwords in
connection strings, `apikey=` query parameters and any registered secret value.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Iterable

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)


@contextmanager
def bound_request_id(request_id: str | None = None) -> Iterator[str]:
    """Log records inside the block carry `request_id` (a new one when None): work outside an HTTP
    request (a timer run, a queued job) is followed in the log like a request."""
    rid = request_id or uuid.uuid4().hex
    token = request_id_var.set(rid)
    try:
        yield rid
    finally:
        request_id_var.reset(token)


_PATTERNS = [
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+(?P<post>@)"), r"\g<pre>***\g<post>"),
    (re.compile(r"(?i)(?P<pre>[?&]api_?key=)[^&\s\"']+"), r"\g<pre>***"),
    (re.compile(r"(?i)(?P<pre>\b(?:authorization|x-api-key)\b[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"',}]+"), r"\g<pre>***"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"), "Bearer ***"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), "sk-***"),
    (re.compile(r"\bsak_[A-Za-z0-9_\-]{16,}"), "sak_***"),
    (re.compile(r"(?i)(?P<pre>\b(?:password|passwd|pwd|secret|api_key|apikey|accountkey)\s*[=:]\s*)[^;\s&\"',]+"), r"\g<pre>***"),
]

_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (from config) so they are masked wherever they appear."""
    with _secrets_lock:
        for value in values:
            if value and len(value) >= 4:
                _known_secrets.add(value)


def redact(text: str) -> str:
    for value in _known_secrets:
        if value in text:
            text = text.replace(value, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record's message (and args) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(record.__dict__.items()):  # extras reach JSON lines and telemetry as attributes
            if key not in _RESERVED and isinstance(value, str):
                record.__dict__[key] = redact(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        uid = getattr(record, "user_id", None) or user_id_var.get()
        if uid:
            out["user_id"] = uid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out and not key.startswith("_") and value is not None:
                out[key] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        return redact(json.dumps(out, default=str))


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


_configured = False


def configure_logging(level: str = "INFO", *, json_output: bool = True) -> None:
    """JSON lines with request context and secrets masked, each record written once (idempotent).

    Under Azure Functions the root logger already holds the worker's handler, which forwards every
    record to the host and so to Application Insights: records go out through it, formatted here, and
    no stderr handler is added (the host also ships the worker's stderr, so each record would arrive
    twice). A bare process (the local host, a CLI) gets a stderr handler.
    """
    global _configured
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _configured:
        return
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    formatter = JsonFormatter() if json_output else logging.Formatter("%(levelname)s %(name)s %(message)s")
    for handler in root.handlers:
        handler.setFormatter(formatter)
    install_filters(root)
    # mcp: the MCP endpoint runs one SDK session manager per request, whose start/stop lines say nothing.
    for noisy in ("httpx", "httpcore", "urllib3", "azure", "pymongo", "yfinance", "openai", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _configured = True


def redact_at_source(*names: str) -> None:
    """Redact the records of these loggers before any handler sees them, including handlers added later without
    ``install_filters`` (an SDK's or a test harness's). For loggers that write secrets by design, e.g. httpx's
    request lines with an ``apikey=`` query (idempotent)."""
    for name in names:
        source = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in source.filters):
            source.addFilter(RedactingFilter())


def install_filters(logger: logging.Logger) -> None:
    """Put the redaction filter on every handler of `logger` (handlers, not loggers, see every record)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
            handler.addFilter(RedactingFilter())
