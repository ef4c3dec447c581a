from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx

from shared.config.models import Settings
from shared.market.factory import build_data_manager

from tests.unit.market.market_fakes import FakeCache, FakeClock, FakeSingleFlight, SyncExecutor
from tests.upstream import upstream

KINDS = ("quote", "history", "fundamentals", "news", "search")


def test_alpha_vantage_throttle_falls_back_to_offline_without_leaking_key(caplog):
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    settings = Settings.model_validate({"market": {
        "providers": {k: ["alpha_vantage", "offline"] for k in KINDS},
        "alpha_vantage": {"api_key": "TOPSECRET42", "daily_quota": 25},
    }})
    seen = []

    def handler(request):
        seen.append(request)
        body = upstream("alpha_vantage", "information_daily_limit.json")
        body["Information"] = body["Information"].replace("SECRETKEY123", "TOPSECRET42")
        return httpx.Response(200, json=body)

    cache = FakeCache(clock)
    dm = build_data_manager(settings, cache, FakeSingleFlight(), clock=clock, executor=SyncExecutor(),
                            av_transport=httpx.MockTransport(handler))
    q = dm.get_quote("AAPL")
    assert q.provenance.source == "offline" and q.provenance.fallback_from == ["alpha_vantage"]
    f = dm.get_fundamentals("MSFT")  # breaker now open: alpha_vantage skipped without a request
    assert f.provenance.fallback_from == ["alpha_vantage"] and len(seen) == 1
    healthy, details = dm.health_check()
    assert details["providers"]["alpha_vantage"]["state"] == "open"
    assert details["providers"]["alpha_vantage"]["quota_used_today"] == 1
    assert "TOPSECRET42" not in caplog.text
    assert "TOPSECRET42" not in repr(dm.stats()) + repr(details)


def test_building_and_health_import_no_sdk():
    code = (
        "import sys\n"
        "from shared.config.models import Settings\n"
        "from shared.market import build_data_manager\n"
        "from tests.unit.market.market_fakes import FakeCache, FakeSingleFlight\n"
        "s = Settings.model_validate({'market': {'providers': {'quote': ['yahoo', 'alpha_vantage', 'offline']}}})\n"
        "dm = build_data_manager(s, FakeCache(lambda: None), FakeSingleFlight())\n"
        "ok, details = dm.health_check()\n"
        "assert details['providers']['yahoo']['state'] == 'closed', details\n"
        "assert details['providers']['alpha_vantage']['state'] == 'misconfigured', details\n"
        "heavy = [m for m in ('yfinance', 'pandas', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    root = Path(__file__).resolve().parents[3]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert res.returncode == 0, res.stderr


def test_offline_only_default_settings_work_end_to_end():
    clock = FakeClock(datetime(2025, 1, 8, 15, 0, tzinfo=timezone.utc))
    dm = build_data_manager(Settings(), FakeCache(clock), FakeSingleFlight(), clock=clock, executor=SyncExecutor())
    assert dm.get_quote("SPY").provenance.source == "offline"
    assert dm.get_history("AAPL", period="3mo").bars
    assert dm.get_news("AAPL", 3).items
    assert dm.search_symbols("micro")[0].symbol in {"MSFT", "MU", "SMCI", "AMD"}
    assert dm.get_symbol("brk-b").name.startswith("Berkshire")
    series = dm.get_indicators("AAPL", ["sma_20", "ema_50", "rsi_14", "macd", "bbands_20", "atr_14"])
    assert all(s.points and s.provenance.source == "offline" for s in series)
    rsi = series[2].points
    assert all(0 <= p.value <= 100 for p in rsi)
    summary = dm.refresh_quotes()
    assert summary["symbols"] == 8 and summary["failures"] == {}
