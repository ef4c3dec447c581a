"""The local host's queue side: Azurite (or in-process queues) and a poller with the Functions host's semantics.

`provide_storage()` decides where queues live before the core is built: the configured
AzureWebJobsStorage when it names a real endpoint; otherwise Azurite from `.tools/` (installed by
`make` when node is present), started on loopback with its data under LOCAL_DATA_DIR, and the
process's AzureWebJobsStorage pointed at it; otherwise in-process queues, said in the log.

`QueueHost` polls the queue of every queue-triggered function of the FunctionApp and invokes it
as the host does (host.json `extensions.queues`): up to batchSize messages at once, another batch
when newBatchThreshold or fewer are running, each message hidden while its function runs (up to
functionTimeout), base64-decoded before the call, deleted on success, made visible again after
visibilityTimeout on failure, and moved to `<queue>-poison` once its dequeue count reaches
maxDequeueCount.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.queues import MessageLost, QueueBackend, QueuedMessage, QueueHostOptions, poison_queue
from shared.queues.connection import CONNECTION, resolve_queue_connection
from shared.queues.envelope import decode_text

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("devhost.queues")

# Azurite's account and key are public, documented development values (the same for every install).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_DEFAULT_QUEUE_PORT = 10001
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
MIN_POLL_S = 0.1  # the host's shortest wait between polls of an empty queue


# ---------------------------------------------------------------- Azurite


def azurite_binary(environ: Mapping[str, str] = os.environ) -> str | None:
    """Azurite's queue service: AZURITE_BIN, else `.tools/` (make installs it there), else PATH; None without node."""
    explicit = environ.get("AZURITE_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if shutil.which("node") is None:
        return None
    local = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-queue"
    return str(local) if os.access(local, os.X_OK) else shutil.which("azurite-queue")


def azurite_connection_string(port: int, host: str = "127.0.0.1") -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"QueueEndpoint=http://{host}:{port}/{AZURITE_ACCOUNT};")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux), so no Azurite outlives its host."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Azurite:
    """One Azurite queue service on loopback (`--skipApiVersionCheck`: the Python SDK speaks a newer
    API version than Azurite announces; `--disableTelemetry`: it would otherwise phone home)."""

    def __init__(self, binary: str, *, location: Path, port: int, host: str = "127.0.0.1") -> None:
        self.binary = binary
        self.location = location
        self.host = host
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.port, self.host)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 30.0) -> "Azurite":
        """Start and return once the service accepts connections; RuntimeError if it does not."""
        if self.running:
            return self
        self.location.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [self.binary, "--queueHost", self.host, "--queuePort", str(self.port), "--location", str(self.location),
             "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode(errors="replace").strip()
                raise RuntimeError(f"azurite exited with {self._proc.returncode}: {err[-300:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"azurite did not listen on {self.host}:{self.port} within {timeout_s:g} s")

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


@dataclass
class Storage:
    """Where this local host's queues live; `close()` stops an Azurite it started."""

    description: str
    azurite: Azurite | None = None

    def close(self) -> None:
        if self.azurite is not None:
            self.azurite.stop()


def provide_storage(data_dir: str | Path, environ: MutableMapping[str, str] = os.environ) -> Storage:
    """Make AzureWebJobsStorage in `environ` name the queues this local host uses, and say which.

    A configured storage (a connection string with endpoints or an account key, or identity-based
    settings) is used as is. `UseDevelopmentStorage=true` or nothing means "the emulator": Azurite
    is started (AZURITE_QUEUE_PORT, else 10001 when free, else any free port) and the connection
    string points at it. Without node or Azurite, or when Azurite does not start, AzureWebJobsStorage
    is removed and the core uses in-process queues.
    """
    configured = (environ.get(CONNECTION) or "").replace(" ", "").strip(";").lower()
    if configured != DEVELOPMENT_STORAGE.lower() and resolve_queue_connection(environ).kind != "in_process":
        return Storage(f"configured: {resolve_queue_connection(environ).description}")
    binary = azurite_binary(environ)
    if binary is None:
        why = "node not found" if shutil.which("node") is None and not environ.get("AZURITE_BIN") \
            else "azurite not installed; make run installs it into .tools/ when node is present"
        return _in_process(environ, why)
    wanted = environ.get("AZURITE_QUEUE_PORT")
    port = int(wanted) if wanted else (AZURITE_DEFAULT_QUEUE_PORT if port_is_free(AZURITE_DEFAULT_QUEUE_PORT)
                                        else free_port())
    try:
        azurite = Azurite(binary, location=Path(data_dir) / "azurite", port=port).start()
    except (OSError, RuntimeError) as exc:  # a broken install or a taken port: still serve, on in-process queues
        return _in_process(environ, f"azurite did not start: {exc}")
    environ[CONNECTION] = azurite.connection_string
    return Storage(f"azurite {azurite.url} (data {azurite.location})", azurite)


def _in_process(environ: MutableMapping[str, str], why: str) -> Storage:
    environ.pop(CONNECTION, None)  # the core then builds in-process queues, which this host polls
    return Storage(f"in-process queues ({why}): same semantics, messages live in this process only")


# ---------------------------------------------------------------- the poller


@dataclass(frozen=True)
class QueueFunction:
    """A queue-triggered function: `fn(**{arg_name: QueueMessage})` for messages on `queue`."""

    name: str
    queue: str
    arg_name: str
    fn: Callable[..., Any]


def queue_functions(app: Any) -> list[QueueFunction]:
    """The FunctionApp's queue-triggered functions, from its own registrations."""
    from devhost.app import registered_functions

    out = []
    for fn in registered_functions(app):
        trigger = fn.get_trigger()
        if trigger.type == "queueTrigger":
            out.append(QueueFunction(fn.get_function_name(), trigger.queue_name, trigger.name, fn.get_user_function()))
    return out


@dataclass
class QueueHost:
    """Polls each function's queue and invokes it with the Functions host's semantics (module docstring)."""

    backend: QueueBackend
    functions: list[QueueFunction]
    options: QueueHostOptions
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    async def create_queues(self) -> None:
        """Create every watched queue (idempotent), as the host does before it listens."""
        for qf in self.functions:
            await asyncio.to_thread(self.backend.create_queue, qf.queue)

    async def start(self) -> None:
        """Create every watched queue and start polling."""
        await self.create_queues()
        self._tasks = [asyncio.create_task(self._listen(qf), name=f"queue:{qf.queue}") for qf in self.functions]

    async def stop(self) -> None:
        """Stop polling; messages still running reappear after their visibility timeout (at least once)."""
        for task in [*self._tasks, *self._in_flight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._in_flight, return_exceptions=True)
        self._tasks = []

    async def poll_once(self, qf: QueueFunction) -> int:
        """Receive one batch of `qf`'s queue and process it to the end; returns how many messages it held."""
        messages = await asyncio.to_thread(self.backend.receive, qf.queue, max_messages=self.options.batch_size,
                                           visibility_timeout_s=int(self.options.function_timeout_s))
        await asyncio.gather(*(self._process(qf, m) for m in messages))
        return len(messages)

    async def _listen(self, qf: QueueFunction) -> None:
        running: set[asyncio.Task[None]] = set()
        delay = MIN_POLL_S
        failing = False
        while True:
            fetched = 0
            if len(running) <= self.options.new_batch_threshold:
                try:
                    messages = await asyncio.to_thread(
                        self.backend.receive, qf.queue, max_messages=self.options.batch_size,
                        visibility_timeout_s=int(self.options.function_timeout_s))
                except Exception as exc:  # the queue service is down: keep polling, as the host does
                    # Said once per outage (polls go on every few seconds), and again when it answers.
                    log.log(logging.DEBUG if failing else logging.WARNING, "polling %s failed: %s; polling on",
                            qf.queue, exc)
                    failing, messages = True, []
                else:
                    if failing:
                        log.info("polling %s works again", qf.queue)
                    failing = False
                for message in messages:
                    task = asyncio.create_task(self._process(qf, message))
                    for group in (running, self._in_flight):
                        group.add(task)
                        task.add_done_callback(group.discard)
                fetched = len(messages)
            # Found work: look again soon. An empty queue: back off exponentially up to maxPollingInterval.
            delay = MIN_POLL_S if fetched else min(delay * 2, max(MIN_POLL_S, self.options.max_polling_interval_s))
            await asyncio.sleep(MIN_POLL_S if fetched or running else delay)

    async def _process(self, qf: QueueFunction, message: QueuedMessage) -> None:
        limit = self.options.max_dequeue_count
        if message.dequeue_count > limit:  # received too often without completing (crashed runs)
            await self._to_poison(qf, message)
            return
        started = time.perf_counter()
        try:
            await self._invoke(qf, message)
        except Exception as exc:  # the function failed: retry later or give up, as the host does
            log.warning("Executed '%s' (Failed, message %s, dequeue count %d of %d, %.0f ms): %s: %s", qf.name,
                        message.id, message.dequeue_count, limit, (time.perf_counter() - started) * 1000,
                        type(exc).__name__, exc)
            if message.dequeue_count >= limit:
                await self._to_poison(qf, message)
            else:
                await self._settle(self.backend.release, qf.queue, message,
                                   visibility_timeout_s=int(self.options.visibility_timeout_s))
            return
        log.info("Executed '%s' (Succeeded, message %s, %.0f ms)", qf.name, message.id,
                 (time.perf_counter() - started) * 1000)
        await self._settle(self.backend.delete, qf.queue, message)

    async def _invoke(self, qf: QueueFunction, message: QueuedMessage) -> None:
        from azure.functions.queue import QueueMessage  # the worker's class, with dequeue count and times

        arg = QueueMessage(
            id=message.id, body=decode_text(message.text, self.options.message_encoding), pop_receipt=message.pop_receipt,
            dequeue_count=message.dequeue_count, insertion_time=message.inserted_on,
            expiration_time=message.expires_on, time_next_visible=message.next_visible_on)
        if inspect.iscoroutinefunction(qf.fn):
            await qf.fn(**{qf.arg_name: arg})
        else:
            await asyncio.to_thread(qf.fn, **{qf.arg_name: arg})

    async def _to_poison(self, qf: QueueFunction, message: QueuedMessage) -> None:
        target = poison_queue(qf.queue)
        log.warning("Message %s has reached MaxDequeueCount of %d. Moving message to queue '%s'.", message.id,
                    self.options.max_dequeue_count, target)
        try:
            await asyncio.to_thread(self.backend.create_queue, target)
            await asyncio.to_thread(self.backend.send, target, message.text)
        except Exception as exc:  # the queue service is down: the message comes back, and is moved then
            log.warning("message %s could not be moved to %s (%s); it comes back after its visibility timeout",
                        message.id, target, exc)
            return
        await self._settle(self.backend.delete, qf.queue, message)

    async def _settle(self, op: Callable[..., Any], queue: str, message: QueuedMessage, **kw: Any) -> None:
        try:
            await asyncio.to_thread(op, queue, message.id, message.pop_receipt, **kw)
        except MessageLost:  # its visibility ran out mid-run: another consumer has it now
            log.warning("message %s on %s was no longer held when settled; it may run again", message.id, queue)
        except Exception as exc:  # the queue service is down: the message comes back after its visibility timeout
            log.warning("message %s on %s could not be settled (%s); it comes back after its visibility timeout "
                        "(at least once)", message.id, queue, exc)

    def describe(self) -> list[str]:
        o = self.options
        return [f"{qf.queue} -> {qf.name} (batchSize {o.batch_size}, newBatchThreshold {o.new_batch_threshold}, "
                f"maxDequeueCount {o.max_dequeue_count}, visibilityTimeout {o.visibility_timeout_s:g} s, "
                f"messageEncoding {o.message_encoding})" for qf in self.functions]
