"""The deployment package (the project directory minus .funcignore, as azd and Core Tools zip it)
holds only what runs on the Function App.

Checked against every file git tracks plus the files that tools leave in a working copy, with
gitignore semantics (pathspec), so a new top-level file or folder fails here until it is either
runtime code or listed in .funcignore.
"""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath

import pathspec

from infra_bicep_reader import REPO

RUNTIME_FILES = {"function_app.py", "host.json", "requirements.txt"}
RUNTIME_DIRS = {"functions", "shared", "config"}
CACHE_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}
# Left behind by make test / make bench / make run / azd / an editor; never tracked.
WORKING_COPY_FILES = [
    "bench-results.json", ".python-version", "local.settings.json", ".data/stockagent.sqlite3",
    ".venv", ".venv/bin/python", ".azure/prod/.env", ".vscode/settings.json", ".python_packages/lib/x.py",
    "__pycache__/function_app.cpython-313.pyc", "shared/__pycache__/runtime.cpython-313.pyc",
    "functions/__pycache__/market.cpython-313.pyc", ".pytest_cache/v/cache/lastfailed",
    ".hypothesis/examples/x", ".mypy_cache/3.13/x.json", ".ruff_cache/x", "stockagent.egg-info/PKG-INFO",
]


def runs(path: str) -> bool:
    """Whether the Function App needs `path` at run time."""
    parts = PurePosixPath(path).parts
    if len(parts) == 1:
        return path in RUNTIME_FILES
    return (parts[0] in RUNTIME_DIRS and not CACHE_DIRS & set(parts)
            and PurePosixPath(path).suffix not in {".md", ".pyc"})


def package(paths: list[str]) -> set[str]:
    spec = pathspec.GitIgnoreSpec.from_lines((REPO / ".funcignore").read_text(encoding="utf-8").splitlines())
    return {p for p in paths if not spec.match_file(p)}


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def test_package_holds_exactly_the_runtime_files() -> None:
    candidates = tracked_files() + WORKING_COPY_FILES
    deployed = package(candidates)
    assert deployed == {p for p in candidates if runs(p)}, {
        "deployed but not needed": sorted(deployed - {p for p in candidates if runs(p)}),
        "needed but ignored": sorted({p for p in candidates if runs(p)} - deployed),
    }


def test_package_is_complete() -> None:
    """The entry point, the host configuration and every domain module are in it."""
    deployed = package(tracked_files())
    assert RUNTIME_FILES <= deployed
    assert {"functions/market.py", "shared/runtime.py", "config/config.yaml"} <= deployed


def test_the_rule_itself() -> None:
    assert runs("shared/data/seed/symbols.json") and runs("config/config.production.yaml")
    assert not runs("shared/data/EMBEDDED_STORE.md") and not runs("shared/__pycache__/x.pyc")
    assert not runs("README.md") and not runs("docs/api.md") and not runs("pytest.ini")
