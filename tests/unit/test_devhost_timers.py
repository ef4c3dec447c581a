"""The local host resolves timer schedules from settings and computes NCRONTAB fire times like the host."""

from datetime import datetime, timezone

import pytest

from devhost.app import next_fire, resolve_schedule
from shared.config import Settings


def test_schedule_placeholders_are_read_from_settings():
    settings = Settings.model_validate({"timers": {"market_refresh_schedule": "0 */5 * * * *"}})
    assert resolve_schedule("%MARKET_REFRESH_SCHEDULE%", settings) == "0 */5 * * * *"
    assert resolve_schedule("%MIGRATION_SCHEDULE%", settings) == "0 0 3 * * *"
    assert resolve_schedule("30 * * * * *", settings) == "30 * * * * *"
    with pytest.raises(ValueError):
        resolve_schedule("%NOT_A_SETTING%", settings)


@pytest.mark.parametrize(
    "schedule,after,expected",
    [
        ("0 */15 * * * *", datetime(2026, 1, 1, 0, 7, 30), datetime(2026, 1, 1, 0, 15)),
        ("0 0 3 * * *", datetime(2026, 1, 1, 3, 0, 1), datetime(2026, 1, 2, 3, 0)),
        ("30 * * * * *", datetime(2026, 1, 1, 0, 0, 0), datetime(2026, 1, 1, 0, 0, 30)),
    ],
)
def test_next_fire_uses_six_field_ncrontab(schedule, after, expected):
    utc = timezone.utc
    assert next_fire(schedule, after.replace(tzinfo=utc)) == expected.replace(tzinfo=utc)


def test_timers_run_on_schedule_when_enabled(core, monkeypatch):
    """With scheduling on, the lifespan starts one task per timer and stops them on shutdown."""
    import asyncio

    from starlette.testclient import TestClient

    import devhost.app as host

    fired = []

    async def fake_run(name, fn, schedule):
        fired.append((name, schedule))
        await asyncio.sleep(3600)

    monkeypatch.setattr(host, "_run_on_schedule", fake_run)
    with TestClient(host.build_asgi_app(schedule_timers=True)):
        pass
    assert sorted(fired) == [("market_refresh", core.settings.timers.market_refresh_schedule),
                             ("run_migrations", core.settings.timers.migration_schedule)]
