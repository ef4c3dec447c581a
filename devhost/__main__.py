"""`python -m devhost`: serve the app on http://127.0.0.1:7071 (HOST/PORT override)."""

from __future__ import annotations

import atexit
import json
import logging
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_local_settings(path: Path = ROOT / "local.settings.json") -> None:
    """Export local.settings.json `Values` like Core Tools does; real environment variables win."""
    if not path.exists():
        return
    values = json.loads(path.read_text()).get("Values", {})
    for key, value in values.items():
        os.environ.setdefault(key, str(value))


def create_app():
    """Factory for uvicorn: builds the core eagerly so start-up problems show at once."""
    from devhost.app import build_asgi_app
    from devhost.queues import provide_storage
    from shared.config import load_settings
    from shared.runtime import get_core

    # Before the core: the queues it sends to are the ones this host polls (Azurite, or in-process).
    storage = provide_storage(load_settings().mongodb.local_data_dir)
    atexit.register(storage.close)
    core = get_core()
    settings = core.settings
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "7071")
    log = logging.getLogger("devhost")
    base = f"http://{host}:{port}"
    log.info("StockAgent API on %s/api  docs: %s/api/v1/docs  health: %s/api/health", base, base, base)
    for name, desc in core.backends.items():
        log.info("backend %s: %s", name, desc)
    if settings.is_local and settings.auth.local_dev_api_key:
        # Printed, not logged: the log filter masks every configured secret, and this one is meant to be seen.
        key = settings.auth.local_dev_api_key.get_secret_value()
        print(f"demo admin API key (APP_ENV=local only): {key}\n  try: curl -H 'X-API-Key: {key}' {base}/api/v1/users/me",
              flush=True)
    # Like Core Tools, timers also run on their schedules; RUN_TIMERS=0 turns that off.
    run_queues = os.environ.get("RUN_QUEUES", "1") != "0"
    app = build_asgi_app(schedule_timers=os.environ.get("RUN_TIMERS", "1") != "0", run_queues=run_queues)
    log.info("timers runnable with POST %s/admin/functions/{name}: %s", base, ", ".join(app.state.timers))
    log.info("queues: %s; %s", storage.description,
             "watching " + ", ".join(app.state.queues) if run_queues else "not polled (RUN_QUEUES=0)")
    return app


def main() -> None:
    load_local_settings()
    from shared.config import load_settings
    from shared.errors import ConfigError

    try:
        load_settings()  # fail fast, in one line, before the server starts
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    import uvicorn

    uvicorn.run("devhost.__main__:create_app", **uvicorn_options())


def uvicorn_options() -> dict[str, Any]:
    """How the local host runs uvicorn (HOST, PORT, RELOAD from the environment).

    Forwarding headers are never trusted: uvicorn's default would take X-Forwarded-For from any
    loopback caller as the client address, letting it pick the key of every per-address limit.
    """
    reload = os.environ.get("RELOAD", "").lower() in ("1", "true", "yes")
    return {
        "factory": True,
        "host": os.environ.get("HOST", "127.0.0.1"),
        "port": int(os.environ.get("PORT", "7071")),
        "reload": reload,
        "reload_dirs": [str(ROOT / d) for d in ("shared", "functions", "devhost", "config")] if reload else None,
        "proxy_headers": False,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 3,
    }


if __name__ == "__main__":
    main()
