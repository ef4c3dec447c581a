"""The OpenAPI document validates, and routes and document agree both ways."""

from openapi_spec_validator import validate

from shared.http import registry


def test_openapi_document_is_valid_and_complete(client):
    doc = client.get("/api/v1/openapi.json").json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    declared = {(spec.public_path, m) for spec in registry.routes if spec.include_in_schema and "{*" not in spec.template for m in spec.methods}
    assert documented == declared
    assert set(doc["components"]["securitySchemes"]) == {"ApiKeyHeader", "BearerAuth"}


def test_every_operation_documents_problems_and_security(client):
    doc = client.get("/api/v1/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "default" in op["responses"], (path, method)
            assert op["responses"]["422"]["content"]["application/problem+json"]
            spec = next(s for s in registry.routes if s.public_path == path and method.upper() in s.methods)
            if spec.auth == "public":
                assert op["security"] == []
            else:
                assert {"ApiKeyHeader": []} in op["security"] and "401" in op["responses"]
