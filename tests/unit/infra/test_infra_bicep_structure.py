"""Structure and secret hygiene of infra/: checks that need neither Azure nor a Bicep compiler."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra_bicep_reader import INFRA, REPO, BicepFile, BicepSyntaxError, blank, check_brackets, load_bicep

# Parameter names that hold a secret. `keyVaultName`/`keyVaultUri` are names, not keys.
SECRET_NAME = re.compile(r"(?i)(api_?key|access_?key|password|secret(?!name)|token|credential|connectionstring|key$)")
# URIs that embed credentials (an Atlas/MongoDB connection string given from outside).
CREDENTIAL_URI_NAME = re.compile(r"(?i)^external\w*uri$")
SECRET_OUTPUT_WORDS = re.compile(r"(?i)(password|api_?key|access_?key|connection_?string|primarykey|secondarykey)")
LIST_FUNCTION = re.compile(r"\blist[A-Z]\w*\s*\(|\blistKeys\b|\blistSecrets\b")


def _identifiers(expr: str) -> set[str]:
    """Identifiers used in an expression (string contents blanked, interpolations kept)."""
    return set(re.findall(r"\b[A-Za-z_]\w*\b", blank(expr)))


def _secure_params(f: BicepFile) -> set[str]:
    return {name for name, p in f.params.items() if p.secure}


# --- the reader itself ----------------------------------------------------------------


def test_reader_rejects_unbalanced_brackets_and_strings():
    with pytest.raises(BicepSyntaxError, match="line 2"):
        check_brackets(blank("var a = {\n  b: [1, 2}\n"))
    with pytest.raises(BicepSyntaxError, match="never closed"):
        check_brackets(blank("var a = {\n  b: 1\n"))
    with pytest.raises(BicepSyntaxError, match="unterminated string"):
        blank("var a = 'abc\nvar b = 1\n")
    # Brackets inside strings and comments do not count; interpolations do.
    check_brackets(blank("var a = '{[(' // )]}\nvar b = '${union({ a: 1 }, {})}'\n/* { */\n"))


def test_reader_finds_declarations(tmp_path: Path):
    src = tmp_path / "x.bicep"
    src.write_text(
        "@secure()\n@description('A key')\nparam apiKey string = ''\n"
        "@allowed([\n  'a'\n  'b'\n])\nparam mode string = 'a'\n"
        "var s = {\n  A: 'x' // c\n  'B__c': union({ q: 1 }, {})\n}\n"
        "output o string = mode\n",
        encoding="utf-8",
    )
    f = load_bicep(src)
    assert f.params["apiKey"].secure and f.params["apiKey"].description == "A key"
    assert not f.params["mode"].secure and "'b'" in f.params["mode"].decorators
    assert f.var_object("s") == {"A": "'x'", "B__c": "union({ q: 1 }, {})"}
    assert f.outputs == {"o": "mode"}


# --- every file ---------------------------------------------------------------------------


def test_expected_layout_exists(bicep_files: dict[str, BicepFile]):
    for rel in ("infra/main.bicep", "infra/app/api.bicep", "infra/app/rbac.bicep", "infra/app/secrets.bicep"):
        assert rel in bicep_files
    assert (INFRA / "main.parameters.json").is_file()
    assert (INFRA / "abbreviations.json").is_file()
    assert "targetScope = 'subscription'" in bicep_files["infra/main.bicep"].source


def test_every_module_path_exists_and_is_local(bicep_files: dict[str, BicepFile]):
    seen = 0
    for f in bicep_files.values():
        for m in f.modules:
            seen += 1
            assert not re.match(r"^(br|ts)[:/]", m.path), f"{f.rel}: module {m.symbol} uses a registry ({m.path}); CI cannot reach it"
            target = (f.path.parent / m.path).resolve()
            assert target.is_file(), f"{f.rel}: module {m.symbol} points at missing {m.path}"
    assert seen >= 10


def test_module_calls_pass_only_declared_params_and_all_required_ones(bicep_files: dict[str, BicepFile]):
    for f in bicep_files.values():
        for m in f.modules:
            target = load_bicep((f.path.parent / m.path).resolve())
            unknown = set(m.params) - set(target.params)
            assert not unknown, f"{f.rel}: module {m.symbol} passes undeclared params {sorted(unknown)}"
            required = {n for n, p in target.params.items() if p.default is None}
            missing = required - set(m.params)
            assert not missing, f"{f.rel}: module {m.symbol} misses required params {sorted(missing)}"


def test_secret_params_are_secure_and_have_no_literal_default(bicep_files: dict[str, BicepFile]):
    checked = 0
    for f in bicep_files.values():
        for name, p in f.params.items():
            if SECRET_NAME.search(name) or CREDENTIAL_URI_NAME.match(name):
                checked += 1
                assert p.secure, f"{f.rel}: param {name} holds a secret but is not @secure()"
            if p.secure:
                assert p.default in (None, "''"), f"{f.rel}: @secure() param {name} has a literal default"
    assert checked >= 8  # api keys, passwords and the external URI across main and modules


def test_secure_values_only_flow_into_secure_module_params(bicep_files: dict[str, BicepFile]):
    """A secret passed to a non-secure module param would be visible in the deployment history."""
    flows = 0
    for f in bicep_files.values():
        secure = _secure_params(f)
        for m in f.modules:
            target = load_bicep((f.path.parent / m.path).resolve())
            for pname, expr in m.params.items():
                used = _identifiers(expr) & secure
                if used:
                    flows += 1
                    assert target.params[pname].secure, (
                        f"{f.rel}: module {m.symbol} passes {sorted(used)} into non-secure param {pname}"
                    )
    assert flows >= 6


def test_outputs_never_carry_secrets(bicep_files: dict[str, BicepFile]):
    for f in bicep_files.values():
        secure = _secure_params(f)
        secure_norm = {s.lower() for s in secure}
        for name, expr in f.outputs.items():
            assert not LIST_FUNCTION.search(blank(expr)), f"{f.rel}: output {name} calls a list*() function"
            assert not (_identifiers(expr) & secure), f"{f.rel}: output {name} uses a @secure() param"
            norm = name.replace("_", "").lower()
            assert not any(s in norm for s in secure_norm), f"{f.rel}: output {name} is named after a secret param"
            assert not SECRET_OUTPUT_WORDS.search(name), f"{f.rel}: output {name} sounds like a secret"
        assert not re.search(r"@secure\(\)\s*\n\s*output\b", f.source), f"{f.rel}: a @secure() output"


def test_list_keys_is_used_only_to_write_key_vault(bicep_files: dict[str, BicepFile]):
    users = [f for f in bicep_files.values() if "listKeys" in f.code]
    assert [f.rel for f in users] == ["infra/core/cache/managed-redis.bicep"]
    redis = users[0]
    (call,) = [m for m in redis.modules if "listKeys" in " ".join(m.params.values())]
    assert call.path.endswith("keyvault-secret.bicep")
    assert call.params["name"] == "'REDIS-PASSWORD'"


def test_key_vault_secret_names_match_what_the_app_reads(bicep_files: dict[str, BicepFile]):
    from shared.config import env

    written = set()
    for f in bicep_files.values():
        for m in f.modules:
            if m.path.endswith("keyvault-secret.bicep"):
                name = m.params["name"]
                if name.startswith("'"):
                    written.add(name.strip("'"))
                else:  # a variable holding the name
                    written.add(f.variables[name].strip("'"))
    expected = {s.replace("_", "-") for s in env.KEYVAULT_SECRETS} | {"MONGODB-URI"}
    assert written == expected


def test_optional_secrets_are_created_only_when_given(bicep_files: dict[str, BicepFile]):
    secrets = bicep_files["infra/app/secrets.bicep"]
    for m in secrets.modules:
        line = re.search(rf"^module\s+{m.symbol}\b.*$", secrets.code, re.M).group(0)
        value = m.params["value"]
        assert re.search(rf"=\s*if\s*\(\s*!empty\({value}\)\s*\)", line), f"secret module {m.symbol} is not conditional on a value"


# --- main.bicep and its parameters file ------------------------------------------------------


def test_parameters_file_names_only_declared_params(main_bicep: BicepFile, main_parameters: dict):
    unknown = set(main_parameters) - set(main_bicep.params)
    assert not unknown, f"main.parameters.json sets undeclared params {sorted(unknown)}"


def test_required_non_secret_params_are_mapped(main_bicep: BicepFile, main_parameters: dict):
    """azd prompts for unmapped required params; only the secure admin password may be prompted."""
    unmapped = {n for n, p in main_bicep.params.items() if p.default is None and n not in main_parameters}
    assert unmapped == {"mongoAdminPassword"}
    assert main_bicep.params["mongoAdminPassword"].secure


def test_parameters_file_holds_no_secret_values(main_bicep: BicepFile, main_parameters: dict):
    for name, entry in main_parameters.items():
        value = entry.get("value")
        assert "reference" not in entry
        if main_bicep.params[name].secure:
            # Only a reference to an environment variable with an empty default, or azd's
            # secretOrRandomPassword: the vault's current secret, else a random one (never a value here).
            assert re.fullmatch(r"\$\{[A-Z0-9_]+=?\}", value) or re.fullmatch(
                r"\$\(secretOrRandomPassword \$\{AZURE_KEYVAULT_NAME\} [A-Z0-9-]+\)", value
            ), f"{name}: secure param must be '${{VAR}}', '${{VAR=}}' or $(secretOrRandomPassword ...)"
        else:
            assert isinstance(value, str) and value.startswith("${"), f"{name}: expected an azd environment reference"


def test_azd_env_names_do_not_collide_with_secure_mappings(main_bicep: BicepFile, main_parameters: dict):
    names: dict[str, str] = {}
    for pname, entry in main_parameters.items():
        if entry["value"].startswith("$(secretOrRandomPassword"):
            continue  # reads the vault named by a provision output, not a variable of its own
        m = re.match(r"\$\{([A-Z0-9_]+)", entry["value"])
        assert m, pname
        assert m.group(1) not in names, f"{pname} and {names.get(m.group(1))} read the same variable"
        names[m.group(1)] = pname


def test_main_outputs_needed_by_azd(main_bicep: BicepFile):
    for name in ("AZURE_LOCATION", "AZURE_TENANT_ID", "SERVICE_API_NAME", "AZURE_FUNCTION_NAME", "AZURE_KEYVAULT_URI"):
        assert name in main_bicep.outputs


def test_cost_parameters_have_safe_defaults(main_bicep: BicepFile):
    p = main_bicep.params
    assert p["alwaysReadyInstances"].default == "0"
    assert p["maximumInstanceCount"].type == "int"
    assert p["instanceMemoryMB"].default == "2048"
    assert p["mongoHighAvailability"].default == "'Disabled'"
    assert p["redisSku"].default == "'Balanced_B0'"
    for mode, values in (("mongoMode", ("'cosmos'", "'external'")), ("redisMode", ("'managed'", "'none'"))):
        assert all(v in p[mode].decorators for v in values), mode


def test_data_store_modules_follow_their_mode(main_bicep: BicepFile):
    code = main_bicep.source
    assert re.search(r"module cosmosMongo '[^']+' = if \(mongoMode == 'cosmos'\)", code)
    assert re.search(r"module redis '[^']+' = if \(redisMode == 'managed'\)", code)
    # The external URI reaches the vault only in external mode and never the app module.
    secrets_call = next(m for m in main_bicep.modules if m.symbol == "secrets")
    assert secrets_call.params["externalMongoUri"] == "mongoMode == 'external' ? externalMongoUri : ''"
    api_call = next(m for m in main_bicep.modules if m.symbol == "api")
    for expr in api_call.params.values():
        assert not (_identifiers(expr) & _secure_params(main_bicep)), expr


# --- Flex Consumption specifics -----------------------------------------------------------------


def test_function_app_is_flex_consumption_python_313_with_identity(bicep_files: dict[str, BicepFile]):
    plan = bicep_files["infra/core/host/appserviceplan.bicep"].source
    assert re.search(r"name:\s*'FC1'", plan) and re.search(r"tier:\s*'FlexConsumption'", plan)
    api = bicep_files["infra/app/api.bicep"]
    call = next(m for m in api.modules if m.symbol == "functionApp")
    assert call.params["runtimeName"] == "'python'" and call.params["runtimeVersion"] == "'3.13'"
    site = bicep_files["infra/core/host/functions-flexconsumption.bicep"].text
    for needle in (
        "type: 'UserAssigned'",
        "type: 'blobContainer'",
        "type: 'UserAssignedIdentity'",
        "userAssignedIdentityResourceId: identityId",
        "keyVaultReferenceIdentity: identityId",
        "alwaysReady:",
        "instanceCount: alwaysReadyInstances",
        "maximumInstanceCount: maximumInstanceCount",
        "instanceMemoryMB: instanceMemoryMB",
        "httpsOnly: true",
    ):
        assert needle in site, needle


def test_storage_and_monitoring_use_entra_id_only(bicep_files: dict[str, BicepFile]):
    storage = bicep_files["infra/core/storage/storage-account.bicep"].source
    assert re.search(r"allowSharedKeyAccess:\s*false", storage)
    assert re.search(r"allowBlobPublicAccess:\s*false", storage)
    monitoring = bicep_files["infra/core/monitor/monitoring.bicep"].source
    assert re.search(r"DisableLocalAuth:\s*true", monitoring)
    assert re.search(r"disableLocalAuth:\s*true", monitoring)
    kv = bicep_files["infra/core/security/keyvault.bicep"].source
    assert re.search(r"enableRbacAuthorization:\s*true", kv)


def test_bicep_creates_every_queue_the_functions_listen_on(bicep_files: dict[str, BicepFile], main_bicep: BicepFile):
    from devhost.queues import queue_functions
    from function_app import app

    listened = {qf.queue for qf in queue_functions(app)}
    call = next(m for m in main_bicep.modules if m.symbol == "storage")
    created = set(re.findall(r"'([a-z0-9-]+)'", call.params["queues"]))
    assert created == listened | {f"{q}-poison" for q in listened if not q.endswith("-poison")}
    storage = bicep_files["infra/core/storage/storage-account.bicep"].source
    assert "Microsoft.Storage/storageAccounts/queueServices/queues@" in storage
    for f in bicep_files.values():  # identity only: no account key or connection string anywhere
        assert not re.search(r"(?i)accountkey|listKeys\(|connectionString\s*:", f.code) or f.rel.endswith(
            "managed-redis.bicep"), f.rel


def test_identity_gets_the_roles_it_needs(bicep_files: dict[str, BicepFile]):
    rbac = bicep_files["infra/app/rbac.bicep"].text
    for role_id in (
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
        "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
        "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
    ):
        assert role_id in rbac


def test_cosmos_and_redis_shapes(bicep_files: dict[str, BicepFile]):
    cosmos = bicep_files["infra/core/database/cosmos-mongo-cluster.bicep"]
    assert "Microsoft.DocumentDB/mongoClusters@" in cosmos.text
    assert "startIpAddress: '0.0.0.0'" in cosmos.text and "endIpAddress: '0.0.0.0'" in cosmos.text
    uri = cosmos.outputs["uriWithUser"]
    assert "retrywrites=false" in uri and "adminPassword" not in uri and ":${" not in uri.split("@")[0]
    assert cosmos.params["adminPassword"].secure and "@minLength(8)" in cosmos.params["adminPassword"].decorators
    redis = bicep_files["infra/core/cache/managed-redis.bicep"]
    assert "Microsoft.Cache/redisEnterprise@" in redis.text
    assert "port: 10000" in redis.text and "clientProtocol: 'Encrypted'" in redis.text
    assert set(redis.outputs) == {"hostName", "port"}


# --- azure.yaml -------------------------------------------------------------------------------------


def test_azure_yaml_declares_the_function_service():
    doc = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert doc["name"]
    assert doc["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    # The service name must match the azd-service-name tag on the Function App.
    assert "'azd-service-name': 'api'" in (INFRA / "app" / "api.bicep").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted(INFRA.rglob("*.bicep")), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_each_file_is_structurally_sound(path: Path):
    """Balanced brackets, terminated strings/comments, readable declarations (names the file on failure)."""
    f = load_bicep(path)
    assert f.params or f.outputs or f.modules, f"{f.rel} declares nothing"
