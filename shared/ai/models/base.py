"""Provider-neutral model client contract: messages in OpenAI chat format, events out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

ModelEventType = Literal["delta", "tool_call", "usage", "finish"]


@dataclass(frozen=True)
class ToolCall:
    """One complete tool call: `arguments` is the raw JSON string the model produced (may be invalid)."""

    id: str
    name: str
    arguments: str

    def to_message(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    def to_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class ModelEvent:
    """One streamed event. `delta`: text; `tool_call`: a complete call (accumulated from deltas);
    `usage`: token counts; `finish`: the last event of a successful stream, with finish_reason."""

    type: ModelEventType
    text: str = ""
    tool_call: ToolCall | None = None
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class ModelResult:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str = ""
    provider: str = ""


def estimate_tokens(text: str) -> int:
    """Rough token estimate (chars / 4, at least 1 for non-empty text)."""
    return (len(text) + 3) // 4 if text else 0


class BaseModelClient:
    """A chat model with tool calling.

    Guarantees: `generate_stream` yields zero or more `delta`/`tool_call` events, at most one `usage`
    event and ends with exactly one `finish` event, or raises a shared.errors.ApiError
    (ModelUnavailable, ContentFiltered, ValidationFailed); closing the iterator releases the
    underlying connection. `generate` is `generate_stream` collected.
    """

    provider: str = "base"
    model: str = ""

    def generate_stream(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> Iterator[ModelEvent]:
        raise NotImplementedError

    def generate(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> ModelResult:
        text: list[str] = []
        calls: list[ToolCall] = []
        usage = Usage()
        finish = None
        stream = self.generate_stream(messages, tools, **opts)
        try:
            for ev in stream:
                if ev.type == "delta":
                    text.append(ev.text)
                elif ev.type == "tool_call" and ev.tool_call:
                    calls.append(ev.tool_call)
                elif ev.type == "usage" and ev.usage:
                    usage = usage + ev.usage
                elif ev.type == "finish":
                    finish = ev.finish_reason
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        return ModelResult("".join(text), calls, usage, finish, self.model, self.provider)

    def close(self) -> None:
        """Release pooled connections (optional)."""
