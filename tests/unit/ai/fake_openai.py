"""A tiny local server speaking the OpenAI Chat Completions wire format, for tests through the real SDK.

Usage:
    with FakeOpenAIServer() as srv:
        srv.push(text_reply("Hello"), tool_reply([("get_quote", {"symbol": "AAPL"})]), error_reply(500))
        client = OpenAI(base_url=srv.base_url, api_key="test", max_retries=0, timeout=2)

Replies are taken from the script queue in order; when it is empty, `responder(request_body)` decides
(default: text "ok"). Every request is recorded in `srv.requests` as {path, headers, body}.
Supports non-stream JSON, SSE streams (`data: {...}` + `data: [DONE]`), tool-call argument deltas split
across chunks, the usage chunk (stream_options.include_usage), scripted HTTP errors (the API's error object,
with any headers, e.g. `retry-after`), a recorded stream replayed byte for byte (`sse_fixture`, from
tests/fixtures/upstream/openai/), any raw body (empty, malformed JSON, an HTML gateway page), a connection
reset before any response (`reset_reply`), a slow first token, a delay between chunks and a stream cut
mid-answer. Client disconnects while streaming are counted in `srv.disconnects`. Serves on 127.0.0.1 only,
on a free port, in a daemon thread.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "upstream" / "openai"


@dataclass
class Reply:
    text: str | None = None
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)  # (name, args dict or raw JSON string)
    status: int = 200
    error_code: str | None = None
    error_message: str = "scripted error"
    first_delay: float = 0.0  # seconds before the first chunk (after headers)
    chunk_delay: float = 0.0
    cut_after: int | None = None  # close the connection after this many chunks (no finish, no [DONE])
    text_chunk: int = 4
    args_chunk: int = 5
    usage: tuple[int, int] = (11, 7)
    finish_reason: str | None = None
    model: str = "fake-model"
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    sse: str | None = None  # a whole SSE body, sent as is (one write per event)
    body: bytes | None = None  # a raw response body with `status` and `content_type`
    content_type: str = "application/json"
    reset: bool = False  # reset the connection (RST) instead of answering


def text_reply(text: str, **kw: Any) -> Reply:
    return Reply(text=text, **kw)


def tool_reply(calls: list[tuple[str, Any]], text: str | None = None, **kw: Any) -> Reply:
    return Reply(text=text, tool_calls=list(calls), **kw)


def error_reply(status: int, message: str = "scripted error", code: str | None = None,
                headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    """The API's error object with `status` (and e.g. `{"retry-after": "30"}`)."""
    return Reply(status=status, error_message=message, error_code=code, headers=dict(headers or {}), **kw)


def sse_fixture(name: str, **kw: Any) -> Reply:
    """A recorded-shape stream from tests/fixtures/upstream/openai/, replayed byte for byte."""
    return Reply(sse=(FIXTURES / name).read_text(encoding="utf-8"), **kw)


def raw_reply(status: int, body: bytes, content_type: str = "application/json", **kw: Any) -> Reply:
    return Reply(status=status, body=body, content_type=content_type, **kw)


def reset_reply() -> Reply:
    return Reply(reset=True)


def record_sdk_retry_waits(monkeypatch: Any) -> list[dict]:
    """Replace the openai SDK's own retry wait with a recorder: the list of waits it would have made."""
    from openai._base_client import SyncAPIClient

    waits: list[dict] = []
    monkeypatch.setattr(SyncAPIClient, "_sleep_for_retry", lambda self, **kw: waits.append(kw))
    return waits


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: lets a test cut a stream

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        owner._record(self.path, dict(self.headers), body)
        if not self.path.split("?")[0].endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None}})
            return
        reply = owner._next(body)
        if reply.reset:
            # SO_LINGER 0: close() sends RST, as a proxy dropping the connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if reply.body is not None:
            self._send(reply.status, reply.body, reply.content_type, reply.headers)
            return
        if reply.status != 200:
            kind = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                    429: "requests"}.get(reply.status, "server_error")
            self._json(reply.status, {"error": {"message": reply.error_message, "type": kind, "param": None,
                                                "code": reply.error_code}}, reply.headers)
            return
        if body.get("stream"):
            self._stream(reply, body)
        else:
            self._json(200, self._completion(reply, body))

    # -- helpers ---------------------------------------------------------------------------------
    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _args(args: Any) -> str:
        return args if isinstance(args, str) else json.dumps(args)

    def _completion(self, r: Reply, body: dict) -> dict:
        msg: dict[str, Any] = {"role": "assistant", "content": r.text}
        if r.tool_calls:
            msg["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": self._args(a)}}
                for i, (n, a) in enumerate(r.tool_calls)
            ]
        finish = r.finish_reason or ("tool_calls" if r.tool_calls else "stop")
        p, c = r.usage
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": r.model,
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }

    def _chunks(self, r: Reply, body: dict) -> list[dict]:
        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": r.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        text = r.text or ""
        for i in range(0, len(text), r.text_chunk):
            out.append(chunk({"content": text[i : i + r.text_chunk]}))
        for idx, (name, args) in enumerate(r.tool_calls):
            a = self._args(args)
            out.append(chunk({"tool_calls": [{"index": idx, "id": f"call_{idx}", "type": "function",
                                              "function": {"name": name, "arguments": ""}}]}))
            for i in range(0, len(a), r.args_chunk):
                out.append(chunk({"tool_calls": [{"index": idx, "function": {"arguments": a[i : i + r.args_chunk]}}]}))
        out.append(chunk({}, r.finish_reason or ("tool_calls" if r.tool_calls else "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            p, c = r.usage
            out.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": r.model, "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})
        return out

    def _stream(self, r: Reply, body: dict) -> None:
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for k, v in r.headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.flush()
            if r.first_delay:
                time.sleep(r.first_delay)
            if r.sse is not None:
                for n, event in enumerate(r.sse.split("\n\n")):
                    if r.cut_after is not None and n >= r.cut_after:
                        return  # connection closes: stream cut mid-answer
                    if n and r.chunk_delay:
                        time.sleep(r.chunk_delay)
                    self.wfile.write(event.encode() + b"\n\n")
                    self.wfile.flush()
                return
            for n, c in enumerate(self._chunks(r, body)):
                if r.cut_after is not None and n >= r.cut_after:
                    self.wfile.flush()
                    return  # connection closes: stream cut mid-answer
                if n and r.chunk_delay:
                    time.sleep(r.chunk_delay)
                self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            with owner._lock:
                owner.disconnects += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "FakeOpenAIServer"


class FakeOpenAIServer:
    def __init__(self, responder: Callable[[dict], Reply] | None = None) -> None:
        self.script: deque[Reply] = deque()
        self.responder = responder
        self.requests: list[dict] = []
        self.disconnects = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeOpenAIServer":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    # -- scripting -------------------------------------------------------------------------------
    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def _next(self, body: dict) -> Reply:
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Reply(text="ok")

    def _record(self, path: str, headers: dict, body: dict) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": {k.lower(): v for k, v in headers.items()}, "body": body})

    def wait_for_disconnect(self, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.disconnects:
                return True
            time.sleep(0.02)
        return bool(self.disconnects)
