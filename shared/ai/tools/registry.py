"""The tool registry: each of the agent's tools is defined once, and everything else is derived from that.

A tool is its argument model (a `ToolArgs`), its result model, a `run(ctx, args) -> ToolResult` function and a
text writer. From them come the model-facing JSON schemas (`definitions()`, the OpenAI `tools` parameter) and the
MCP endpoint's `inputSchema`/`outputSchema` (`Tool.input_schema` / `Tool.output_schema`, both
`model_json_schema()`), so what a schema says is what the argument model accepts.

Adding a tool (alerts, reports, ...): decorate its run function with `@TOOLS.tool(...)` in a module of this
package and import that module in `shared/ai/tools/__init__.py`. The agent, the offline model and the MCP endpoint
take every tool from `TOOLS`. A personal tool reads the caller's data through `ctx.personal()`: add its reader to
the `UserData` protocol and to `AgentUserData` (shared/services/chat.py).

Guarantees of `ToolExecutor`:
- personal tools always use the caller's user_id given to the executor; a model cannot pass one (unknown
  arguments are rejected);
- bad arguments and upstream failures become an error *result* (never an exception), whose body is the
  problem's status, type, title and a sanitized detail (never a traceback);
- every payload is plain JSON data, its free text fenced (shared.ai.tools.fencing).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.ai.tools.fencing import format_tool_message, jsonable, sanitize_deep, sanitize_text
from shared.errors import ApiError, ServiceUnavailable
from shared.market.models import Provenance

if TYPE_CHECKING:  # pragma: no cover - typing only
    from shared.ai.protocols import MarketData, UserData

log = logging.getLogger(__name__)

ArgsT = TypeVar("ArgsT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)
TextWriter = Callable[[dict[str, Any]], list[str]]


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused, so a model cannot pass a user_id."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoArgs(ToolArgs):
    pass


@dataclass(frozen=True)
class ToolContext:
    """What a tool runs against: market data, the caller's own data, and the caller (fixed per executor)."""

    market: "MarketData"
    user_data: "UserData | None"
    user_id: str

    def personal(self) -> "UserData":
        """The caller's own data; ServiceUnavailable when this executor has none."""
        if self.user_data is None:
            raise ServiceUnavailable("personal data is not available")
        return self.user_data


@dataclass(frozen=True)
class ToolResult(Generic[OutT]):
    """What a tool's run function returns: its result, a one-line summary and the sources it cites."""

    output: OutT
    summary: str
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Tool(Generic[ArgsT, OutT]):
    """One tool. The hints are MCP's tool annotations and must be true of `run`."""

    name: str
    title: str
    description: str
    args: type[ArgsT]
    output: type[OutT]
    run: Callable[[ToolContext, ArgsT], ToolResult[OutT]]
    text: TextWriter  # short text form of a payload (the JSON of `output`): lines citing source and as_of
    personal: bool = False  # reads the caller's own data
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = False  # reaches outside our own data (market data providers)

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        return self.args.model_json_schema()

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        return self.output.model_json_schema(mode="serialization")

    def definition(self) -> dict[str, Any]:
        """The OpenAI `tools` entry."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.input_schema}}


class ToolRegistry:
    """Tools by name, in registration order."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool[Any, Any]] = {}

    def register(self, tool: Tool[Any, Any]) -> Tool[Any, Any]:
        if tool.name in self._tools:
            raise ValueError(f"duplicate tool name {tool.name}")
        self._tools[tool.name] = tool
        return tool

    def tool(
        self, name: str, *, title: str, args: type[ArgsT], output: type[OutT], text: TextWriter, personal: bool = False,
        read_only: bool = True, destructive: bool = False, idempotent: bool = True, open_world: bool = False,
    ) -> Callable[[Callable[[ToolContext, ArgsT], ToolResult[OutT]]], Callable[[ToolContext, ArgsT], ToolResult[OutT]]]:
        """Register the decorated run function as a tool; its docstring is the description the model reads."""

        def decorator(run: Callable[[ToolContext, ArgsT], ToolResult[OutT]]) -> Callable[[ToolContext, ArgsT], ToolResult[OutT]]:
            description = " ".join((run.__doc__ or "").split())
            if not description:
                raise ValueError(f"tool {name} needs a docstring: it is the description the model reads")
            self.register(Tool(name=name, title=title, description=description, args=args, output=output, run=run,
                               text=text, personal=personal, read_only=read_only, destructive=destructive,
                               idempotent=idempotent, open_world=open_world))
            return run

        return decorator

    def get(self, name: str) -> Tool[Any, Any] | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool[Any, Any]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def definitions(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI `tools` parameter for the given tool names (all by default)."""
        return [t.definition() for t in self if names is None or t.name in names]


TOOLS = ToolRegistry()


def tool_definitions(names: list[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI `tools` parameter for the given tool names (all by default)."""
    return TOOLS.definitions(names)


# -- provenance --------------------------------------------------------------------------------------------


def source(prov: Provenance | None, symbol: str | None, data_type: str) -> dict[str, Any]:
    """A source entry (what the agent's answer cites) from a datum's provenance."""
    p = prov.model_dump(mode="json") if prov is not None else {}
    return {
        "provider": p.get("source", "unknown"),
        "symbol": symbol,
        "data_type": data_type,
        "as_of": p.get("as_of") or p.get("fetched_at"),
        "stale": bool(p.get("stale", False)),
    }


def read_now(source_name: str) -> Provenance:
    """Provenance of data read from `source_name` just now (our own store, a search)."""
    now = datetime.now(timezone.utc)
    return Provenance(source=source_name, as_of=now, fetched_at=now)


# -- execution ---------------------------------------------------------------------------------------------


@dataclass
class ToolOutcome:
    """One executed tool call. `payload` is what the model sees; `sources` the provenance for the answer."""

    id: str
    name: str
    arguments: dict[str, Any]
    payload: dict[str, Any]
    summary: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name, "summary": self.summary}
        if self.error is not None:
            data["error"] = self.error
        else:
            data["provenance"] = self.sources
        return data

    def message(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.id, "content": format_tool_message(self.name, self.id, self.payload)}


def _error_payload(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ApiError):
        err: dict[str, Any] = {"status": exc.status, "type": exc.type, "title": exc.title,
                               "detail": sanitize_text(exc.detail, 300)}
        provider = getattr(exc, "provider", None) or exc.extra.get("provider")
        if provider:
            err["provider"] = provider
        if exc.extra.get("retry_after") is not None:
            err["retry_after"] = exc.extra["retry_after"]
        return err
    log.exception("tool failed unexpectedly")
    return {"status": 500, "type": "internal-error", "title": "Tool failed", "detail": type(exc).__name__}


class ToolExecutor:
    """Runs tool calls for one caller. The user_id is fixed at construction."""

    def __init__(self, market: "MarketData", user_data: "UserData | None", user_id: str,
                 tools: ToolRegistry = TOOLS) -> None:
        self.tools = tools
        self._context = ToolContext(market, user_data, user_id)

    def run(self, call_id: str, name: str, arguments: str | dict[str, Any] | None) -> ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            return self._fail(call_id, name, {}, {"status": 422, "type": "validation-error", "title": "Unknown tool",
                                                  "detail": f"no tool named {sanitize_text(name, 60)!r}"})
        try:
            raw = arguments if isinstance(arguments, dict) else json.loads(arguments or "{}")
            if not isinstance(raw, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return self._fail(call_id, name, {}, {"status": 422, "type": "validation-error", "title": "Invalid tool arguments",
                                                  "detail": f"arguments are not a JSON object: {exc}"[:200]})
        try:
            args = tool.args.model_validate(raw)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])
            return self._fail(call_id, name, jsonable(raw), {"status": 422, "type": "validation-error",
                                                             "title": "Invalid tool arguments", "detail": sanitize_text(detail, 300)})
        argd = args.model_dump(mode="json")
        try:
            result = tool.run(self._context, args)
        except Exception as exc:  # upstream failures are reported to the model, never replaced by defaults
            return self._fail(call_id, name, argd, _error_payload(exc))
        return ToolOutcome(call_id, name, argd, sanitize_deep(jsonable(result.output)), result.summary, result.sources)

    def _fail(self, call_id: str, name: str, argd: dict[str, Any], err: dict[str, Any]) -> ToolOutcome:
        payload = {"error": err, "arguments": argd}
        what = f"{name}({', '.join(f'{k}={v}' for k, v in argd.items())})"
        return ToolOutcome(call_id, name, argd, payload, f"{what} failed: {err['title']}", [], err)
