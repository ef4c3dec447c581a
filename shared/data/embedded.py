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


def install_batch_insert() -> bool:
    """Make the wire `insert` command use mongoeco's batch insert path.

    Why: mongoeco 4.11 serves the wire `insert` command as one `insert_one` per
    document, and its single-document insert scans the whole collection (an _id
    equality check), so `insert_many` over the wire is O(n^2). Its own
    `insert_many` uses the engine's batch SPI (index lookups), with the same
    validation, duplicate-key and ordered/unordered semantics; this routes
    acknowledged multi-document inserts there and maps its BulkWriteError back to
    per-document write errors. Documents with numeric `_id`s, unacknowledged writes
    and `bypassDocumentValidation` keep mongoeco's own path. Idempotent; returns False
    (and changes nothing) if mongoeco's internals are not the expected shape.
    """
    try:
        from mongoeco.api._async import _database_admin_write_commands as admin
        from mongoeco.errors import BulkWriteError
        from mongoeco.types import WriteCommandResult, WriteErrorEntry
    except ImportError:  # pragma: no cover - other mongoeco versions
        return False
    cls = getattr(admin, "DatabaseAdminWriteCommandService", None)
    original = getattr(cls, "command_insert", None)
    if original is None:  # pragma: no cover
        return False
    if getattr(original, "_batched", False):
        return True

    async def command_insert(self, spec, *, session=None):  # noqa: ANN001, ANN202 - mirrors mongoeco
        raw = spec.get("documents")
        concern = spec.get("writeConcern")
        if (
            not isinstance(raw, list)
            or not raw
            # Numeric _ids need mongoeco's cross-type equality scan (1 == 1.0); ObjectId/str do not.
            or not all(isinstance(d, dict) and type(d.get("_id")).__name__ in ("ObjectId", "str") for d in raw)
            or spec.get("bypassDocumentValidation")
            or (isinstance(concern, dict) and concern.get("w", 1) == 0)
        ):
            return await original(self, spec, session=session)
        name = self._admin._require_collection_name(spec.get("insert"), "insert")
        documents = self._admin._normalize_insert_documents(raw)
        ordered = self._admin._normalize_ordered_from_command(spec.get("ordered"))
        collection = self._admin._database.get_collection(name)
        try:
            result = await collection.insert_many(documents, ordered=ordered, session=session)
        except BulkWriteError as exc:
            details = exc.details or {}
            errors = [
                WriteErrorEntry(
                    index=e["index"], errmsg=e.get("errmsg", ""), code=e.get("code"), operation=e.get("op"),
                    details={k: v for k, v in e.items() if k not in ("index", "errmsg", "code", "op")} or None,
                )
                for e in details.get("writeErrors", [])
            ]
            return WriteCommandResult(count=int(details.get("nInserted", 0)), write_errors=errors or None)
        return WriteCommandResult(count=len(result.inserted_ids))

    command_insert._batched = True  # type: ignore[attr-defined]
    cls.command_insert = command_insert
    return True


class EmbeddedMongoServer:
    """Owns one mongoeco wire server (own thread + event loop) over one SQLite file.

    Guarantees: `start()` returns a `mongodb://127.0.0.1:<port>/?directConnection=true`
    URI once the server accepts connections (or raises within `start_timeout_s`);
    `close()` stops the server, flushes and closes the SQLite file, and is idempotent.
    Only loopback is bound. Two servers on one file work (SQLite locking) but writes
    are serialised, so prefer one owning process per data directory.
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

        install_batch_insert()
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
