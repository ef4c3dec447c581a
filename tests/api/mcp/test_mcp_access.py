"""Who may use the MCP endpoint and how refusals look: credentials (401 naming the RFC 9728 metadata), the
metadata itself, rate limits (429 with Retry-After, as JSON-RPC errors), browser origins, body size, and an
upstream's rate limit inside a tool (a tool error, not a transport 429)."""

from __future__ import annotations

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp_support import LEGACY, MODERN, connect, raised

from tests.conftest import ADMIN_KEY, make_settings, served_on_loopback
from tests.entra import entra  # noqa: F401 - fixture

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ACCEPT = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def challenge_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer"
    return {k.strip(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in rest.split(", "))}


@pytest.mark.parametrize("headers, invalid", [({}, False), ({"Authorization": "Bearer sak_not-a-key"}, True),
                                               ({"X-API-Key": "wrong"}, True)])
def test_no_or_bad_credentials_are_401_pointing_at_the_resource_metadata(base_url, mcp_url, headers, invalid):
    r = httpx.post(mcp_url, json=LIST, headers={**headers, **ACCEPT})
    assert r.status_code == 401
    params = challenge_params(r.headers["www-authenticate"])
    assert params["resource_metadata"] == f"{base_url}/api/.well-known/oauth-protected-resource"
    assert (params.get("error") == "invalid_token") is invalid
    body = r.json()  # a JSON-RPC error without id, the problem as its data
    assert r.headers["content-type"] == "application/json" and body["id"] is None
    assert body["error"]["code"] == -32600 and body["error"]["message"].startswith("Authentication required")
    assert body["error"]["data"]["status"] == 401 and body["error"]["data"]["request_id"] == r.headers["x-request-id"]

    metadata = httpx.get(params["resource_metadata"])
    assert metadata.status_code == 200
    assert metadata.json() == {
        "resource": mcp_url, "resource_name": "StockAgent API (MCP)", "bearer_methods_supported": ["header"],
        "resource_documentation": f"{base_url}/api/v1/docs",
    }


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
async def test_the_sdk_client_without_credentials_gets_the_401_reason(mcp_url, mode):
    with pytest.raises(BaseException) as caught:
        async with connect(mcp_url, {}, mode):
            pass
    refused = raised(caught.value, MCPError)
    assert isinstance(refused, MCPError) and refused.message.startswith("Authentication required")
    assert refused.data["status"] == 401


def test_metadata_names_entra_when_it_is_configured(tmp_path):
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    settings = make_settings(tmp_path, auth={"entra_tenant_id": "11111111-2222-3333-4444-555555555555",
                                             "entra_audience": "api://stockagent"},
                             mcp={"public_url": "https://api.example.com"})
    core = build_core(settings)
    previous = set_core(core)
    try:
        with served_on_loopback(build_asgi_app()) as base:
            r = httpx.post(f"{base}/api/mcp", json=LIST, headers=ACCEPT)
            doc = httpx.get(f"{base}/api/.well-known/oauth-protected-resource").json()
    finally:
        set_core(previous)
        core.close()
    assert challenge_params(r.headers["www-authenticate"])["resource_metadata"] == (
        "https://api.example.com/api/.well-known/oauth-protected-resource")
    assert doc["resource"] == "https://api.example.com/api/mcp"
    assert doc["authorization_servers"] == ["https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0"]
    assert doc["scopes_supported"] == ["api://stockagent/.default"]


def test_forwarded_host_names_the_resource_behind_the_azure_front_end(tmp_path):
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    core = build_core(make_settings(tmp_path, http={"behind_azure_frontend": True}))
    previous = set_core(core)
    try:
        with served_on_loopback(build_asgi_app()) as base:
            doc = httpx.get(f"{base}/api/.well-known/oauth-protected-resource",
                            headers={"X-Forwarded-Host": "stockagent.azurewebsites.net", "X-Forwarded-Proto": "https"}).json()
    finally:
        set_core(previous)
        core.close()
    assert doc["resource"] == "https://stockagent.azurewebsites.net/api/mcp"


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
def test_rate_limit_is_429_with_retry_after_as_a_json_rpc_error(tmp_path, mode):
    """The `mcp` group limits every request to /api/mcp per user; the 429 keeps its Retry-After and RateLimit-*
    headers and carries a JSON-RPC error the SDK client surfaces with the problem (retry_after) as data."""
    import asyncio

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    settings = make_settings(tmp_path, rate_limits={"groups": {"mcp": "3/minute", "auth_failures": "100/minute"}})
    core = build_core(settings)
    core.services.auth.seed_local_admin()
    previous = set_core(core)

    async def until_refused(url: str) -> tuple[int, MCPError]:
        calls = 0
        with pytest.raises(BaseException) as caught:
            async with connect(url, ADMIN, mode) as client:  # the handshake spends one or two requests
                for _ in range(5):
                    await client.call_tool("get_quote", {"symbol": "AAPL"})
                    calls += 1
        refused = raised(caught.value, MCPError)
        assert isinstance(refused, MCPError), caught.value
        return calls, refused

    try:
        with served_on_loopback(build_asgi_app()) as base:
            calls, refused = asyncio.run(until_refused(f"{base}/api/mcp"))
            r = httpx.post(f"{base}/api/mcp", json=LIST, headers={**ADMIN, **ACCEPT})
    finally:
        set_core(previous)
        core.close()
    assert calls < 3
    assert refused.message.startswith("Rate limit exceeded") and refused.data["status"] == 429
    assert refused.data["retry_after"] >= 1
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-limit"] == "3" and r.headers["ratelimit-remaining"] == "0"
    assert r.json()["error"]["data"]["type"] == "/problems/rate-limited"


def test_a_browser_origin_outside_cors_is_403(mcp_url):
    allowed = httpx.post(mcp_url, json=LIST, headers={**ADMIN, **ACCEPT, "Origin": "http://allowed.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://allowed.example"
    refused = httpx.post(mcp_url, json=LIST, headers={**ADMIN, **ACCEPT, "Origin": "http://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"]["data"]["type"] == "/problems/forbidden"


def test_cors_preflight_allows_the_mcp_headers(mcp_url):
    r = httpx.options(mcp_url, headers={"Origin": "http://allowed.example", "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version"})
    assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]
    assert "MCP-Protocol-Version" in r.headers["access-control-allow-headers"]


def test_an_oversized_body_is_413_before_the_sdk_sees_it(mcp_url):
    big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {"pad": "x" * 2_000_000}}}
    r = httpx.post(mcp_url, json=big, headers={**ADMIN, **ACCEPT})
    assert r.status_code == 413 and r.json()["error"]["data"]["type"] == "/problems/payload-too-large"


def test_malformed_json_is_a_json_rpc_parse_error(mcp_url):
    r = httpx.post(mcp_url, content=b'{"jsonrpc": "2.0", "id": 1, "meth', headers={**ADMIN, **ACCEPT, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700


async def test_an_upstream_rate_limit_inside_a_tool_is_a_tool_error(tmp_path):
    """Yahoo throttling (the real yfinance code over faked HTTP) is the tool's failure, reported in its result with
    the provider and a retry hint; the MCP request itself succeeds (no transport 429)."""
    from devhost.app import build_asgi_app
    from shared.market.providers.yahoo import YahooProvider
    from shared.runtime import build_core, set_core
    from tests.upstream import TOO_MANY_REQUESTS, FakeYahoo

    yahoo = FakeYahoo().healthy()
    yahoo.tz("MSFT", "America/New_York")
    yahoo.on(r"/v8/finance/chart/MSFT$", TOO_MANY_REQUESTS)
    settings = make_settings(tmp_path, market={"providers": {k: ["yahoo"] for k in ("quote", "history", "fundamentals",
                                                                                   "news", "search")}})
    core = build_core(settings, market_providers={"yahoo": YahooProvider(session=yahoo.session())})
    core.services.auth.seed_local_admin()
    previous = set_core(core)
    try:
        with served_on_loopback(build_asgi_app()) as base:
            async with connect(f"{base}/api/mcp", ADMIN) as client:
                result = await client.call_tool("get_quote", {"symbol": "MSFT"})
    finally:
        set_core(previous)
        core.close()
    assert result.is_error
    problem = result.meta["stockagent/problem"]
    assert problem["status"] == 502 and problem.get("provider") == "yahoo", problem
    assert result.content[0].text.startswith(problem["title"])


async def test_entra_id_tokens_work_as_on_rest(tmp_path, entra):
    """An Entra ID access token (signed by a local stand-in tenant, keys fetched by the app's real code) is a
    caller like on REST: its own watchlists only; a bad token is 401 invalid_token; the metadata names the tenant."""
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    core = build_core(make_settings(tmp_path, auth=entra.auth_settings()))
    previous = set_core(core)
    token = {"Authorization": f"Bearer {entra.token(oid='mcp-entra-user')}"}
    try:
        with served_on_loopback(build_asgi_app()) as base:
            created = httpx.post(f"{base}/api/v1/watchlists", json={"name": "Entra picks", "symbols": ["MSFT"]}, headers=token)
            assert created.status_code == 201, created.text
            async with connect(f"{base}/api/mcp", token, MODERN) as client:
                mine = await client.call_tool("my_watchlists", {})
            expired = httpx.post(f"{base}/api/mcp", json=LIST, headers={
                **ACCEPT, "Authorization": f"Bearer {entra.token(oid='mcp-entra-user', exp=1)}"})
            doc = httpx.get(f"{base}/api/.well-known/oauth-protected-resource").json()
    finally:
        set_core(previous)
        core.close()
    assert [w["name"] for w in mine.structured_content["watchlists"]] == ["Entra picks"]
    assert expired.status_code == 401 and challenge_params(expired.headers["www-authenticate"])["error"] == "invalid_token"
    assert doc["authorization_servers"] == [entra.issuer]
