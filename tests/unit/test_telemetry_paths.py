"""Each log record reaches Application Insights once: through the Functions host only.

Under Functions the worker puts a handler on the root logger that forwards every record to the
host, and the host sends it to Application Insights (correlated with the invocation, sampled as
host.json says). The host also ships whatever the worker writes to stderr (category
Host.Function.Console), and the OpenTelemetry distro exports the root logger's records unless its
log exporter is off. So: no stderr handler when a host handler exists, and the distro exports
traces and metrics only. Each check runs in a fresh interpreter: it changes process-wide logging
and OpenTelemetry state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, env: dict[str, str] | None = None) -> dict:
    """Run `code` in a fresh interpreter from the repository root; it prints one JSON line last."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_under_a_host_handler_records_go_through_it_as_json_and_not_to_stderr() -> None:
    out = run_python("""
        import io, json, logging, sys
        sys.stderr = io.StringIO()
        forwarded = io.StringIO()
        host = logging.StreamHandler(forwarded)  # stands in for the worker's gRPC handler
        logging.getLogger().addHandler(host)
        from shared.logging import configure_logging, register_secrets
        register_secrets(["s3cret-value-123"])
        configure_logging("INFO")
        logging.getLogger("stockagent.test").info("key %s", "s3cret-value-123", extra={"route": "/api/x"})
        print(json.dumps({"handlers": len(logging.getLogger().handlers), "forwarded": forwarded.getvalue(),
                          "stderr": sys.stderr.getvalue()}), file=sys.__stdout__)
    """)
    assert out["handlers"] == 1 and out["stderr"] == ""
    line = json.loads(out["forwarded"])
    assert line["route"] == "/api/x" and line["logger"] == "stockagent.test"
    assert "s3cret-value-123" not in out["forwarded"]


def test_a_bare_process_logs_json_to_stderr() -> None:
    out = run_python("""
        import io, json, logging, sys
        sys.stderr = io.StringIO()
        from shared.logging import configure_logging
        configure_logging("INFO")
        logging.getLogger("stockagent.test").info("hello")
        print(json.dumps({"handlers": len(logging.getLogger().handlers), "stderr": sys.stderr.getvalue()}),
              file=sys.__stdout__)
    """)
    assert out["handlers"] == 1 and json.loads(out["stderr"])["msg"] == "hello"


def test_the_distro_exports_traces_and_metrics_but_not_logs(tmp_path: Path) -> None:
    """The real azure-monitor-opentelemetry, pointed at a closed loopback port, with every outbound
    connection to a non-loopback address refused and recorded."""
    out = run_python("""
        import json, logging, socket
        attempts = []
        real_connect = socket.socket.connect
        def connect(self, address):
            if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
                attempts.append(str(address))
                raise OSError("network beyond loopback refused by the test")
            return real_connect(self, address)
        socket.socket.connect = connect

        from pathlib import Path
        from opentelemetry import metrics, trace
        from shared.http.metrics import Metrics
        from shared.runtime import _configure_telemetry
        from tests.conftest import make_settings

        cs = ("InstrumentationKey=00000000-0000-0000-0000-000000000000;"
              "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/")
        settings = make_settings(Path("/nonexistent"), telemetry={"applicationinsights_connection_string": cs})
        before = list(logging.getLogger().handlers)
        _configure_telemetry(settings, Metrics())
        added = [type(h).__module__ + "." + type(h).__name__ for h in logging.getLogger().handlers if h not in before]
        print(json.dumps({"added": added, "tracer": type(trace.get_tracer_provider()).__module__,
                          "meter": type(metrics.get_meter_provider()).__module__, "attempts": attempts}))
    """, env={"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
              "TMPDIR": str(tmp_path), "OTEL_LOGS_EXPORTER": "otlp"})
    assert out["added"] == []
    assert out["tracer"].startswith("opentelemetry.sdk.trace") and out["meter"].startswith("opentelemetry.sdk.metrics")
    assert out["attempts"] == []


def test_a_failing_telemetry_setup_does_not_stop_the_app(monkeypatch, caplog) -> None:
    import types

    from shared.http.metrics import Metrics
    from shared.runtime import _configure_telemetry
    from tests.conftest import make_settings

    def broken(**kwargs: object) -> None:
        raise RuntimeError("exporter could not start")

    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", types.SimpleNamespace(configure_azure_monitor=broken))
    # _configure_telemetry sets both; monkeypatch restores them afterwards.
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "azure_functions")
    settings = make_settings(Path("/nonexistent"), telemetry={"applicationinsights_connection_string": "InstrumentationKey=x"})
    _configure_telemetry(settings, Metrics())
    assert "could not be configured" in caplog.text
