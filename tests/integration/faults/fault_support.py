"""Helpers shared by the fault-injection tests: serve a custom Core, check problem bodies, dead/hung sockets."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator

from tests.conftest import ADMIN_KEY, make_settings

ADMIN = {"X-API-Key": ADMIN_KEY}


@contextlib.contextmanager
def serve(settings: Any, *, seed: bool = True, **build_kw: Any) -> Iterator[Any]:
    """Build a Core from `settings` (+ build_core keyword overrides), install it, yield a TestClient."""
    from starlette.testclient import TestClient

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    core = build_core(settings, **build_kw)
    if seed:
        core.services.auth.seed_local_admin()
    previous = set_core(core)
    try:
        with TestClient(build_asgi_app(), base_url="http://testserver") as client:
            client.core = core  # type: ignore[attr-defined]
            yield client
        # Whatever the fault, no request of the scenario ended in an unhandled 500.
        served = core.metrics.snapshot()["requests"]
        assert served, "the scenario made requests"
        assert not [r for r in served if r["status"] >= 500 and r["status"] not in (502, 503)], served
    finally:
        set_core(previous)
        core.close()


def assert_problem(response: Any, status: int, type_slug: str | None = None) -> dict:
    """An RFC 9457 body with the expected status (and type), never an unhandled 500."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["request_id"]
    assert body["type"] != "/problems/internal-error"
    if type_slug is not None:
        assert body["type"] == f"/problems/{type_slug}", body
    return body


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HungServer:
    """Accepts TCP connections on loopback and never answers (a hung peer). Subclasses answer in `_handle`."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        """Held open, never read or written."""

    def __enter__(self) -> "HungServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self._sock.close()


class TricklingServer(HungServer):
    """Answers each HTTP request with a 200 whose body it sends one byte every `every_s` seconds (a slowloris
    peer: never silent long enough for a read timeout). `sent` counts the body bytes that went out."""

    def __init__(self, body: bytes, every_s: float, content_type: str = "application/json") -> None:
        super().__init__()
        self._body, self._every, self._type = body, every_s, content_type
        self.sent = 0

    def _handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {self._type}\r\nContent-Length: {len(self._body)}\r\n\r\n"
        try:
            conn.sendall(head.encode())
            for byte in self._body:
                if self._stop.wait(self._every):
                    return
                conn.sendall(bytes([byte]))
                self.sent += 1
        except OSError:  # the client gave up
            pass


def timed(fn, *args: Any, **kw: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kw)
    return result, time.perf_counter() - started


__all__ = ["ADMIN", "ADMIN_KEY", "HungServer", "TricklingServer", "assert_problem", "closed_port", "make_settings", "serve",
           "timed"]
