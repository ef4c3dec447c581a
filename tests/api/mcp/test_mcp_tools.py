"""The MCP endpoint through the real `mcp` client SDK: protocol negotiation, the tool list, market and personal tool
calls (structured results with provenance, owner scoping), tool errors, progress over SSE, concurrency."""

from __future__ import annotations

import asyncio

import httpx
import jsonschema
import pytest
from mcp_support import LEGACY, MODERN, bearer, connect

from shared.ai.tools import TOOLS
from tests.conftest import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ACCEPT = {"Accept": "application/json, text/event-stream"}
ERAS = [LEGACY, MODERN]


def initialize(version: str) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}


@pytest.mark.parametrize("asked, answered", [("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
                                             ("1999-01-01", "2025-11-25")])
def test_initialize_negotiates_the_version_and_issues_no_session(mcp_url, asked, answered):
    r = httpx.post(mcp_url, json=initialize(asked), headers={**ADMIN, **ACCEPT})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "mcp-session-id" not in r.headers  # stateless: no session to keep, none to route to
    result = r.json()["result"]
    assert result["protocolVersion"] == answered
    assert result["serverInfo"]["name"] == "stockagent" and result["capabilities"]["tools"] is not None
    assert {"resources", "prompts"} <= set(result["capabilities"])


def test_a_request_carrying_a_session_id_is_served_without_one(mcp_url):
    """A stateless server never issues Mcp-Session-Id; a client that sends one anyway is served all the same."""
    r = httpx.post(mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                   headers={**ADMIN, **ACCEPT, "Mcp-Session-Id": "made-up", "MCP-Protocol-Version": "2025-11-25"})
    assert r.status_code == 200 and "mcp-session-id" not in r.headers
    assert len(r.json()["result"]["tools"]) == len(TOOLS)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_no_sse_stream_and_no_session_to_delete(mcp_url, method):
    r = httpx.request(method, mcp_url, headers={**ADMIN, "Accept": "text/event-stream"})
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_unsupported_protocol_version_header_is_400(mcp_url):
    r = httpx.post(mcp_url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                   headers={**ADMIN, **ACCEPT, "MCP-Protocol-Version": "1999-01-01"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] < 0


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_are_listed_with_valid_schemas_and_truthful_annotations(mcp_url, mode):
    async with connect(mcp_url, ADMIN, mode) as client:
        assert (client.protocol_version == "2026-07-28") == (mode == MODERN)
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert list(tools) == [t.name for t in TOOLS]
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.input_schema["type"] == tool.output_schema["type"] == "object"
        assert tool.title and tool.description
        hints = tool.annotations
        # Every tool reads; none changes anything (alerts and reports will bring tools that do).
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (True, False, True)
        assert hints.open_world_hint == (tool.name != "my_watchlists" and tool.name != "my_notes")


@pytest.mark.parametrize("mode", ERAS)
async def test_market_tool_returns_structured_content_with_provenance(mcp_url, mode):
    async with connect(mcp_url, ADMIN, mode) as client:
        # The client validates structured content against the tool's outputSchema (it raises otherwise).
        quote = await client.call_tool("get_quote", {"symbol": "aapl"})
        batch = await client.call_tool("get_quotes", {"symbols": ["AAPL", "MSFT"]})
    assert not quote.is_error
    data = quote.structured_content
    assert data["symbol"] == "AAPL" and isinstance(data["price"], float)
    assert data["provenance"]["source"] == "offline" and data["provenance"]["as_of"]
    text = quote.content[0].text
    assert f"source: offline, as of {data['provenance']['as_of']}" in text and repr(data["price"]) in text
    assert [i["symbol"] for i in batch.structured_content["items"]] == ["AAPL", "MSFT"]
    assert all(i["provenance"]["source"] == "offline" for i in batch.structured_content["items"])


async def test_every_tool_answers_valid_structured_content(mcp_url, make_user, client):
    """One call of each tool; the SDK client checks each result against the tool's outputSchema."""
    _, headers = make_user()
    assert client.post("/api/v1/watchlists", json={"name": "Tech", "symbols": ["AAPL"]}, headers=headers).status_code == 201
    portfolio = client.post("/api/v1/portfolios", json={"name": "Main"}, headers=headers).json()
    client.post(f"/api/v1/portfolios/{portfolio['id']}/positions", json={"symbol": "MSFT", "quantity": 2, "cost_basis": 100},
                headers=headers)
    client.post("/api/v1/notes", json={"title": "Earnings", "body": "Wait", "symbol": "AAPL"}, headers=headers)
    calls = {
        "get_quote": {"symbol": "MSFT"}, "get_quotes": {"symbols": ["MSFT", "NVDA"]},
        "get_history_summary": {"symbol": "MSFT", "period": "5d", "interval": "1h"},
        "get_fundamentals": {"symbol": "MSFT"}, "get_news": {"symbol": "MSFT", "limit": 2},
        "get_indicators": {"symbol": "MSFT", "names": ["rsi_14", "macd", "bbands_20_2.5"]},
        "search_symbols": {"query": "micro"}, "my_watchlists": {}, "my_portfolio": {}, "my_notes": {"symbol": "AAPL"},
    }
    assert set(calls) == {t.name for t in TOOLS}
    async with connect(mcp_url, bearer(headers)) as mcp:
        results = {name: await mcp.call_tool(name, args) for name, args in calls.items()}
    for name, result in results.items():
        assert not result.is_error, (name, result.content)
        assert result.content[0].text.startswith("-"), name
    assert results["get_history_summary"].structured_content["interval"] == "1h"
    assert [s["name"] for s in results["get_indicators"].structured_content["indicators"]] == ["rsi_14", "macd", "bbands_20_2.5"]
    position = results["my_portfolio"].structured_content["portfolios"][0]["positions"][0]
    assert position["symbol"] == "MSFT" and position["provenance"]["source"] == "offline"
    assert results["my_notes"].structured_content["notes"][0]["title"] == "Earnings"


@pytest.mark.parametrize("mode", ERAS)
async def test_personal_tools_see_only_the_callers_data(mcp_url, client, make_user, mode):
    (_, alice_h), (bob, bob_h) = make_user(), make_user()
    client.post("/api/v1/watchlists", json={"name": "Alice chips", "symbols": ["NVDA"]}, headers=alice_h)
    client.post("/api/v1/watchlists", json={"name": "Bob banks", "symbols": ["JPM"]}, headers=bob_h)
    async with connect(mcp_url, bearer(alice_h), mode) as a, connect(mcp_url, bearer(bob_h), mode) as b:
        mine, theirs = await asyncio.gather(a.call_tool("my_watchlists", {}), b.call_tool("my_watchlists", {}))
        # An argument naming another user is refused, not honoured.
        smuggled = await a.call_tool("my_watchlists", {"user_id": bob["id"]})
    assert [w["name"] for w in mine.structured_content["watchlists"]] == ["Alice chips"]
    assert [w["name"] for w in theirs.structured_content["watchlists"]] == ["Bob banks"]
    assert mine.structured_content["provenance"]["source"] == "stockagent"
    assert smuggled.is_error and "Bob banks" not in smuggled.content[0].text


@pytest.mark.parametrize("mode", ERAS)
async def test_invalid_arguments_are_a_tool_error_not_a_protocol_error(mcp_url, mode):
    async with connect(mcp_url, ADMIN, mode) as client:
        bad = await client.call_tool("get_history_summary", {"symbol": "AAPL", "interval": "2h"})
        unknown_symbol = await client.call_tool("get_quote", {"symbol": "ZZZZZZ"})
    assert bad.is_error and bad.structured_content is None
    assert bad.content[0].text.startswith("Invalid tool arguments: interval")
    assert bad.meta["stockagent/problem"]["status"] == 422
    assert unknown_symbol.is_error and unknown_symbol.content[0].text.startswith("Not found")
    assert "Traceback" not in bad.content[0].text + unknown_symbol.content[0].text


@pytest.mark.parametrize("mode", ERAS)
async def test_unknown_tool_is_a_protocol_error(mcp_url, mode):
    from mcp.shared.exceptions import MCPError

    async with connect(mcp_url, ADMIN, mode) as client:
        with pytest.raises(MCPError) as caught:
            await client.session.call_tool("no_such_tool", {})
    assert "Unknown tool" in caught.value.message


async def test_progress_streams_over_sse_when_asked_for(mcp_url):
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with connect(mcp_url, ADMIN) as client:
        result = await client.call_tool("get_fundamentals", {"symbol": "MSFT"}, progress_callback=progress)
    assert not result.is_error and result.structured_content["symbol"] == "MSFT"
    assert [s[:2] for s in seen] == [(0, 1), (1, 1)]

    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "get_quote", "arguments": {"symbol": "AAPL"}, "_meta": {"progressToken": "p1"}}}
    r = httpx.post(mcp_url, json=body, headers={**ADMIN, **ACCEPT, "MCP-Protocol-Version": "2025-11-25"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.count("notifications/progress") == 2 and '"id":9' in r.text
    plain = httpx.post(mcp_url, json={**body, "params": {"name": "get_quote", "arguments": {"symbol": "AAPL"}}},
                       headers={**ADMIN, **ACCEPT, "MCP-Protocol-Version": "2025-11-25"})
    assert plain.headers["content-type"].startswith("application/json") and plain.json()["id"] == 9


@pytest.mark.parametrize("mode", ERAS)
async def test_concurrent_calls_each_get_their_own_answer(mcp_url, client, make_user, mode):
    (_, alice_h), (_, bob_h) = make_user(), make_user()
    client.post("/api/v1/watchlists", json={"name": "A", "symbols": ["AAPL"]}, headers=alice_h)
    client.post("/api/v1/watchlists", json={"name": "B", "symbols": ["MSFT"]}, headers=bob_h)
    symbols = ["AAPL", "MSFT", "NVDA", "GOOGL", "AMZN", "META", "TSLA", "SPY"] * 3
    async with connect(mcp_url, bearer(alice_h), mode) as a, connect(mcp_url, bearer(bob_h), mode) as b:
        quotes = asyncio.gather(*(a.call_tool("get_quote", {"symbol": s}) for s in symbols))
        personal = asyncio.gather(*(c.call_tool("my_watchlists", {}) for c in (a, b) * 6))
        quotes, personal = await asyncio.gather(quotes, personal)
    assert [q.structured_content["symbol"] for q in quotes] == symbols
    assert [[w["name"] for w in p.structured_content["watchlists"]] for p in personal] == [["A"], ["B"]] * 6


async def test_a_call_is_logged_and_counted_like_any_route(mcp_url, core, caplog):
    from shared.logging import ContextFilter

    caplog.set_level("INFO", logger="stockagent")
    caplog.handler.addFilter(ContextFilter())  # what the app's log handlers carry: the request id of each record
    before = {(r["method"], r["route"], r["status"]): r["count"] for r in core.metrics.snapshot()["requests"]}
    r = httpx.post(mcp_url, headers={**ADMIN, **ACCEPT, "X-Request-ID": "mcp-trace-1", "MCP-Protocol-Version": "2025-11-25"},
                   json={"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                         "params": {"name": "get_quote", "arguments": {"symbol": "AAPL"}}})
    assert r.status_code == 200 and r.headers["x-request-id"] == "mcp-trace-1"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert int(r.headers["ratelimit-remaining"]) >= 0
    snapshot = core.metrics.snapshot()
    after = {(x["method"], x["route"], x["status"]): x["count"] for x in snapshot["requests"]}
    assert after[("POST", "/api/mcp", 200)] == before.get(("POST", "/api/mcp", 200), 0) + 1
    assert snapshot["counters"]["mcp_tool_calls"]["get_quote:ok"] >= 1
    mine = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "mcp-trace-1"]
    assert {rec.getMessage() for rec in mine} >= {"request start", "mcp tool call", "request end"}
    assert next(rec for rec in mine if rec.getMessage() == "mcp tool call").tool == "get_quote"
