"""Admin views of background jobs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.http.schemas import PageQuery


class PoisonQuery(PageQuery):
    queue: str | None = Field(None, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=63,
                              description="Only messages from this queue (e.g. market-refresh)")


class PoisonMessagePublic(BaseModel):
    id: str
    queue: str = Field(description="The queue the message failed on")
    message_id: str
    job_id: str | None
    request_id: str | None = Field(description="The request that queued the job")
    dedupe_key: str | None
    payload: dict[str, Any] | None = Field(description="The job's payload; null when the message was not a job envelope")
    body: str = Field(description="The message as the function received it")
    queued_at: str | None
    recorded_at: str


class PoisonMessagePage(BaseModel):
    items: list[PoisonMessagePublic]
    next_cursor: str | None = None
