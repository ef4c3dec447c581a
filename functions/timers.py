"""Timer functions: market-data cache warming (fanned out to a queue) and migrations. Schedules come from app settings."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("stockagent.timers")


# %NAME% is resolved by the Functions host from app settings; the local host resolves it from config.
@bp.function_name("market_refresh")
@bp.timer_trigger(arg_name="timer", schedule="%MARKET_REFRESH_SCHEDULE%", run_on_startup=False, use_monitor=True)
def market_refresh(timer: func.TimerRequest) -> None:
    """Queue the quote refresh of every watched, held and core symbol, one message per provider batch
    (functions/jobs.py runs them). The run's request id goes with every message it queues."""
    from shared.logging import bound_request_id, request_id_var
    from shared.runtime import get_core  # at first run, not at import: keeps cold start light

    with bound_request_id(request_id_var.get()):  # an admin call's id when run through one, else a new one
        if timer.past_due:
            log.warning("market refresh timer is past due")
        get_core().services.market_refresh.fan_out()  # logs the run: symbols, batches, queue


@bp.function_name("run_migrations")
@bp.timer_trigger(arg_name="timer", schedule="%MIGRATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def run_migrations(timer: func.TimerRequest) -> None:
    """Apply pending schema migrations (idempotent; a lock keeps concurrent runs apart)."""
    from shared.runtime import get_core

    summary = get_core().services.migrations.run()
    log.info("migrations: %s", summary, extra={"summary": summary})
