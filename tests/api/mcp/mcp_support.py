"""Helpers for the MCP tests: a loopback server and a connected `mcp` SDK client."""

from __future__ import annotations

import threading
import time
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Iterator

LEGACY, MODERN = "legacy", "auto"  # the initialize handshake (2025-11-25 and older) / 2026-07-28 after discovery


@contextmanager
def loopback(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)


@asynccontextmanager
async def connect(url: str, headers: dict[str, str], mode: str = LEGACY) -> AsyncIterator[Any]:
    """An initialized `mcp.Client` sending `headers` (the API key) on every request."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def bearer(headers: dict[str, str]) -> dict[str, str]:
    """The same API key as `Authorization: Bearer` (what MCP client configs send)."""
    return {"Authorization": f"Bearer {headers['X-API-Key']}"}


def raised(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first `kind` inside an exception (group): the SDK client raises through its task groups."""
    if isinstance(exc, kind):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        if (found := raised(inner, kind)) is not None:
            return found
    return None
