"""Values Azure checks only at deployment time, checked here: Flex Consumption's scale bounds,
the Python versions the remote build can install our dependencies on, and a Key Vault name that
a soft-deleted vault of an earlier deployment cannot block."""

from __future__ import annotations

import json
import re

from infra_bicep_reader import INFRA, REPO, BicepFile

# Flex Consumption rejects a maximumInstanceCount below 40; 1000 is the plan's ceiling
# (Microsoft's Flex Consumption samples declare @minValue(40) @maxValue(1000)).
FLEX_MIN_INSTANCES, FLEX_MAX_INSTANCES = 40, 1000
KEY_VAULT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")  # 3-24 characters
UNIQUE_STRING_LENGTH = 13


def _var_closure(f: BicepFile, expr: str) -> set[str]:
    """Identifiers an expression depends on, following the file's `var`s."""
    seen: set[str] = set()
    todo = set(re.findall(r"\b[A-Za-z_]\w*\b", expr))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in f.variables:
            todo |= set(re.findall(r"\b[A-Za-z_]\w*\b", f.variables[name]))
    return seen


def test_every_maximum_instance_count_has_flex_bounds(bicep_files: dict[str, BicepFile]) -> None:
    declared = {(rel, name): p for rel, f in bicep_files.items() for name, p in f.params.items()
                if name == "maximumInstanceCount"}
    assert len(declared) == 3, sorted(declared)  # main, app/api, core/host/functions-flexconsumption
    for where, p in declared.items():
        assert (p.bound("min"), p.bound("max")) == (FLEX_MIN_INSTANCES, FLEX_MAX_INSTANCES), where
        assert p.default is not None and FLEX_MIN_INSTANCES <= int(p.default) <= FLEX_MAX_INSTANCES, where


def test_azd_default_instance_count_is_within_bounds(main_parameters: dict) -> None:
    value = main_parameters["maximumInstanceCount"]["value"]
    m = re.fullmatch(r"\$\{MAXIMUM_INSTANCE_COUNT=(\d+)\}", value)
    assert m and FLEX_MIN_INSTANCES <= int(m.group(1)) <= FLEX_MAX_INSTANCES, value


def test_python_313_is_the_only_version_offered(bicep_files: dict[str, BicepFile]) -> None:
    """The remote build installs requirements.txt on the app's Python; our pins need 3.13
    (azure-functions 2.x and the pinned azure-functions-runtime declare Requires-Python >=3.13
    and are classified for 3.13 only), so 3.11/3.12 would fail the build and 3.14 is untested."""
    site = bicep_files["infra/core/host/functions-flexconsumption.bicep"]
    assert site.params["runtimeVersion"].allowed == ["'3.13'"]
    call = next(m for m in bicep_files["infra/app/api.bicep"].modules if m.symbol == "functionApp")
    assert call.params["runtimeVersion"] == "'3.13'"
    assert (REPO / ".python-version").read_text(encoding="utf-8").strip().startswith("3.13")


def test_key_vault_name_is_unique_per_environment_and_salt(main_bicep: BicepFile, main_parameters: dict) -> None:
    expr = main_bicep.variables["keyVaultName"]
    depends_on = _var_closure(main_bicep, expr)
    assert {"uniqueString", "environmentName", "keyVaultNameSalt"} <= depends_on, expr
    salt = main_bicep.params["keyVaultNameSalt"]
    assert salt.type == "string" and salt.default and salt.description
    assert main_parameters["keyVaultNameSalt"]["value"].startswith("${KEYVAULT_NAME_SALT=")
    # Length: the prefix plus one uniqueString (13 characters) must fit Key Vault's 24.
    prefix = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))["keyVaultVaults"]
    assert re.fullmatch(r"'\$\{abbrs\.keyVaultVaults\}\$\{[^{}]*uniqueString\([^{}]*\)[^{}]*\}'", expr), expr
    assert KEY_VAULT_NAME.fullmatch(prefix + "a" * UNIQUE_STRING_LENGTH)


def test_key_vault_can_be_purged_after_azd_down(bicep_files: dict[str, BicepFile]) -> None:
    """`azd down --purge` and `az keyvault purge` fail on a vault with purge protection."""
    vault = bicep_files["infra/core/security/keyvault.bicep"].source
    assert "enablePurgeProtection" not in vault or re.search(r"enablePurgeProtection:\s*false", vault)
    assert re.search(r"softDeleteRetentionInDays:\s*7\b", vault)
