"""Contract fuzzing: schemathesis drives the real ASGI app from its own OpenAPI document.

All default checks run (no server errors, status codes and response schemas as documented,
negative data rejected). Cases per operation: CONTRACT_EXAMPLES (default 100); the seed is
fixed, so a failure reproduces, and schemathesis prints the reproducing request.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

import function_app  # noqa: F401  (registers every route)
from shared.http import registry
from shared.http.openapi import build_openapi
from tests.conftest import ADMIN_KEY

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "100"))

from devhost.app import build_asgi_app

# The same document GET /api/v1/openapi.json serves (a test checks that route separately), against the
# same ASGI app the local host serves; the `core` fixture installs the Core it runs on.
schema = schemathesis.openapi.from_dict(build_openapi(registry, title="StockAgent API", version="contract"))
schema.app = build_asgi_app()


@pytest.mark.contract
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # fixed seed: the same cases every run
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_contract(case, core):
    case.call_and_validate(base_url="http://testserver", headers={"X-API-Key": ADMIN_KEY})
