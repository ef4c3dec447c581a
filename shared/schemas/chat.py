"""Request and response schemas of the chat and model routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.data.schema import TEXT
from shared.http.schemas import StrictModel

PROVIDER_PATTERN = r"^(openai|grok|azure_openai|compatible|offline)$"


class ChatRequest(StrictModel):
    message: str = Field(min_length=1, max_length=5000, pattern=TEXT,
                         description="Visible text: no control characters but tab and line breaks, no bidi controls")
    provider: str | None = Field(None, pattern=PROVIDER_PATTERN, description="One of the configured providers")
    temperature: float = Field(0.3, ge=0, le=2)
    conversation_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    stream: bool = Field(False, description="Answer as text/event-stream (same as POST /chat/stream)")


class Source(BaseModel):
    model_config = {"extra": "allow"}
    provider: str | None = None
    symbol: str | None = None
    data_type: str | None = None
    as_of: str | None = None
    stale: bool | None = None


class ChatResponse(BaseModel):
    conversation_id: str
    message: str
    answer: str
    sources: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    model: str | None = None
    provider: str | None = None
    fallback_trace: list[dict[str, Any]]
    ungrounded_numbers: list[str] = []
    truncated: bool = Field(False, description="The model stopped at its output limit: the answer is incomplete")


class ChatSummary(BaseModel):
    id: str
    title: str | None = None
    message_count: int | None = Field(None, description="Messages stored in the conversation")
    created_at: str | None = None
    updated_at: str | None = None
    version: int | None = None


class ChatDetail(ChatSummary):
    messages: list[dict[str, Any]] = Field(
        description="The newest 200 messages, oldest first, each with its `seq`; GET /chats/{chat_id}/messages pages through all")


class ChatMessagePage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


class ChatPage(BaseModel):
    items: list[ChatSummary]
    next_cursor: str | None = None


class ChatPath(BaseModel):
    chat_id: str = Field(max_length=64)


class ModelInfo(BaseModel):
    name: str
    configured: bool
    model: str | None = None
    default: bool
    healthy: bool
    breaker: str
    misconfigured: bool = False


class ModelsResponse(BaseModel):
    default: str
    allow_fallback: bool
    fallback_order: list[str]
    providers: list[ModelInfo]
