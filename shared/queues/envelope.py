"""The message format of every queue: a versioned JSON envelope, encoded as the queue trigger decodes it.

A message on the queue is `encode_text(envelope.to_json(), encoding)`; the Functions host decodes
that text (base64 by default, host.json `extensions.queues.messageEncoding`) and hands the function
the JSON bytes, which `Envelope.from_body` reads back. The request id travels in the envelope, so
the function's log lines carry the id of the HTTP call (or timer run) that queued the job.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.queues.options import MessageEncoding

ENVELOPE_VERSION = 1
# Azure Storage accepts messages of at most 64 KiB, measured on the encoded text.
MAX_MESSAGE_CHARS = 64 * 1024


class MalformedMessage(ValueError):
    """The message is not an envelope this app wrote (bad encoding, not JSON, unknown version)."""


def encode_text(text: str, encoding: MessageEncoding) -> str:
    """The queue message text for `text`, as the trigger with `encoding` expects it."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii") if encoding == "base64" else text


def decode_text(message_text: str, encoding: MessageEncoding) -> bytes:
    """What the trigger hands the function for a queue message (MalformedMessage when base64 is invalid)."""
    if encoding == "none":
        return message_text.encode("utf-8")
    try:
        return base64.b64decode(message_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedMessage("message text is not valid base64") from exc


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Envelope(BaseModel):
    """One job. `id` is unique per enqueue; `dedupe_key` names the business job (several
    messages with the same key are processed once); `payload` is the handler's input."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1]
    id: str = Field(min_length=1, max_length=64)
    request_id: str | None = Field(None, max_length=128, pattern=r"^[\x21-\x7e]+$")
    created_at: datetime
    dedupe_key: str | None = Field(None, min_length=1, max_length=512)
    payload: dict[str, Any]

    @classmethod
    def new(cls, payload: dict[str, Any], *, request_id: str | None = None, dedupe_key: str | None = None) -> "Envelope":
        """A new job: a fresh id, the current time, this version."""
        return cls(v=ENVELOPE_VERSION, id=uuid.uuid4().hex, request_id=request_id, created_at=_utcnow(),
                   dedupe_key=dedupe_key, payload=payload)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_body(cls, body: bytes | str) -> "Envelope":
        """The envelope in a message body as the trigger gives it; MalformedMessage when it is not one."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise MalformedMessage(f"not a v{ENVELOPE_VERSION} job envelope ({exc.error_count()} problems)") from None
