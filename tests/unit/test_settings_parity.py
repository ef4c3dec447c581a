"""Every setting the code reads is in the settings table, in local.settings.example.json, and nothing there is unused."""

import json
import re
from pathlib import Path

from shared.config import env as env_table

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py")), *sorted((ROOT / "functions").rglob("*.py"))]
# Reads only: `os.environ["X"] = ...` sets a value for a library (shared/runtime.py), it reads no setting.
_READ = re.compile(r"""(?:os\.environ\.get|os\.getenv|os\.environ\[|environ\.get|env\.get)\(?\s*["']([A-Z][A-Z0-9_]+)["'](?!\]\s*=[^=])""")


def _names_read_in_code() -> set[str]:
    names: set[str] = set()
    for path in DEPLOYED:
        names.update(_READ.findall(path.read_text(encoding="utf-8")))
    return names


def _table() -> set[str]:
    return {s.name for s in env_table.ALL} | set(env_table.PLATFORM)


def test_code_reads_only_settings_in_the_table():
    unknown = _names_read_in_code() - _table()
    assert not unknown, f"read in code but missing from shared/config/env.py: {sorted(unknown)}"


def test_schedules_referenced_by_timers_are_settings():
    from devhost.app import registered_functions
    from function_app import app

    schedules = [fn.get_trigger().schedule for fn in registered_functions(app) if fn.get_trigger().type == "timerTrigger"]
    assert schedules
    for schedule in schedules:
        name = re.fullmatch(r"%([A-Z_]+)%", schedule).group(1)
        assert name in _table()


def test_local_settings_example_matches_the_table_exactly():
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert set(values) == _table(), {
        "missing": sorted(_table() - set(values)),
        "unused": sorted(set(values) - _table()),
    }
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    # Python 3.13 indexes at worker start without it (only 3.12 and older needed it for HTTP streams).
    assert "PYTHON_ENABLE_INIT_INDEXING" not in values


def test_every_override_path_exists_in_the_settings_model():
    from shared.config.models import Settings

    for setting in env_table.ALL:
        if setting.path is None:
            continue
        node: type = Settings
        for part in setting.path.split("."):
            assert part in node.model_fields, f"{setting.name} -> {setting.path}"
            annotation = node.model_fields[part].annotation
            node = annotation if isinstance(annotation, type) else node


def test_keyvault_secrets_are_secret_overrides():
    for name in env_table.KEYVAULT_SECRETS:
        setting = env_table.by_name(name)
        assert setting is not None and setting.secret, name
