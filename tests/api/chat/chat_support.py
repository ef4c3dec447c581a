"""Helpers for chat API tests that need their own Core: a model whose turns wait for the test, and a
TestClient serving a Core built from custom settings."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterator

from shared.ai.models.base import BaseModelClient, ModelEvent, Usage


class GatedModel(BaseModelClient):
    """A model client (the BaseModelClient contract) whose turns wait until `gate` is set, then answer
    "ok". With `endless`, a turn streams a delta every 10 ms until its stream is closed; with `fail`, it
    raises that error instead. Counts the turns asked (`requests`) and the streams closed (`closed`), and
    keeps the messages of every turn (`prompts`)."""

    provider = "openai"
    model = "gated-1"

    def __init__(self, *, endless: bool = False, fail: BaseException | None = None) -> None:
        self.gate = threading.Event()
        self.endless = endless
        self.fail = fail
        self._lock = threading.Lock()
        self.requests = 0
        self.closed = 0
        self.prompts: list[list[dict]] = []

    def generate_stream(self, messages: list[dict], tools: list[dict] | None = None, **opts: Any) -> Iterator[ModelEvent]:
        with self._lock:
            self.requests += 1
            self.prompts.append([dict(m) for m in messages])
        return self._turn()

    def _turn(self) -> Iterator[ModelEvent]:
        try:
            if self.fail is not None:
                raise self.fail
            assert self.gate.wait(30), "the test never opened the gate"
            while self.endless:
                yield ModelEvent("delta", text="tick ")
                time.sleep(0.01)
            yield ModelEvent("delta", text="ok")
            yield ModelEvent("usage", usage=Usage(5, 1, 6))
            yield ModelEvent("finish", finish_reason="stop")
        finally:
            with self._lock:
                self.closed += 1


@contextlib.contextmanager
def serve_core(tmp_path: Any, model: BaseModelClient | None = None, **overrides: Any) -> Iterator[tuple[Any, Any]]:
    """(TestClient, Core) for a Core built from the test settings plus `overrides` (sections), with
    `model` as the only (openai) model provider when given."""
    from starlette.testclient import TestClient

    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from tests.conftest import make_settings

    if model is not None:
        overrides["models"] = {"provider": "openai", "allow_fallback": False, **overrides.get("models", {})}
    core = build_core(make_settings(tmp_path, **overrides), model_clients={"openai": model} if model else None)
    core.services.auth.seed_local_admin()
    previous = set_core(core)
    try:
        with TestClient(build_asgi_app(), base_url="http://testserver") as client:
            yield client, core
    finally:
        set_core(previous)
        core.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout_s` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.01)
