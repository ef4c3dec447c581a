"""A real `redis-server` on a free loopback port, for integration tests.

Usage as a pytest fixture (in any conftest.py):

    from tests.integration.redis_server import redis_server  # noqa: F401  (re-exported fixture)

    def test_x(redis_server):
        url = redis_server.url          # redis://127.0.0.1:<port>/0
        redis_server.pause()            # SIGSTOP: connections hang (timeouts)
        redis_server.resume()           # SIGCONT
        redis_server.kill()             # SIGKILL: connections refused
        redis_server.start()            # again, on the same port
        redis_server.flush()            # FLUSHALL

`redis_server_session` is one server for the whole session (no kill/pause there).

Without the binary the fixture SKIPS, unless the env var CI is set: then it FAILS
(CI must install redis-server). Nothing is persisted (no RDB/AOF); each server gets
its own temporary directory. Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator

import pytest

from tests.integration.required import missing

__all__ = ["RedisServer", "redis_server", "redis_server_binary", "redis_server_session", "require_redis_server"]


def redis_server_binary() -> str | None:
    """Path of redis-server (REDIS_SERVER_BIN overrides PATH lookup), or None."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("redis-server")


def require_redis_server() -> str:
    """The binary's path; pytest.skip when missing locally, pytest.fail when missing under CI."""
    binary = redis_server_binary()
    if binary is None:
        missing("redis-server binary not found (apt-get install redis-server)", required_by="CI")
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ping(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process that can be killed, paused and restarted on the same port."""

    def __init__(self, binary: str | None = None, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.binary = binary or require_redis_server()
        self.host = host
        self.port = port or free_port(host)
        self._dir = tempfile.mkdtemp(prefix="redis-test-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> "RedisServer":
        """Start (or restart) on ``self.port``; returns once the server answers PING."""
        if self.running:
            return self
        deadline = time.monotonic() + timeout
        while True:
            self._proc = subprocess.Popen(
                [
                    self.binary, "--port", str(self.port), "--bind", self.host,
                    "--save", "", "--appendonly", "no", "--dir", self._dir,
                    "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._paused = False
            while time.monotonic() < deadline and self._proc.poll() is None:
                if _ping(self.host, self.port):
                    return self
                time.sleep(0.02)
            if self._proc.poll() is None or time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on {self.host}:{self.port}")
            # Exited early (the port may be briefly unavailable after a kill): try again.
            time.sleep(0.1)

    def flush(self) -> None:
        """FLUSHALL: empty every database (to reuse one server across tests)."""
        with socket.create_connection((self.host, self.port), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            if not s.recv(16).startswith(b"+OK"):
                raise RuntimeError("FLUSHALL failed")

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing answers."""
        if self.running and not self._paused:
            os.kill(self._proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            self._paused = True

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        if self._proc is not None and self._paused:
            os.kill(self._proc.pid, signal.SIGCONT)
            self._paused = False

    def kill(self) -> None:
        """SIGKILL and reap: clients see refused connections until `start`."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=10)
        self._paused = False

    def stop(self) -> None:
        """Graceful SIGTERM (resuming a paused server first), SIGKILL after 5 s."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            if self._paused:
                os.kill(self._proc.pid, signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._paused = False

    def restart(self) -> "RedisServer":
        """Kill, then start again on the same port."""
        self.kill()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server per test (starts in ~50 ms); stopped and cleaned up after."""
    server = RedisServer(require_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    """One redis-server for the whole session (call `.flush()` between tests yourself).

    Tests that kill or pause the server must use the function-scoped `redis_server`.
    """
    server = RedisServer(require_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.close()
