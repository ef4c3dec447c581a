"""Timer functions: market-data cache warming and migrations. Schedules come from app settings."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("stockagent.timers")


# %NAME% is resolved by the Functions host from app settings; the local host resolves it from config.
@bp.function_name("market_refresh")
@bp.timer_trigger(arg_name="timer", schedule="%MARKET_REFRESH_SCHEDULE%", run_on_startup=False, use_monitor=True)
def market_refresh(timer: func.TimerRequest) -> None:
    """Warm the quote cache for every watched, held and core symbol, in provider batches."""
    from shared.runtime import get_core  # at first run, not at import: keeps cold start light

    summary = get_core().services.market_refresh.run()
    log.info("market refresh: %s", summary, extra={"summary": summary, "past_due": timer.past_due})


@bp.function_name("run_migrations")
@bp.timer_trigger(arg_name="timer", schedule="%MIGRATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def run_migrations(timer: func.TimerRequest) -> None:
    """Apply pending schema migrations (idempotent; a lock keeps concurrent runs apart)."""
    from shared.runtime import get_core

    summary = get_core().services.migrations.run()
    log.info("migrations: %s", summary, extra={"summary": summary})
