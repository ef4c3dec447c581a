"""Shared fixtures: a Core built on the embedded store and the memory cache, served through
the same ASGI app the local host runs, so API tests exercise the real HTTP surface."""

from __future__ import annotations

import itertools
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("APP_ENV", "test")

ADMIN_KEY = "test-admin-key-0123456789"
_ids = itertools.count(1)


def make_settings(tmp: Path, **overrides):
    from shared.config import Settings

    base = {
        "app": {"env": "test", "log_level": "WARNING"},
        "auth": {"local_dev_api_key": ADMIN_KEY},
        "mongodb": {"local_data_dir": str(tmp / "data")},
        "http": {"cors": {"origins": ["http://allowed.example"]}},
        "rate_limits": {"enabled": True, "groups": {"read": "10000/minute", "write": "10000/minute",
                                                      "market": "10000/minute", "chat": "10000/minute",
                                                      "auth_failures": "10000/minute"}},
    }
    for section, values in overrides.items():
        base[section] = {**base.get(section, {}), **values}
    return Settings.model_validate(base)


@pytest.fixture(scope="session")
def api_settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="session")
def core(api_settings):
    from shared.queues import InProcessQueues
    from shared.runtime import build_core, set_core

    core = build_core(api_settings, queues=InProcessQueues())  # whatever AzureWebJobsStorage the shell has
    core.services.auth.seed_local_admin()
    previous = set_core(core)
    yield core
    set_core(previous)
    core.close()


@pytest.fixture(scope="session")
def asgi_app(core):
    from devhost.app import build_asgi_app

    return build_asgi_app()


@pytest.fixture(scope="session")
def client(asgi_app):
    from starlette.testclient import TestClient

    with TestClient(asgi_app, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def admin_headers():
    return {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def make_user(core):
    """Create a fresh user with an API key; returns (user, headers)."""

    def make(role: str = "user"):
        n = next(_ids)
        users = core.repos.get_user_repository()
        roles = ["admin", "user"] if role == "admin" else ["user"]
        user = users.insert_one({"email": f"user{n}-{os.getpid()}@example.com", "name": f"User {n}", "roles": roles})
        _, key = core.services.auth.create_api_key(user["id"], "test")
        return user, {"X-API-Key": key}

    return make


def inside_one_minute(seconds_needed: float = 3.0) -> None:
    """Rate-limit windows are aligned to the minute: wait for a fresh one when this one is about to end."""
    import time

    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)


@pytest.fixture
def serve(tmp_path):
    """Serve a fresh Core built from `make_settings(tmp_path, **overrides)` (local admin seeded) through the
    local host's ASGI app; returns a TestClient. `peer` is the socket address the app sees."""
    from starlette.testclient import TestClient

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core

    started = []

    def start(peer: tuple[str, int] = ("testclient", 50000), **overrides):
        core = build_core(make_settings(tmp_path, **overrides))
        core.services.auth.seed_local_admin()
        previous = set_core(core)
        client = TestClient(build_asgi_app(), client=peer).__enter__()
        started.append((client, core, previous))
        return client

    yield start
    for client, core, previous in reversed(started):
        client.__exit__(None, None, None)
        set_core(previous)
        core.close()


@contextmanager
def served_on_loopback(app, **options):
    """Serve `app` with uvicorn on a free loopback port in a thread (`options` are uvicorn.Config's); yields
    the base URL and stops the server on exit."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, **{"log_level": "error", **options, "host": "127.0.0.1", "port": 0}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)
