"""Contract testing, stateful phase: schemathesis chains operations through the links it infers from the
OpenAPI document (create -> read -> update -> delete, list -> read, ...) with two users, alice and bob.

Every default check runs on every step, including the object-level-authorization check: each of
alice's successful reads of her own objects is replayed as bob, who must not get them (ST402), and
use-after-free / resource-availability checks follow deletes and creates. Scenarios:
CONTRACT_STATEFUL_SCENARIOS (default 50) of up to 10 steps, fixed seed. Each scenario starts from an
empty account for both users, so the same choices meet the same server state on a replay.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from devhost.app import build_asgi_app
from shared.data.schema import COLLECTIONS
from tests.conftest import make_settings
from tests.contract.contract_support import openapi_document, refused_for_unexpressible_reason

SCENARIOS = int(os.environ.get("CONTRACT_STATEFUL_SCENARIOS", "50"))
OWNED = [c.name for c in COLLECTIONS if c.validator and "owner_id" in c.validator["$jsonSchema"].get("properties", {})]


@pytest.fixture
def peers(tmp_path: Path) -> Any:
    """A Core of its own (no daily token budget in the way) with two users, and their WFC auth document."""
    from shared.runtime import build_core, set_core

    core = build_core(make_settings(tmp_path, chat={"daily_token_budget": 10**12}))
    previous = set_core(core)
    users, keys, auth = [], [], []
    for name in ("alice", "bob"):
        user = core.repos.get_user_repository().insert_one({"email": f"{name}@example.com", "name": name})
        record, secret = core.services.auth.create_api_key(user["id"], "contract")
        users.append(user["id"])
        keys.append(record["id"])
        auth.append({"name": name, "fixedHeaders": [{"name": "X-API-Key", "value": secret}]})
    document = tmp_path / "wfc-auth.json"
    document.write_text(json.dumps({"auth": auth}))
    yield core, document, users, keys
    set_core(previous)
    core.close()


@pytest.mark.contract
def test_stateful_contract_with_two_users(peers: Any) -> None:
    from bson import ObjectId

    core, document, users, keys = peers
    config = SchemathesisConfig.from_dict({"auth": {"wfc": {"path": str(document), "peers": ["alice", "bob"]}}})
    schema = schemathesis.openapi.from_dict(openapi_document(), config=config)
    schema.app = build_asgi_app()
    db = core.database.db

    class TwoUsers(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Empty accounts: a name taken in an earlier scenario would turn a 201 into a 409 on replay.
            for name in OWNED:
                query: dict[str, Any] = {"owner_id": {"$in": users}}
                if name == "api_keys":
                    query["_id"] = {"$nin": [ObjectId(k) for k in keys]}  # the two users' own keys stay
                db[name].delete_many(query)

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            excluded = [positive_data_acceptance] if refused_for_unexpressible_reason(case, response) else []
            case.validate_response(response, additional_checks=additional_checks, excluded_checks=excluded,
                                   transport_kwargs=kwargs or None, recorder=self.recorder)

    TwoUsers.run(settings=hypothesis.settings(
        max_examples=SCENARIOS,
        stateful_step_count=10,
        deadline=None,
        derandomize=True,  # fixed seed: the same scenarios every run
        database=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    ))
