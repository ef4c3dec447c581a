"""Log scan: requests carrying secrets in headers, query strings, bodies and config leave none in the logs."""

from __future__ import annotations

import io
import logging

import pytest

from tests.conftest import ADMIN_KEY, make_settings
from tests.unit.ai.fake_openai import FakeOpenAIServer, error_reply

OPENAI_KEY = "sk-proj-LOGSCANopenaiSECRET0123456789"
COMPAT_KEY = "sk-LOGSCANcompatibleSECRET0123456789"
AV_KEY = "LOGSCANALPHAVANTAGE77"
BOGUS_BEARER = "sak_LOGSCANbogusBEARERtoken0123456789"
QUERY_KEY = "LOGSCANquerySECRET42"
REDIS_PASSWORD = "LOGSCANredisPASSWORD9"


class Capture:
    """A root handler with the app's JsonFormatter and redaction filters, at `level`."""

    def __init__(self, level: int) -> None:
        from shared.logging import JsonFormatter, install_filters

        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.root = logging.getLogger()
        self.saved_level = self.root.level
        self.root.addHandler(self.handler)
        self.root.setLevel(level)
        install_filters(self.root)

    def stop(self) -> str:
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.saved_level)
        return self.stream.getvalue()


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_no_secret_reaches_the_logs(tmp_path, level):
    from starlette.testclient import TestClient

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from tests.integration.faults.fault_support import closed_port

    with FakeOpenAIServer() as srv:
        srv.responder = lambda body: error_reply(500, f"upstream echoed Authorization: Bearer {COMPAT_KEY}")
        settings = make_settings(
            tmp_path,
            app={"env": "test", "log_level": "DEBUG"},
            models={"provider": "compatible", "allow_fallback": True, "fallback_order": ["compatible", "offline"],
                    "openai": {"api_key": OPENAI_KEY},
                    "compatible": {"base_url": srv.base_url, "model": "m", "api_key": COMPAT_KEY,
                                   "first_token_timeout_s": 2, "max_retries": 0}},
            market={"alpha_vantage": {"api_key": AV_KEY}},
            redis={"url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}/0"},
        )
        capture = Capture(level)
        try:
            core = build_core(settings)
            core.services.auth.seed_local_admin()
            user = core.repos.get_user_repository().insert_one({"email": "logscan@example.com", "name": "L", "roles": ["user"]})
            _, real_key = core.services.auth.create_api_key(user["id"], "scan")
            previous = set_core(core)
            try:
                with TestClient(build_asgi_app()) as c:
                    statuses = [
                        c.get("/api/v1/workspaces", headers={"Authorization": f"Bearer {BOGUS_BEARER}"}).status_code,
                        c.get("/api/v1/workspaces", headers={"X-API-Key": BOGUS_BEARER}).status_code,
                        c.get(f"/api/v1/market/AAPL/quote?apikey={QUERY_KEY}", headers={"Authorization": f"Bearer {real_key}"}).status_code,
                        c.get(f"/api/v1/workspaces?api_key={QUERY_KEY}", headers={"X-API-Key": real_key}).status_code,
                        c.post("/api/v1/chat", json={"message": "Quote AAPL"}, headers={"X-API-Key": real_key}).status_code,
                        c.get("/api/health").status_code,
                        c.get("/api/v1/users/me", headers={"X-API-Key": ADMIN_KEY}).status_code,
                    ]
            finally:
                set_core(previous)
                core.close()
        finally:
            output = capture.stop()
    assert statuses[:2] == [401, 401]
    assert statuses[2] in (200, 422) and statuses[3] in (200, 422) and statuses[4] == 200, statuses
    assert srv.requests and srv.requests[0]["headers"]["authorization"] == f"Bearer {COMPAT_KEY}"  # the key was used
    assert "request end" in output and len(output.splitlines()) >= 7
    assert "***" in output  # secrets did reach log calls, and were masked there
    for secret in (OPENAI_KEY, COMPAT_KEY, AV_KEY, BOGUS_BEARER, QUERY_KEY, REDIS_PASSWORD, real_key, ADMIN_KEY):
        assert secret not in output, f"{secret[:12]}... appears in the logs"
