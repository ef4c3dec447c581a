"""One MongoClient per process, built from `Settings.mongodb`, plus the embedded fallback.

`build_database(settings)` is what the composition root calls once per worker:
a real MongoDB when `mongodb.uri` is set, the embedded store otherwise. Neither
the URI nor the password is ever logged; `describe_backend` gives a log-safe label.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from shared.errors import ConfigError

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.database import Database

    from shared.config.models import Settings
    from shared.data.embedded import EmbeddedMongoServer

logger = logging.getLogger(__name__)

_SCHEMES = ("mongodb+srv://", "mongodb://")


def _split_uri(uri: str) -> tuple[str, str, str, str]:
    """(scheme, userinfo, hosts, rest) where rest starts with '/' or '?' or is empty."""
    for scheme in _SCHEMES:
        if uri.startswith(scheme):
            break
    else:
        raise ConfigError("mongodb.uri must start with mongodb:// or mongodb+srv://")
    body = uri[len(scheme):]
    cut = len(body)
    for sep in ("/", "?"):
        idx = body.find(sep)
        if idx != -1:
            cut = min(cut, idx)
    authority, rest = body[:cut], body[cut:]
    userinfo, _, hosts = authority.rpartition("@")
    return scheme, userinfo, hosts, rest


def merge_password(uri: str, password: str | None) -> str:
    """Return `uri` with `password` (URL-encoded) as the password of the URI's user.

    A password already in the URI is replaced. A password without a username in
    the URI is a configuration error (it could never be used).
    """
    if not password:
        return uri
    scheme, userinfo, hosts, rest = _split_uri(uri)
    user = userinfo.split(":", 1)[0] if userinfo else ""
    if not user:
        raise ConfigError("MONGODB_PASSWORD is set but MONGODB_URI names no user")
    return f"{scheme}{user}:{quote_plus(password)}@{hosts}{rest}"


def describe_uri(uri: str, database: str) -> str:
    """Log-safe `mongodb://host:port/db` (no credentials, no options)."""
    scheme, _userinfo, hosts, rest = _split_uri(uri)
    path_db = rest.lstrip("/").split("?", 1)[0] if rest.startswith("/") else ""
    return f"{scheme}{hosts}/{path_db or database}"


def describe_backend(settings: Settings) -> str:
    """Log-safe description of the configured document store."""
    m = settings.mongodb
    if m.uri is None or not m.uri.get_secret_value().strip():
        return f"embedded ({m.local_data_dir})"
    return describe_uri(m.uri.get_secret_value().strip(), m.database)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword options every MongoClient of ours gets (timeouts bounded so outages fail fast)."""
    from datetime import UTC

    m = settings.mongodb
    return {
        "serverSelectionTimeoutMS": m.server_selection_timeout_ms,
        "timeoutMS": m.timeout_ms,
        "connectTimeoutMS": m.server_selection_timeout_ms,
        "appname": m.app_name,
        "retryWrites": m.retry_writes,
        "tz_aware": True,
        "tzinfo": UTC,
    }


def create_client(uri: str, settings: Settings, **overrides: Any) -> MongoClient:
    """A new MongoClient (does not connect yet: pymongo connects lazily in the background)."""
    from pymongo import MongoClient

    return MongoClient(uri, **{**client_options(settings), **overrides})


@dataclass(frozen=True)
class DatabaseHandle:
    """What `build_database` hands the composition root."""

    db: Database
    description: str
    close: Callable[[], None]
    embedded: bool

    def __iter__(self):  # allows `db, description, closer = build_database(settings)`
        return iter((self.db, self.description, self.close))


_registry_lock = threading.Lock()
_registry: dict[tuple[Any, ...], tuple[MongoClient, EmbeddedMongoServer | None, int]] = {}


def build_database(settings: Settings, *, embedded_file_name: str | None = None) -> DatabaseHandle:
    """The process's Database for `settings` (one client per process and backend).

    Real MongoDB when `settings.mongodb.uri` is set (password from
    `settings.mongodb.password` merged into it), otherwise the embedded store under
    `settings.mongodb.local_data_dir`. Calling it again with the same settings
    returns the same client; `close()` releases this caller's reference and closes
    the client (and embedded server) when the last reference is released.
    """
    m = settings.mongodb
    uri_secret = m.uri.get_secret_value().strip() if m.uri is not None else ""
    if uri_secret:
        password = m.password.get_secret_value() if m.password is not None else None
        key: tuple[Any, ...] = ("uri", merge_password(uri_secret, password), m.database)
    else:
        key = ("embedded", str(Path(m.local_data_dir).resolve()), embedded_file_name, m.database)
    description = describe_backend(settings)

    with _registry_lock:
        entry = _registry.get(key)
        if entry is None:
            server = None
            if key[0] == "uri":
                client = create_client(key[1], settings)
            else:
                from shared.data.embedded import DEFAULT_FILE_NAME, EmbeddedMongoServer

                server = EmbeddedMongoServer(m.local_data_dir, file_name=embedded_file_name or DEFAULT_FILE_NAME)
                # retryWrites off: the embedded server is a standalone, not a replica set.
                client = create_client(server.start(), settings, retryWrites=False)
            entry = (client, server, 0)
            logger.info("document store: %s", description)
        client, server, refs = entry
        _registry[key] = (client, server, refs + 1)

    closed = threading.Event()

    def close() -> None:
        if closed.is_set():
            return
        closed.set()
        with _registry_lock:
            current = _registry.get(key)
            if current is None:
                return
            c, s, n = current
            if n > 1:
                _registry[key] = (c, s, n - 1)
                return
            del _registry[key]
        c.close()
        if s is not None:
            s.close()

    return DatabaseHandle(db=client[m.database], description=description, close=close, embedded=server is not None)
