"""Build a Starlette app from the FunctionApp's own registrations (no second route table).

Each HTTP trigger's route template becomes a Starlette route under host.json's
routePrefix whose endpoint is the very function the worker would call. Timer functions
run on demand through `POST /admin/functions/{name}`, as Core Tools does, but only for a
caller on this machine (loopback) and only with APP_ENV=local. What no route answers (an
unknown path outside /api, TRACE or another method nothing declares) is a problem body with
the same security headers as every API response.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devhost.queues import QueueHost, queue_functions
from shared import errors
from shared.http.api import API_PREFIX, apply_headers, registry, request_id_from
from shared.http.problems import problem_response
from shared.logging import bound_request_id

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("devhost")


def route_prefix(host_json: Path = ROOT / "host.json") -> str:
    try:
        prefix = json.loads(host_json.read_text())["extensions"]["http"]["routePrefix"]
    except (OSError, KeyError, ValueError):
        prefix = "api"
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


def _starlette_path(prefix: str, template: str) -> str:
    path = re.sub(r"\{\*([^}]+)\}", r"{\1:path}", template)  # Functions catch-all -> Starlette path converter
    path = re.sub(r"\{(\w+)(?::(?!path\})[^}]*)?\??\}", r"{\1}", path)  # drop Functions constraints ({id:int}, {x?})
    return f"{prefix}/{path}".replace("//", "/")


class _Timer:
    """What a timer function receives when run on demand."""

    past_due = False
    schedule_status: dict[str, Any] = {}


_indexed: dict[int, list[Any]] = {}


def registered_functions(app: Any) -> list[Any]:
    """`app.get_functions()`, indexed once: a second call fails its name-uniqueness check."""
    if id(app) not in _indexed:
        _indexed[id(app)] = app.get_functions()
    return _indexed[id(app)]


def _http_and_timers(app: Any) -> tuple[list[tuple[str, list[str], Any]], dict[str, Any], dict[str, str]]:
    http: list[tuple[str, list[str], Any]] = []
    timers: dict[str, Any] = {}
    schedules: dict[str, str] = {}
    for fn in registered_functions(app):
        trigger = fn.get_trigger()
        user_fn = fn.get_user_function()
        if trigger.type == "httpTrigger":
            methods = [getattr(m, "value", str(m)) for m in (trigger.methods or [])] or ["GET", "POST"]
            http.append((trigger.route or fn.get_function_name(), methods, user_fn))
        elif trigger.type == "timerTrigger":
            timers[fn.get_function_name()] = user_fn
            schedules[fn.get_function_name()] = trigger.schedule
    return http, timers, schedules


def resolve_schedule(schedule: str, settings: Any) -> str:
    """A timer's NCRONTAB schedule; `%NAME%` is read from the setting NAME, as the Functions host does."""
    match = re.fullmatch(r"%([A-Za-z0-9_]+)%", schedule.strip())
    if not match:
        return schedule
    from shared.config import env as env_table

    setting = env_table.by_name(match.group(1))
    if setting is None or setting.path is None:
        raise ValueError(f"timer schedule {schedule} names no known setting")
    value: Any = settings
    for part in setting.path.split("."):
        value = getattr(value, part)
    return str(value)


def next_fire(schedule: str, after: datetime) -> datetime:
    """The next time a six-field NCRONTAB schedule ("sec min hour day month weekday") fires."""
    from croniter import croniter

    return croniter(schedule, after, second_at_beginning=True).get_next(datetime)


async def _run_on_schedule(name: str, fn: Any, schedule: str) -> None:
    while True:
        now = datetime.now(timezone.utc)
        await asyncio.sleep((next_fire(schedule, now) - now).total_seconds())
        try:
            await _invoke_timer(fn)
        except Exception:  # a failed run is logged; the next one still happens, as on the Functions host
            log.exception("timer %s failed", name)


async def _invoke_timer(fn: Any) -> None:
    if inspect.iscoroutinefunction(fn):
        await fn(_Timer())
    else:
        await asyncio.to_thread(fn, _Timer())


def _is_loopback(request: Request) -> bool:
    """Whether the socket peer is this machine (the local host trusts no forwarding header)."""
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


async def _problem(request: Request, exc: Exception) -> Response:
    """What no function answers (Starlette's 404/405) and the local admin route's refusals, as problems."""
    path = request.url.path
    if isinstance(exc, errors.ApiError):
        err = exc
    elif isinstance(exc, HTTPException) and exc.status_code == 405:
        allowed = registry.allowed_methods(path) if path.startswith(API_PREFIX + "/") else []
        allow = ", ".join(allowed) or (exc.headers or {}).get("Allow", "")
        err = errors.MethodNotAllowed(f"{request.method} is not allowed here", headers={"Allow": allow})
    else:
        err = errors.NotFound(f"No route matches {path}")
    request_id = request_id_from(request)
    response = problem_response(err, instance=request.url.path, request_id=request_id)
    apply_headers(response, request, request_id, None, authenticated=False)
    return response


def build_asgi_app(app: Any | None = None, *, schedule_timers: bool = False, run_queues: bool = False) -> Starlette:
    """The local host's ASGI app. With `schedule_timers`, timer functions also run on their schedules;
    with `run_queues`, queue-triggered functions run on their queues' messages (devhost/queues.py)."""
    if app is None:
        from function_app import app as function_app

        app = function_app
    prefix = route_prefix()
    http, timers, schedules = _http_and_timers(app)

    def endpoint_for(user_fn: Any):
        async def endpoint(request: Request) -> Response:
            return await user_fn(request)

        return endpoint

    # Literal routes before parameterised ones, catch-alls last: the Functions host's precedence.
    def precedence(item: tuple[str, list[str], Any]) -> tuple[int, int]:
        template = item[0]
        return (1 if "{*" in template else 0, template.count("{"))

    routes = [
        Route(_starlette_path(prefix, template), endpoint_for(fn), methods=methods)
        for template, methods, fn in sorted(http, key=precedence)
    ]

    async def run_timer(request: Request) -> Response:
        from shared.runtime import get_core_async

        if (await get_core_async()).settings.app.env != "local":
            raise errors.NotFound("No route matches this path")  # the local host's admin route exists locally only
        if not _is_loopback(request):
            raise errors.Forbidden("Timers run on demand only for a caller on this machine")
        name = request.path_params["name"]
        fn = timers.get(name)
        if fn is None:
            raise errors.NotFound(f"No timer function {name}", extra={"timers": sorted(timers)})
        with bound_request_id(request_id_from(request)) as request_id:  # work the timer queues carries this id
            await _invoke_timer(fn)
        return Response(status_code=202, headers={"X-Request-ID": request_id})

    routes.append(Route("/admin/functions/{name}", run_timer, methods=["POST"]))

    queue_fns = queue_functions(app)

    @asynccontextmanager
    async def lifespan(_app: Starlette):
        tasks = []
        queue_host = None
        if run_queues and queue_fns:
            from shared.queues import host_queue_options
            from shared.runtime import get_core

            queue_host = QueueHost(get_core().services.queue_backend, queue_fns, host_queue_options())
            await queue_host.start()
            for line in queue_host.describe():
                log.info("queue %s", line)
        if schedule_timers:
            from shared.runtime import get_core

            settings = get_core().settings
            for name, fn in timers.items():
                schedule = resolve_schedule(schedules[name], settings)
                log.info("timer %s scheduled (%s), next run %s", name, schedule,
                         next_fire(schedule, datetime.now(timezone.utc)).isoformat())
                tasks.append(asyncio.create_task(_run_on_schedule(name, fn, schedule)))
        yield
        for task in tasks:
            task.cancel()
        if queue_host is not None:
            await queue_host.stop()

    star = Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={404: _problem, 405: _problem, errors.ApiError: _problem})
    star.state.timers = sorted(timers)
    star.state.queues = {qf.queue: qf.name for qf in queue_fns}
    star.state.http_routes = [(t, m) for t, m, _ in http]
    return star
