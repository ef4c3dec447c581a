"""The MCP function under the Functions Python worker's own HTTP-streams machinery.

On Azure the worker (azure_functions_runtime) runs the extension's FastAPI web app on a local port; the host
forwards each HTTP request there with an `x-ms-invocation-id` header and, over gRPC, asks the worker to invoke
the function, which the worker's HttpCoordinator hands the FastAPI request and whose returned response the web app
sends. Here the worker's real server and coordinator run, and a stand-in plays the host's two parts (forward with
the invocation id; invoke the registered function), as `azure_functions_runtime.handle_event.invocation_request`
does for an HTTP v2 function. The gRPC channel is the one piece not exercised.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from shared.ai.tools import TOOLS
from tests.conftest import ADMIN_KEY


@pytest.fixture
async def worker_url(core):
    """The worker's HTTP-streams server (its real web app and coordinator) in this event loop."""
    from azure_functions_runtime.http_v2 import HttpV2Registry, initialize_http_server

    import function_app  # noqa: F401  (imports the HTTP streams extension, as the worker's indexing does)

    assert HttpV2Registry.http_v2_enabled()
    address = initialize_http_server("127.0.0.1")
    server = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "WebServer.serve")
    yield address
    server.cancel()
    await asyncio.gather(server, return_exceptions=True)


def host_stand_in() -> Any:
    """An httpx2 request hook doing the host's part: invocation id on the request, the invocation itself."""
    from azure_functions_runtime.http_v2 import http_coordinator, sync_http_request

    from devhost.app import registered_functions
    from function_app import app

    function = next(f for f in registered_functions(app) if f.get_function_name() == "mcp").get_user_function()

    class Invocation:  # the trigger binding's data the host sends: no route parameters on this route
        route_params: dict[str, str] = {}

    async def invoke(invocation_id: str) -> None:
        request = await http_coordinator.get_http_request_async(invocation_id)
        await sync_http_request(request, Invocation())
        try:
            response = await function(request)
        except Exception as exc:  # the worker hands a failed invocation's exception to the web app the same way
            response = exc
        http_coordinator.set_http_response(invocation_id, response)

    async def forward(request: Any) -> None:
        invocation_id = uuid.uuid4().hex
        request.headers["x-ms-invocation-id"] = invocation_id
        asyncio.get_running_loop().create_task(invoke(invocation_id))

    return forward


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_works_through_the_workers_http_streams_server(worker_url, mode):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx2.AsyncClient(headers=headers, event_hooks={"request": [host_stand_in()]}, timeout=30) as http:
        async with Client(streamable_http_client(f"{worker_url}/api/mcp", http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            quote = await client.call_tool("get_quote", {"symbol": "AAPL"})
            streamed = await client.call_tool("get_quote", {"symbol": "MSFT"}, progress_callback=on_progress)
            watchlists = await client.call_tool("my_watchlists", {})
    assert [t.name for t in tools.tools] == [t.name for t in TOOLS]
    assert quote.structured_content["provenance"]["source"] == "offline" and quote.structured_content["provenance"]["as_of"]
    assert streamed.structured_content["symbol"] == "MSFT" and progress == [0, 1]  # relayed as SSE through FastAPI
    assert not watchlists.is_error
