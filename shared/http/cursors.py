"""Tamper-proof pagination cursors.

The data layer's cursor (the last row's sort values) leaves the API sealed with an HMAC over
the route, the caller and the cursor, and comes back through `open()`. A cursor that was
edited, forged, truncated, or issued for another list or another caller is 422 "Invalid
pagination cursor" before any query is built. The key is `CURSOR_SIGNING_KEY` (Key Vault:
`CURSOR-SIGNING-KEY`), required to serve outside local; locally one is generated once and kept
in the data directory, so cursors survive restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ConfigError, InvalidCursor

if TYPE_CHECKING:
    from shared.config import Settings

KEY_FILE = "cursor-signing.key"
_MAC_BYTES = 16  # 128-bit tag: forging one is out of reach, and it keeps cursors short
_MAC_CHARS = 22  # unpadded base64url of _MAC_BYTES


class CursorSeal:
    """Seals cursors for one scope (route + caller) and opens only what it sealed for that scope."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, cursor: str, scope: str) -> str:
        digest = hmac.new(self._key, f"{scope}\n{cursor}".encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def seal(self, cursor: str, scope: str) -> str:
        """`cursor` with its tag appended (same alphabet: the query-string pattern still holds)."""
        return cursor + self._mac(cursor, scope)

    def open(self, sealed: str, scope: str) -> str:
        """The cursor `seal(cursor, scope)` was given; InvalidCursor (422) for anything else."""
        cursor, tag = sealed[:-_MAC_CHARS], sealed[-_MAC_CHARS:]
        if not cursor or not hmac.compare_digest(tag, self._mac(cursor, scope)):
            raise InvalidCursor()
        return cursor

    @classmethod
    def from_settings(cls, settings: Settings) -> CursorSeal:
        """The configured key; locally (APP_ENV local/test) without one, the data directory's generated key."""
        configured = settings.http.cursor_signing_key
        if configured is not None:
            return cls(configured.get_secret_value().encode())
        if not settings.is_local:
            # Checked here, where the app starts serving, not at load: CLI tools (migrations) page nothing.
            raise ConfigError(f"CURSOR_SIGNING_KEY is required when APP_ENV={settings.app.env}")
        return cls(local_key(Path(settings.mongodb.local_data_dir)))


def local_key(data_dir: Path) -> bytes:
    """The key in `data_dir/cursor-signing.key`, created (0600) on first use. Safe when several
    processes start at once: the file appears complete or not at all (hard link of a written temp file)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use its key
            pass
        finally:
            tmp.unlink()
    return path.read_bytes().strip()
