"""Resources (the caller's watchlists as watchlist://{id}) and prompts, through the real `mcp` client SDK."""

from __future__ import annotations

import json
import re

import pytest
from mcp.shared.exceptions import MCPError
from mcp_support import LEGACY, MODERN, bearer, connect

from shared.ai.tools import TOOLS
from shared.mcp.catalog import PROMPTS


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
async def test_watchlists_are_resources_of_their_owner_only(mcp_url, client, make_user, mode):
    (_, alice_h), (_, bob_h) = make_user(), make_user()
    mine = client.post("/api/v1/watchlists", json={"name": "Alice chips", "symbols": ["NVDA", "AMD"]}, headers=alice_h).json()
    client.post("/api/v1/watchlists", json={"name": "Bob banks", "symbols": ["JPM"]}, headers=bob_h)
    async with connect(mcp_url, bearer(alice_h), mode) as a, connect(mcp_url, bearer(bob_h), mode) as b:
        templates = await a.list_resource_templates()
        listed = await a.list_resources()
        read = await a.read_resource(f"watchlist://{mine['id']}")
        bobs_list = await b.list_resources()
        with pytest.raises(MCPError) as foreign:
            await b.read_resource(f"watchlist://{mine['id']}")
        with pytest.raises(MCPError) as unknown:
            await a.read_resource("portfolio://123")
    assert [t.uri_template for t in templates.resource_templates] == ["watchlist://{id}"]
    assert [(r.uri, r.name, r.mime_type) for r in listed.resources] == [(f"watchlist://{mine['id']}", "Alice chips", "application/json")]
    content = read.contents[0]
    assert content.uri == f"watchlist://{mine['id']}" and content.mime_type == "application/json"
    assert json.loads(content.text)["symbols"] == ["NVDA", "AMD"]
    assert [r.name for r in bobs_list.resources] == ["Bob banks"]
    assert foreign.value.message.startswith("Not found")  # another user's watchlist does not exist for Bob
    assert "Unknown resource" in unknown.value.message


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
async def test_prompts_render_with_checked_arguments(mcp_url, make_user, mode):
    _, headers = make_user()
    async with connect(mcp_url, bearer(headers), mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        research = await client.get_prompt("research_symbol", {"symbol": " msft "})
        review = await client.get_prompt("review_my_portfolio", {})
        with pytest.raises(MCPError) as bad:
            await client.get_prompt("research_symbol", {"symbol": "MS FT!"})
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("research_symbol", {})
    assert set(prompts) == {"research_symbol", "review_my_portfolio"}
    assert [(a.name, a.required) for a in prompts["research_symbol"].arguments] == [("symbol", True)]
    text = research.messages[0].content.text
    assert research.messages[0].role == "user" and "Research MSFT" in text and "source and as-of" in text
    assert "my_portfolio" in review.messages[0].content.text
    assert "argument symbol" in bad.value.message and "argument symbol is required" in missing.value.message


def test_prompts_name_only_tools_that_exist():
    names = {t.name for t in TOOLS}
    for prompt in PROMPTS:
        text = prompt.message({a.name: "AAPL" for a in prompt.arguments})
        called = set(re.findall(r"\b(?:get|my|search)_[a-z_]+", text))
        assert called and called <= names, (prompt.name, called - names)
