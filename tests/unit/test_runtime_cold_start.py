"""A failed cold start answers 503 problems and is not retried on every request."""

from starlette.testclient import TestClient

from shared.errors import ConfigError


def test_failed_cold_start_is_503_and_backs_off(monkeypatch):
    import shared.runtime as runtime
    from devhost.app import build_asgi_app

    calls = []

    def broken_settings(*a, **kw):
        calls.append(1)
        raise ConfigError("MONGODB_URI is required when APP_ENV=production")

    monkeypatch.setattr(runtime, "load_settings", broken_settings)
    previous = runtime.set_core(None)
    try:
        with TestClient(build_asgi_app()) as client:
            first = client.get("/api/health")
            second = client.get("/api/v1/workspaces", headers={"X-API-Key": "x"})
        for r in (first, second):
            assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
            assert int(r.headers["retry-after"]) > 0
            assert "MONGODB_URI" not in r.text  # the cause is logged, not sent
        assert len(calls) == 1  # the second request did not reload the configuration
    finally:
        runtime.set_core(previous)
