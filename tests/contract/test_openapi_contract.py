"""Contract fuzzing: schemathesis drives the real ASGI app from its own OpenAPI document.

The examples, coverage and fuzzing phases run every default check (no server errors, status
codes, content types, headers and response schemas as documented, negative data rejected,
positive data accepted) as the admin. Cases per operation: CONTRACT_EXAMPLES (default 100); the
seed is fixed, so a failure reproduces, and schemathesis prints the reproducing request as a curl
command. The stateful phase, with two users, is test_stateful_contract.py. The one allowance for
valid data refused is in contract_support.py.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from devhost.app import build_asgi_app
from tests.conftest import ADMIN_KEY
from tests.contract.contract_support import openapi_document, refused_for_unexpressible_reason

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "100"))

# Against the same ASGI app the local host serves; the `core` fixture installs the Core it runs on.
schema = schemathesis.openapi.from_dict(openapi_document())
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
    headers = {"X-API-Key": ADMIN_KEY}
    response = case.call(base_url="http://testserver", headers=headers)
    excluded = [positive_data_acceptance] if refused_for_unexpressible_reason(case, response) else []
    case.validate_response(response, headers=headers, excluded_checks=excluded)
