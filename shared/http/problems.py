"""RFC 9457 problem details: the one mapping from errors to `application/problem+json`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from shared.errors import ApiError

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(err: ApiError, *, instance: str, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{err.type}",
        "title": err.title,
        "status": err.status,
        "detail": err.detail,
        "instance": instance,
        "request_id": request_id,
    }
    if err.errors:
        body["errors"] = err.errors
    for key, value in err.extra.items():
        body.setdefault(key, value)
    body["error"] = err.title  # clients of the old {"error": ...} shape keep working
    return body


def problem_response(err: ApiError, *, instance: str, request_id: str | None) -> Response:
    return Response(
        orjson.dumps(problem_body(err, instance=instance, request_id=request_id)),
        status_code=err.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=err.headers or None,
    )
