"""The route table walked by the security tests, and a minimal valid body for every body model."""

from __future__ import annotations

import re
from typing import Any

import orjson

# One valid value per required field name; a new required field fails test_every_body_route_has_a_minimal_body.
REQUIRED_VALUES: dict[str, Any] = {
    "message": "hello",
    "title": "A title",
    "name": "A name",
    "body": "Some text",
    "symbol": "AAPL",
    "quantity": 1.0,
    "cost_basis": 10.0,
    "email": "someone@example.com",
}
FORBIDDEN_FIELDS = ("owner_id", "role", "roles", "id", "version", "user_id")
# Admin-only user creation legitimately sets roles; every other body must refuse all of them.
ALLOWED = {("create_user", "roles")}
PATH_VALUE = "0123456789abcdef01234567"


def routes():
    import function_app  # noqa: F401 - registers every route

    from shared.http.api import registry

    return list(registry.routes)


def body_routes():
    """Routes with a JSON body model. A raw-body route (MCP, `body=bytes`) parses its own protocol: the arguments of
    its tools refuse unknown fields too (tests/api/mcp, tests/unit/ai/test_ai_grounding_tools.py)."""
    return [(spec, method) for spec in routes() if spec.body not in (None, bytes) for method in spec.methods
            if method in ("POST", "PUT", "PATCH")]


def minimal_body(model) -> dict[str, Any]:
    schema = model.model_json_schema()
    missing = [f for f in schema.get("required", []) if f not in REQUIRED_VALUES]
    if missing:
        raise AssertionError(f"{model.__name__}: add a valid value for {missing} to REQUIRED_VALUES")
    body = {f: REQUIRED_VALUES[f] for f in schema.get("required", [])}
    model.model_validate_json(orjson.dumps(body), strict=True)  # the pipeline's own validation
    return body


def concrete_path(template: str, value: str = PATH_VALUE) -> str:
    return "/api/" + re.sub(r"\{[^}]+\}", value, template)
