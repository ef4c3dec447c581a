"""What the contract tests share: the OpenAPI document under test and the one allowance for valid data
that the server may still refuse.

A schema-valid request may be refused when what it breaks cannot be said in JSON Schema (the
document's 412 and 422 descriptions say so): a 412 for a well-formed If-Match that names no current
version, and a 422 naming only fields whose validity depends on server state or on other fields (an
opaque cursor the server never issued for this list and caller, a date range outside what an
interval allows, a reference to another resource that does not exist). Any other rejection of valid
data still fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import function_app  # noqa: F401  (registers every route)
from shared.http import registry
from shared.http.openapi import build_openapi
from shared.http.preconditions import DOCUMENTED_PATTERN
from tests.conftest import make_settings

NOT_EXPRESSIBLE_IN_SCHEMA = {"cursor", "period", "start", "end", "workspace_id", "default_watchlist_id", "portfolio_id",
                             "symbol", "symbols"}


def openapi_document() -> dict[str, Any]:
    """The same document GET /api/v1/openapi.json serves (a test checks that route separately)."""
    return build_openapi(registry, title="StockAgent API", version="contract", settings=make_settings(Path("/nonexistent")))


def _if_match(case: Any) -> str | None:
    return next((v for k, v in (case.headers or {}).items() if k.lower() == "if-match"), None)


def refused_for_unexpressible_reason(case: Any, response: Any) -> bool:
    """Whether `response` refuses `case` for a reason the schema cannot state (see the module docstring)."""
    if_match = _if_match(case)
    if response.status_code == 400 and if_match is not None and not re.search(DOCUMENTED_PATTERN, if_match):
        # schemathesis's coverage phase writes header values from letters and digits only; where none fits a
        # header's pattern it sends a placeholder (`If-Match: 0`) and still labels the case positive.
        return True
    if response.status_code == 412:
        return if_match is not None
    if response.status_code != 422:
        return False
    fields = set((response.json().get("errors") or {}).keys())
    return bool(fields) and fields <= NOT_EXPRESSIBLE_IN_SCHEMA
