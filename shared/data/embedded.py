"""Embedded, persistent, MongoDB-compatible store for local runs (no MongoDB service needed).

mongoeco's SQLite engine is served over the MongoDB wire protocol on a loopback
port from a background thread, so repositories talk to it with the real pymongo
driver: one code path for local and production. Data lives in one SQLite file
under `local_data_dir` and survives restarts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from contextlib import suppress
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_FILE_NAME = "stockagent.sqlite3"


class EmbeddedMongoServer:
    """Owns one mongoeco wire server (own thread + event loop) over one SQLite file.

    Guarantees: `start()` returns a `mongodb://127.0.0.1:<port>/?directConnection=true`
    URI once the server accepts connections (or raises within `start_timeout_s`);
    `close()` stops the server, flushes and closes the SQLite file, and is idempotent.
    Only loopback is bound. One process should own a given file at a time.
    """

    def __init__(
        self,
        data_dir: str | Path = ".data",
        *,
        file_name: str = DEFAULT_FILE_NAME,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout_s: float = 15.0,
        executor_workers: int = 1,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / file_name
        self._host = host
        self._port = port
        self._start_timeout_s = start_timeout_s
        # One SQLite worker: mongoeco was measured slow/contended with several
        # concurrent writer threads on one file; serialising is faster locally.
        self._executor_workers = executor_workers
        self._ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self.uri: str | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.uri is not None

    def start(self) -> str:
        with self._lock:
            if self.uri is not None:
                return self.uri
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="embedded-mongo", daemon=True)
            self._thread.start()
            try:
                self.uri = self._ready.result(timeout=self._start_timeout_s)
            except BaseException:
                self._shutdown()
                raise
            logger.info("embedded document store started (%s)", self.path)
            return self.uri

    def close(self) -> None:
        with self._lock:
            self._shutdown()
            self.uri = None

    def _shutdown(self) -> None:
        self._stop_requested.set()
        if self._loop is not None and self._stop is not None:
            with suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                logger.warning("embedded document store did not stop within 10 s")

    def __enter__(self) -> EmbeddedMongoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # surfaced to start() through the future
            self._error = error
            if not self._ready.done():
                self._ready.set_exception(error)
            else:
                logger.error("embedded document store stopped with %s", type(error).__name__)

    async def _serve(self) -> None:
        from mongoeco.engines.sqlite import SQLiteEngine
        from mongoeco.wire._lifecycle import finish_cleanup
        from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        engine = SQLiteEngine(str(self.path), executor_workers=self._executor_workers)
        proxy = AsyncMongoEcoProxyServer(engine=engine, host=self._host, port=self._port)
        try:
            await proxy.start()
            self._ready.set_result(proxy.address.uri)
            if not self._stop_requested.is_set():
                await self._stop.wait()
        finally:
            await finish_cleanup(proxy.close())
