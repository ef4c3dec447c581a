"""A route marked deprecated carries Deprecation/Sunset headers and shows as deprecated in OpenAPI."""

import asyncio

from starlette.requests import Request

from shared.http.api import Registry, RouteSpec, run_pipeline
from shared.http.openapi import build_openapi


async def _old_handler(req, ctx):
    return {"ok": True}


SPEC = RouteSpec(name="old_thing", template="v1/old-thing", methods=("GET",), handler=_old_handler, response=dict,
                 auth="public", rate_group=None, deprecated=True, sunset="Wed, 31 Dec 2027 23:59:59 GMT")


def _request(path: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 1)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request(scope, receive)


def test_deprecated_route_headers(core):
    response = asyncio.run(run_pipeline(SPEC, _request("/api/v1/old-thing")))
    assert response.status_code == 200
    assert response.headers["deprecation"] == "true"
    assert response.headers["sunset"] == "Wed, 31 Dec 2027 23:59:59 GMT"


def test_deprecated_route_in_openapi():
    registry = Registry()
    registry.add(SPEC)
    doc = build_openapi(registry, title="t", version="1")
    assert doc["paths"]["/api/v1/old-thing"]["get"]["deprecated"] is True


def test_metrics_count_chat_and_market_usage(client, admin_headers):
    client.get("/api/v1/market/AMZN/quote", headers=admin_headers)
    client.post("/api/v1/chat", json={"message": "Price of AAPL?"}, headers=admin_headers)
    counters = client.get("/api/v1/admin/metrics", headers=admin_headers).json()["counters"]
    assert counters["llm_calls"]["offline"] >= 1 and counters["llm_tokens"]["offline"] > 0
    assert counters["market_upstream"]["offline:ok"] >= 1
    assert counters["market_cache"]["price_data:miss"] >= 1
