import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_data_layer_loads_no_driver():
    code = (
        "import sys, shared.data, shared.data.factory, shared.data.migrations, shared.data.client, "
        "shared.data.schema, shared.data.embedded, shared.data.repositories\n"
        "print(','.join(m for m in ('pymongo', 'bson', 'mongoeco', 'mongomock') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
