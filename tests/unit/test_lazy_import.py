"""Importing function_app is cheap: no client, no heavy SDK (DESIGN.md decision 3)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("openai", "yfinance", "pandas", "numpy", "azure.identity", "azure.keyvault", "azure.storage", "pymongo",
         "redis", "mcp", "mcp_types")


def test_import_function_app_loads_no_heavy_module_and_builds_no_core():
    code = (
        "import sys, function_app, shared.runtime as rt\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy)); print(rt._core is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    heavy, no_core = out.stdout.rstrip("\n").split("\n")
    assert heavy == "", f"imported at module load: {heavy}"
    assert no_core == "True"
