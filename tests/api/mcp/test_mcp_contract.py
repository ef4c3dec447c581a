"""Contract: the MCP tool list is the agent's tool list, one definition for both."""

from __future__ import annotations

import pytest
from mcp_support import LEGACY, MODERN, connect

from shared.ai.tools import TOOLS, tool_definitions
from tests.conftest import ADMIN_KEY


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
async def test_mcp_tools_are_the_agents_tools(mcp_url, mode):
    async with connect(mcp_url, {"Authorization": f"Bearer {ADMIN_KEY}"}, mode) as client:
        served = (await client.list_tools()).tools
    agent = [d["function"] for d in tool_definitions()]  # what the model is given in a chat turn
    assert [(t.name, t.description, t.input_schema) for t in served] == [
        (f["name"], f["description"], f["parameters"]) for f in agent]
    assert [t.output_schema for t in served] == [t.output.model_json_schema(mode="serialization") for t in TOOLS]
