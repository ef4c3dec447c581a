"""The MCP server of one request, on the official SDK's low-level `Server`: the agent's tools, the caller's
records as resources, and the prompts of shared.mcp.catalog.

It is built per request around the authenticated caller (stateless: nothing outlives the request), so every
handler is owner-scoped by construction, as `ToolExecutor` is. Guarantees:
- a tool's failure (bad arguments, unknown symbol, an upstream down or rate limited) is a tool error result
  (`isError`) whose text is the problem's title and detail; an unknown tool, resource or prompt is a protocol
  error; nothing else reaches the client: an unexpected exception is logged and answered as an internal error;
- a successful call carries `structuredContent` (valid against the tool's `outputSchema`, every datum with its
  provenance) and the tool's short text form;
- progress is reported when the client asked for it (the response then streams as SSE).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from shared.ai.tools import TOOLS, ToolExecutor
from shared.errors import ApiError
from shared.mcp.catalog import PROMPTS, RESOURCES, parse_uri

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from shared.http.api import RequestContext

log = logging.getLogger("stockagent.mcp")

INSTRUCTIONS = (
    "StockAgent: market data (quotes, history, fundamentals, news, technical indicators, symbol search) where every "
    "figure carries its source and as-of time, and your own watchlists, portfolios and notes. Quote figures only "
    "from tool results, with their source and as-of time; say when data is stale."
)
PROBLEM_META = "stockagent/problem"  # _meta key of a failed tool call's RFC 9457 problem (status, type, retry_after)

R = TypeVar("R")
P = TypeVar("P")


@functools.cache
def tool_list() -> tuple[types.Tool, ...]:
    """The agent's tools as MCP tools (built once: the registry is fixed after import)."""
    return tuple(
        types.Tool(
            name=t.name, title=t.title, description=t.description, input_schema=t.input_schema,
            output_schema=t.output_schema,
            annotations=types.ToolAnnotations(title=t.title, read_only_hint=t.read_only, destructive_hint=t.destructive,
                                              idempotent_hint=t.idempotent, open_world_hint=t.open_world),
        )
        for t in TOOLS
    )


def _input_schema(name: str) -> dict[str, Any] | None:
    """A tool's inputSchema for the SDK's 2026-07-28 header checks (instead of it listing the tools per call)."""
    tool = TOOLS.get(name)
    return tool.input_schema if tool is not None else None


def _guarded(handler: Callable[["ServerRequestContext[Any]", P], Awaitable[R]]) -> Callable[["ServerRequestContext[Any]", P], Awaitable[R]]:
    """Our errors as protocol errors with their title; anything unexpected logged and answered without detail (the
    SDK would otherwise put the exception's text on the wire)."""

    @functools.wraps(handler)
    async def wrapper(sctx: "ServerRequestContext[Any]", params: P) -> R:
        try:
            return await handler(sctx, params)
        except MCPError:
            raise
        except ApiError as exc:
            raise MCPError(INVALID_PARAMS if exc.status < 500 else INTERNAL_ERROR, f"{exc.title}: {exc.detail}",
                           {"status": exc.status, "type": f"/problems/{exc.type}"}) from None
        except Exception:
            log.exception("MCP %s failed", sctx.method)
            raise MCPError(INTERNAL_ERROR, "An unexpected error occurred; quote the request id when reporting it") from None

    return wrapper


def build_server(ctx: "RequestContext") -> Server[Any]:
    """The server for this request's caller (`ctx.user`)."""
    assert ctx.user is not None  # the route requires a signed-in caller
    user_id = ctx.user.id
    services = ctx.services
    executor = ToolExecutor(services.market, services.agent_user_data, user_id)
    metrics = ctx.core.metrics

    async def list_tools(sctx: "ServerRequestContext[Any]", params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(tool_list()))

    async def call_tool(sctx: "ServerRequestContext[Any]", params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = TOOLS.get(params.name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        started = time.perf_counter()
        await sctx.session.report_progress(0, 1, f"{tool.title}: running")
        outcome = await ctx.run(executor.run, str(sctx.request_id), tool.name, params.arguments or {})
        result = "ok" if outcome.ok else "error"
        metrics.incr("mcp_tool_calls", f"{tool.name}:{result}")
        log.info("mcp tool call", extra={"tool": tool.name, "result": result,
                                         "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
        if outcome.error is not None:
            err = outcome.error
            return types.CallToolResult(
                content=[types.TextContent(text=f"{err['title']}: {err.get('detail') or err['title']}")],
                is_error=True, _meta={PROBLEM_META: err},
            )
        await sctx.session.report_progress(1, 1, f"{tool.title}: done")
        return types.CallToolResult(content=[types.TextContent(text="\n".join(tool.text(outcome.payload)))],
                                    structured_content=outcome.payload)

    async def list_resources(sctx: "ServerRequestContext[Any]", params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        resources = []
        for kind in RESOURCES:
            for record_id, name in await ctx.run(kind.list, services, user_id):
                resources.append(types.Resource(uri=kind.uri(record_id), name=name, title=f"{kind.title}: {name}",
                                                description=kind.description, mime_type="application/json"))
        return types.ListResourcesResult(resources=resources)

    async def list_templates(sctx: "ServerRequestContext[Any]", params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=k.uri_template, name=k.scheme, title=k.title, description=k.description,
                                   mime_type="application/json")
            for k in RESOURCES
        ])

    async def read_resource(sctx: "ServerRequestContext[Any]", params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        target = parse_uri(params.uri)
        if target is None:
            raise MCPError(INVALID_PARAMS, f"Unknown resource: {params.uri}")
        kind, record_id = target
        record = await ctx.run(kind.read, services, user_id, record_id)
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=params.uri, mime_type="application/json", text=record.model_dump_json())
        ])

    async def list_prompts(sctx: "ServerRequestContext[Any]", params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=p.name, title=p.title, description=p.description, arguments=[
                types.PromptArgument(name=a.name, description=a.description, required=True) for a in p.arguments
            ])
            for p in PROMPTS
        ])

    async def get_prompt(sctx: "ServerRequestContext[Any]", params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = next((p for p in PROMPTS if p.name == params.name), None)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
        try:
            text = prompt.message(params.arguments)
        except ValueError as exc:
            raise MCPError(INVALID_PARAMS, f"Invalid prompt arguments: {exc}") from None
        return types.GetPromptResult(description=prompt.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(text=text))
        ])

    return Server(
        "stockagent", version=ctx.settings.app.version, title="StockAgent", instructions=INSTRUCTIONS,
        get_tool_input_schema=_input_schema,
        on_list_tools=_guarded(list_tools), on_call_tool=_guarded(call_tool),
        on_list_resources=_guarded(list_resources), on_list_resource_templates=_guarded(list_templates),
        on_read_resource=_guarded(read_resource), on_list_prompts=_guarded(list_prompts),
        on_get_prompt=_guarded(get_prompt),
    )
