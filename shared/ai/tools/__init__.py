"""The agent's tools (also served to MCP clients by shared.mcp): one registry, `TOOLS`.

Registration point: each module imported below registers its tools on `TOOLS` at import. A new domain (alerts,
reports) adds its module here; see shared.ai.tools.registry for what a tool is.
"""

from shared.ai.tools import market, personal  # noqa: F401  (registers the tools)
from shared.ai.tools.fencing import DATA_BEGIN, DATA_END, format_tool_message, parse_tool_message, sanitize_text
from shared.ai.tools.registry import TOOLS, Tool, ToolExecutor, ToolOutcome, ToolRegistry, tool_definitions

__all__ = [
    "DATA_BEGIN", "DATA_END", "TOOLS", "Tool", "ToolExecutor", "ToolOutcome", "ToolRegistry", "format_tool_message",
    "parse_tool_message", "sanitize_text", "tool_definitions",
]
