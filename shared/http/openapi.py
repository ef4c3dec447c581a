"""OpenAPI 3.1 document generated from the route registrations and their Pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from shared.http.api import API_PREFIX, Registry, RouteSpec
from shared.http.preconditions import DOCUMENTED_PATTERN, MAX_LENGTH
from shared.http.schemas import Problem

_ERROR_TITLES = {
    400: "Malformed request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    422: "Validation failed",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Upstream service failed",
    503: "Service unavailable",
}
# What a status means where the schema cannot say it (a valid request refused for server state).
_ERROR_DESCRIPTIONS = {
    412: "Precondition failed: If-Match is well-formed but names no current version of the resource "
         "(reload it and send its ETag); `current_version` says which version it is at",
    422: "Validation failed; `errors` names each field. Besides what the schema states, a schema-valid value is "
         "refused when it depends on server state: a `cursor` this API did not issue for this list and caller, "
         "a referenced symbol, workspace, watchlist or portfolio that does not exist, a date range an interval "
         "does not allow",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What one event (SSE `data:`) or one line (NDJSON) of a streamed response holds.
_STREAM_SCHEMAS = {
    "text/event-stream": {"description": "Each event's data is a JSON object (a list for `sources`)",
                          "type": ["object", "array"]},
    "application/x-ndjson": {"description": "One JSON object per line", "type": "object"},
}
# Hooks that adjust the generated document from live settings, e.g. the enum of configured model providers.
CUSTOMIZERS: list[Any] = []


def _collect_models(annotation: Any, out: set[type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out.add(annotation)
        return
    for arg in getattr(annotation, "__args__", ()) or ():
        _collect_models(arg, out)


def _schema_for(annotation: Any, refs: dict[tuple[type, str], dict[str, Any]], mode: str) -> dict[str, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return refs[(annotation, mode)]
    schema = TypeAdapter(annotation).json_schema(mode=mode, ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def _params(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        description = prop.pop("description", None)
        prop.pop("title", None)
        # An optional parameter is simply left out: a query string cannot carry JSON null.
        branches = prop.get("anyOf")
        if branches and any(b.get("type") == "null" for b in branches):
            rest = [b for b in branches if b.get("type") != "null"]
            prop.pop("anyOf")
            prop.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            if prop.get("default", 0) is None:
                prop.pop("default")
        param = {"name": name, "in": where, "required": where == "path" or name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _security(spec: RouteSpec) -> list[dict[str, list[str]]] | None:
    if spec.auth == "public":
        return []
    schemes: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
    return [{}, *schemes] if spec.auth == "optional" else schemes


def build_openapi(registry: Registry, *, title: str, version: str, settings: Any = None) -> dict[str, Any]:
    doc = _build(registry, title=title, version=version)
    if settings is not None:
        for customize in CUSTOMIZERS:
            customize(doc, settings)
    return doc


def _build(registry: Registry, *, title: str, version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for spec in registry.routes:
        for annotation in (spec.body, spec.response):
            if annotation is not None:
                _collect_models(annotation, models)
    pairs = [(m, "validation") for m in models] + [(m, "serialization") for m in models]
    refs, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for spec in registry.routes:
        if not spec.include_in_schema:
            continue
        path = f"{API_PREFIX}/{spec.template}"
        if "{*" in path:
            continue
        path_names = re.findall(r"\{([^}]+)\}", spec.template)
        for method in spec.methods:
            op: dict[str, Any] = {
                "operationId": spec.name if len(spec.methods) == 1 else f"{spec.name}_{method.lower()}",
                "summary": spec.summary or spec.name.replace("_", " "),
                "tags": list(spec.tags) or ["default"],
            }
            if spec.description:
                op["description"] = spec.description
            params = _params(spec.path, "path") + _params(spec.query, "query")
            declared = {p["name"] for p in params if p["in"] == "path"}
            for name in path_names:
                if name not in declared:
                    params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
            if spec.current is not None:
                params.append({
                    "name": "If-Match", "in": "header", "required": False,
                    "description": 'The ETag you read (e.g. "3"), a comma-separated list of them, or * (any current '
                                   'version). Strong comparison: a weak W/"3" never matches. 412 when no tag names '
                                   'the current version; 400 when the field is malformed.',
                    "schema": {"type": "string", "maxLength": MAX_LENGTH, "pattern": DOCUMENTED_PATTERN},
                })
            if params:
                op["parameters"] = params
            if spec.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
                }
            responses: dict[str, Any] = {}
            stream = {spec.stream_media_type: {"schema": _STREAM_SCHEMAS.get(spec.stream_media_type, {})}} if spec.stream_media_type else {}
            if spec.response is None and stream:
                responses[str(spec.status)] = {"description": "Stream", "content": stream}
            elif spec.status == 204 or spec.response is None:
                responses[str(spec.status if spec.status != 200 else 204)] = {"description": "No content"}
            else:
                content: dict[str, Any] = {"application/json": {"schema": _schema_for(spec.response, refs, "serialization")}, **stream}
                responses[str(spec.status)] = {"description": "Success", "content": content}
                if spec.status == 201:
                    responses[str(spec.status)]["headers"] = {"Location": {"schema": {"type": "string"}}}
            codes = set(spec.errors) | {400, 413, 422, 500}
            if spec.auth != "public":
                codes |= {401} if spec.auth == "optional" else {401, 403}
            if spec.rate_group:
                codes.add(429)
            if path_names:
                codes.add(404)
            if spec.current is not None:
                codes.add(412)
            for code in sorted(codes):
                responses[str(code)] = {
                    "description": _ERROR_DESCRIPTIONS.get(code, _ERROR_TITLES.get(code, "Error")),
                    "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
                }
            responses["default"] = {"description": "Error", "content": {"application/problem+json": {"schema": _PROBLEM_REF}}}
            op["responses"] = responses
            security = _security(spec)
            if security is not None:
                op["security"] = security
            if spec.deprecated:
                op["deprecated"] = True
            paths.setdefault(path, {})[method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "StockAgent API: AI stock-research assistant. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerAuth": {"type": "http", "scheme": "bearer", "description": "API key or Microsoft Entra ID token"},
            },
        },
    }
