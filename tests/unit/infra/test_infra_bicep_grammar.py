"""Optional grammar checks: a real Bicep grammar (pycep-parser) and, where installed, the Bicep CLI.

Neither is on PyPI as the official compiler: the Bicep CLI ships from GitHub releases and NuGet,
which CI cannot reach, so the compile test runs only where a `bicep` binary is already present.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from infra_bicep_reader import INFRA, BicepFile


@pytest.fixture(scope="module")
def pycep():
    return pytest.importorskip("pycep", reason="pycep-parser not installed (optional: pycep-parser>=0.7,<0.8)")


def test_every_file_parses_with_a_bicep_grammar(pycep, bicep_files: dict[str, BicepFile]):
    parser = pycep.BicepParser()
    for rel, f in bicep_files.items():
        tree = parser.parse(text=f.text)
        assert set(tree.get("parameters", {})) == set(f.params), rel
        assert set(tree.get("outputs", {})) == set(f.outputs), rel
        assert {name for name in tree.get("modules", {})} == {m.symbol for m in f.modules}, rel
        for name, p in f.params.items():
            decorators = {d["type"] for d in tree["parameters"][name].get("decorators", [])}
            assert ("secure" in decorators) == p.secure, f"{rel}: {name}"


def test_grammar_rejects_a_broken_file(pycep, bicep_files: dict[str, BicepFile]):
    text = bicep_files["infra/app/api.bicep"].text.replace("var coreSettings = {", "var coreSettings = ", 1)
    with pytest.raises(Exception):
        pycep.BicepParser().parse(text=text)


def _bicep_cli() -> list[str] | None:
    if shutil.which("bicep"):
        return ["bicep"]
    return None


@pytest.mark.skipif(_bicep_cli() is None, reason="Bicep CLI not installed (not available from PyPI/npm)")
def test_main_bicep_compiles(tmp_path):
    out = tmp_path / "main.json"
    result = subprocess.run(
        [*_bicep_cli(), "build", str(INFRA / "main.bicep"), "--outfile", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    template = json.loads(out.read_text(encoding="utf-8"))
    assert "mongoAdminPassword" in template["parameters"]
    assert template["parameters"]["mongoAdminPassword"]["type"] == "securestring"
