"""Fixtures for the infra tests: every .bicep file under infra/, read once per session."""

from __future__ import annotations

import json

import pytest

from infra_bicep_reader import INFRA, REPO, BicepFile, load_bicep


@pytest.fixture(scope="session")
def bicep_files() -> dict[str, BicepFile]:
    files = sorted(INFRA.rglob("*.bicep"))
    assert files, f"no .bicep files under {INFRA}"
    return {f.relative_to(REPO).as_posix(): load_bicep(f) for f in files}


@pytest.fixture(scope="session")
def main_bicep(bicep_files: dict[str, BicepFile]) -> BicepFile:
    return bicep_files["infra/main.bicep"]


@pytest.fixture(scope="session")
def api_bicep(bicep_files: dict[str, BicepFile]) -> BicepFile:
    return bicep_files["infra/app/api.bicep"]


@pytest.fixture(scope="session")
def main_parameters() -> dict:
    return json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
