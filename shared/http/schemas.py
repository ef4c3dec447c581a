"""Schemas shared by many routes: pagination, problems, health."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class StrictModel(BaseModel):
    """Request models: unknown fields are rejected (no `owner_id`/`role` injection)."""

    model_config = ConfigDict(extra="forbid")


class QueryModel(BaseModel):
    """Query-string models: unknown parameters are ignored, known ones validated."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(QueryModel):
    limit: int = Field(20, ge=1, le=100, description="Page size (1-100)")
    cursor: str | None = Field(None, max_length=512, pattern=r"^[A-Za-z0-9_\-=]*$",
                               description="Opaque cursor from next_cursor, valid for the same list and caller only")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: dict[str, list[str]] | None = None
    error: str
    model_config = ConfigDict(extra="allow")


class ComponentHealth(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    required: bool
    latency_ms: float | None = None
    details: dict[str, Any] | None = None


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    components: dict[str, ComponentHealth]
