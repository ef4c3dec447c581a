"""Helpers for the MCP tests: a connected `mcp` SDK client (the server: tests.conftest.served_on_loopback)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

LEGACY, MODERN = "legacy", "auto"  # the initialize handshake (2025-11-25 and older) / 2026-07-28 after discovery


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
