"""MCP tests: the app served by uvicorn on a loopback port, reached with the official `mcp` client SDK (its
Streamable HTTP client over httpx2), exactly as Claude Desktop, VS Code or the MCP Inspector reach it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tests.conftest import served_on_loopback  # noqa: E402


@pytest.fixture(scope="module")
def base_url(core):
    """The session's core (the one `client` serves too) behind uvicorn on loopback."""
    from devhost.app import build_asgi_app

    with served_on_loopback(build_asgi_app()) as url:
        yield url


@pytest.fixture(scope="module")
def mcp_url(base_url):
    return f"{base_url}/api/mcp"
