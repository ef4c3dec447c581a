"""The app settings in infra/app/api.bicep against the table of settings the code reads.

Both directions: nothing is set that the code does not read (or the platform does not use),
and everything the code reads in production is either set or deliberately left to its
default, with the reason written down here.
"""

from __future__ import annotations

import re

import pytest

from infra_bicep_reader import BicepFile
from shared.config import env

# Read by the Functions host / Azure SDK rather than by our code.
PLATFORM_PREFIXES = ("AzureWebJobsStorage__", "APPLICATIONINSIGHTS_", "FUNCTIONS_", "WEBSITE_")

# Settings that only make sense on a developer machine.
LOCAL_ONLY = {
    "LOCAL_DEV_API_KEY": "the app refuses to start outside local when it is set",
    "LOCAL_DATA_DIR": "directory of the embedded store; production uses MONGODB_URI",
}

# Settings the code reads that the deployment leaves to config/config.yaml + config.production.yaml.
DELIBERATELY_DEFAULTED = {
    "KEYVAULT_NAME": "AZURE_KEYVAULT_URI is set, which takes precedence",
    "APP_VERSION": "comes from config/config.yaml, shipped with the code it describes",
    "MAX_BODY_BYTES": "the config default (1 MiB) is the production limit",
    "BEHIND_AZURE_FRONTEND": "config.production.yaml already sets it to true",
    "BEHIND_AZURE_FRONT_DOOR": "the template puts no Azure Front Door in front of the app",
    "RATE_LIMITS": "config/config.yaml holds the production limits; the setting is for operators who tune one group",
    "REDIS_URL": "the deployment sets REDIS_HOST/REDIS_PORT/REDIS_SSL instead of a URL",
    "REDIS_DB": "Azure Managed Redis has database 0 only, the default",
    "REDIS_USE_ENTRA_ID": "the deployment authenticates with the access key from Key Vault (REDIS-PASSWORD)",
    "MODEL_ALLOW_FALLBACK": "config default (true) keeps the app answering when a model provider fails",
    "MODEL_FALLBACK_ORDER": "config default order is the intended one",
    "MODEL_DEBUG_PROMPT": "must stay false (default) in production: prompts may hold user data",
    "OPENAI_BASE_URL": "OpenAI-compatible endpoints are not provisioned by this template",
    "OPENAI_COMPATIBLE_MODEL": "OpenAI-compatible endpoints are not provisioned by this template",
    "OPENAI_COMPATIBLE_API_KEY": "OpenAI-compatible endpoints are not provisioned by this template",
    "OPENAI_COMPATIBLE_USE_ENTRA_ID": "OpenAI-compatible endpoints are not provisioned by this template",
    "OPENAI_COMPATIBLE_ENTRA_SCOPE": "OpenAI-compatible endpoints are not provisioned by this template",
    "GROK_MODEL": "config default model; GROK-API-KEY comes from Key Vault",
    "AZURE_OPENAI_ENDPOINT": "no Azure OpenAI resource in this template; set it by hand to use one",
    "AZURE_OPENAI_DEPLOYMENT": "no Azure OpenAI resource in this template; set it by hand to use one",
    "AZURE_OPENAI_MODEL": "no Azure OpenAI resource in this template; set it by hand to use one",
    "AZURE_OPENAI_API_KEY": "no Azure OpenAI resource in this template; set it by hand to use one",
    "AZURE_OPENAI_USE_ENTRA_ID": "no Azure OpenAI resource in this template; set it by hand to use one",
    "ENTRA_ADMIN_ROLE": "config default (StockAgent.Admin) is the app role the docs tell you to define",
    "ADMIN_EMAILS": "optional one-off bootstrap of the first admin; set by hand when wanted (docs: First admin)",
    "CHAT_MAX_STREAMS_PER_USER": "config default (20) is the production cap",
    "CHAT_MAX_STREAMS_PER_INSTANCE": "config default (64) is the production cap",
    "CHAT_MAX_CONVERSATION_MESSAGES": "config default (200) is the production cap",
    "MCP_PUBLIC_URL": "the MCP resource URL comes from each request (X-Forwarded-Host/-Proto behind the front end); "
                      "set it by hand when a custom domain or Front Door fronts the app",
}

# Set only when the matching parameter is given (an empty value would override the config files).
CONDITIONAL = {
    "REDIS_HOST": "redisMode=managed",
    "REDIS_PORT": "redisMode=managed",
    "REDIS_SSL": "redisMode=managed",
    "MARKET_PROVIDERS": "marketProviders non-empty",
    "OPENAI_MODEL": "openAiModel non-empty",
    "ENTRA_AUDIENCE": "entraAudience non-empty",
    "ENTRA_TENANT_ID": "entraAudience non-empty",
}

# PLATFORM names set under another spelling, or not at all, and why.
PLATFORM_NOT_SET_AS_IS = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig and rejects this setting",
    "AzureWebJobsStorage": "identity-based: AzureWebJobsStorage__accountName/__credential/__clientId",
}


@pytest.fixture(scope="module")
def settings_groups(api_bicep: BicepFile) -> dict[str, dict[str, str]]:
    """{var name: {setting: expression}} for every `var xxxSettings = { ... }` in the app module."""
    names = re.findall(r"^var\s+(\w+Settings)\s*=\s*\{", api_bicep.code, re.M)
    assert names, "no *Settings object variables in infra/app/api.bicep"
    return {name: api_bicep.var_object(name) for name in names}


@pytest.fixture(scope="module")
def app_settings(settings_groups: dict[str, dict[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for group in settings_groups.values():
        dupes = set(group) & set(merged)
        assert not dupes, f"set twice: {sorted(dupes)}"
        merged.update(group)
    return merged


def test_every_settings_group_reaches_the_function_app(api_bicep: BicepFile, settings_groups):
    code = api_bicep.code
    final = api_bicep.variables["appSettings"]
    optional = api_bicep.variables["optionalSettings"]
    for name in settings_groups:
        assert re.search(rf"\b{name}\b", final + " " + optional), f"{name} is never merged into appSettings"
    call = next(m for m in api_bicep.modules if m.symbol == "functionApp")
    assert call.params["appSettings"] == "appSettings"
    assert "union(" in final and code.count("var appSettings") == 1


def test_every_setting_is_read_by_the_code_or_the_platform(app_settings):
    known = {s.name for s in env.ALL} | set(env.PLATFORM)
    unknown = sorted(n for n in app_settings if n not in known and not n.startswith(PLATFORM_PREFIXES))
    assert not unknown, f"app settings nobody reads: {unknown}"


def test_every_production_setting_is_set_or_deliberately_defaulted(app_settings):
    from_vault = set(env.KEYVAULT_SECRETS)
    required = {s.name for s in env.ALL} - set(LOCAL_ONLY) - from_vault - set(DELIBERATELY_DEFAULTED)
    missing = sorted(required - set(app_settings))
    assert not missing, f"read by the code but neither set nor listed in DELIBERATELY_DEFAULTED: {missing}"


def test_exception_lists_are_current(app_settings):
    names = {s.name for s in env.ALL}
    for table in (LOCAL_ONLY, DELIBERATELY_DEFAULTED, CONDITIONAL):
        stale = sorted(set(table) - names)
        assert not stale, f"not in shared/config/env.py any more: {stale}"
    contradictions = sorted(set(DELIBERATELY_DEFAULTED) & set(app_settings))
    assert not contradictions, f"listed as defaulted but set: {contradictions}"
    assert set(CONDITIONAL) <= set(app_settings)
    assert set(PLATFORM_NOT_SET_AS_IS) <= set(env.PLATFORM)


def test_platform_settings(app_settings):
    for name in env.PLATFORM:
        if name in PLATFORM_NOT_SET_AS_IS:
            assert name not in app_settings, f"{name}: {PLATFORM_NOT_SET_AS_IS[name]}"
        else:
            assert name in app_settings, f"platform setting {name} is not set"
    storage = {n for n in app_settings if n.startswith("AzureWebJobsStorage__")}
    assert storage == {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
                       "AzureWebJobsStorage__queueServiceUri"}
    assert storage == set(env.PLATFORM_STORAGE)  # what the host reads is what shared/queues reads
    assert app_settings["AzureWebJobsStorage__queueServiceUri"] == "storage.properties.primaryEndpoints.queue"
    assert "FUNCTIONS_EXTENSION_VERSION" not in app_settings


def test_secrets_are_never_app_settings(app_settings):
    assert "LOCAL_DEV_API_KEY" not in app_settings
    for name in env.KEYVAULT_SECRETS:
        assert name not in app_settings, f"{name} must come from Key Vault, not an app setting"
    # The only secret-flagged setting set is MONGODB_URI, and it never holds a password.
    secret_flagged = {s.name for s in env.ALL if s.secret} & set(app_settings)
    assert secret_flagged == {"MONGODB_URI", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert app_settings["MONGODB_URI"] == "mongoUri"


def test_fixed_values(app_settings):
    expected = {
        "APP_ENV": "'production'",
        "CONFIG_ENV_OVERRIDE_MODE": "'all'",
        "USE_AZURE_KEYVAULT": "'true'",
        "AzureWebJobsStorage__credential": "'managedidentity'",
        "REDIS_SSL": "'true'",
        "AZURE_CLIENT_ID": "identityClientId",
        "AzureWebJobsStorage__clientId": "identityClientId",
        "AZURE_KEYVAULT_URI": "keyVaultUri",
    }
    for name, value in expected.items():
        assert app_settings[name] == value, name
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "'ClientId=${identityClientId};Authorization=AAD'"


def test_settings_that_python_313_does_not_need_are_not_set(app_settings):
    """PYTHON_ENABLE_INIT_INDEXING mattered for HTTP streams on Python 3.12 and older only."""
    assert "PYTHON_ENABLE_INIT_INDEXING" not in app_settings
    assert "PYTHON_ENABLE_INIT_INDEXING" not in env.PLATFORM


def test_conditional_groups(api_bicep: BicepFile, settings_groups):
    optional = api_bicep.variables["optionalSettings"]
    owner = {key: group for group, entries in settings_groups.items() for key in entries}
    guards = {
        "REDIS_HOST": "!empty(redisHost)",
        "MARKET_PROVIDERS": "!empty(marketProviders)",
        "OPENAI_MODEL": "!empty(openAiModel)",
        "ENTRA_AUDIENCE": "!empty(entraAudience)",
    }
    for key, guard in guards.items():
        assert f"{guard} ? {owner[key]} : {{}}" in optional, key
    for key in CONDITIONAL:
        assert owner[key] not in ("platformSettings", "coreSettings"), key


# --- the settings as the app would see them -------------------------------------------------------

# Values for settings whose Bicep value is an expression (a deployment of the default shape:
# cosmos + managed Redis + an OpenAI model, with Entra bearer tokens configured).
SAMPLE_VALUES = {
    "AzureWebJobsStorage__accountName": "stabc123",
    "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
    "AzureWebJobsStorage__queueServiceUri": "https://stabc123.queue.core.windows.net/",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000002;IngestionEndpoint=https://example.in.applicationinsights.azure.com/",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD",
    "AZURE_KEYVAULT_URI": "https://kv-abc123.vault.azure.net/",
    "LOG_LEVEL": "INFO",
    "MONGODB_URI": None,  # filled from the cosmos module's output below
    "MONGODB_DATABASE": "stockagent",
    "MONGODB_RETRY_WRITES": "false",
    "MODEL_PROVIDER": "openai",
    "MARKET_REFRESH_SCHEDULE": "0 */15 * * * *",
    "MIGRATION_SCHEDULE": "0 0 3 * * *",
    "EASY_AUTH_ENABLED": "false",
    "CORS_ORIGINS": "https://app.example.com,https://admin.example.com",
    "REDIS_HOST": "redis-abc123.westeurope.redis.azure.net",
    "REDIS_PORT": "10000",
    "MARKET_PROVIDERS": "yahoo,offline",
    "OPENAI_MODEL": "gpt-4o-mini",
    "ENTRA_AUDIENCE": "api://stockagent",
    "ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000003",
}

VAULT = {
    "OPENAI-API-KEY": "sk-test-openai",
    "REDIS-PASSWORD": "redis-key",
    "MONGODB-PASSWORD": "p@ss:word/1",
    # azd's random password (15 characters) lengthened by secrets.bicep with a guid(): 52 characters
    "CURSOR-SIGNING-KEY": "aB3dE5fG7hJ9kL2.8c3e1f3a-6a4d-4b1e-9f0e-2d6c1b7a9e55",
}


class _FakeVault:
    def __init__(self, secrets: dict[str, str]):
        self._secrets = secrets
        self.asked: list[str] = []

    def get_secret(self, name: str):
        self.asked.append(name)
        if name not in self._secrets:
            raise type("ResourceNotFoundError", (Exception,), {})(name)
        return type("Secret", (), {"value": self._secrets[name]})()


def _environ(app_settings: dict[str, str], bicep_files) -> dict[str, str]:
    cosmos = bicep_files["infra/core/database/cosmos-mongo-cluster.bicep"]
    uri = cosmos.outputs["uriWithUser"].strip("'")
    uri = uri.replace("${adminUser}", "stockagentadmin").replace("${cluster.name}", "mongo-abc123")
    environ: dict[str, str] = {}
    for name, expr in app_settings.items():
        literal = re.fullmatch(r"'([^'$]*)'", expr)
        if literal:
            environ[name] = literal.group(1)
        else:
            assert name in SAMPLE_VALUES, f"add a sample value for {name} (Bicep: {expr})"
            environ[name] = SAMPLE_VALUES[name] if name != "MONGODB_URI" else uri
    return environ


def test_app_settings_load_as_a_valid_production_config(app_settings, bicep_files):
    loader = pytest.importorskip("shared.config.loader")
    environ = _environ(app_settings, bicep_files)
    vault = _FakeVault(VAULT)
    settings = loader.load_settings(environ, secret_fetcher=lambda url: vault)

    assert settings.app.env == "production"
    assert settings.keyvault.enabled and settings.keyvault.vault_url == "https://kv-abc123.vault.azure.net/"
    assert settings.mongodb.database == "stockagent" and settings.mongodb.retry_writes is False
    assert settings.mongodb.uri.get_secret_value().startswith("mongodb+srv://stockagentadmin@mongo-abc123.")
    assert settings.mongodb.password.get_secret_value() == "p@ss:word/1"
    assert settings.redis.host == "redis-abc123.westeurope.redis.azure.net"
    assert settings.redis.port == 10000 and settings.redis.ssl is True
    assert settings.redis.password.get_secret_value() == "redis-key"
    assert settings.models.provider == "openai"
    assert settings.models.openai.api_key.get_secret_value() == "sk-test-openai"
    assert settings.models.openai.model == "gpt-4o-mini"
    assert settings.market.providers["quote"] == ["yahoo", "offline"]
    assert settings.http.cors.origins == ["https://app.example.com", "https://admin.example.com"]
    assert settings.auth.entra_audience == "api://stockagent"
    assert settings.timers.migration_schedule == "0 0 3 * * *"
    assert settings.auth.local_dev_api_key is None
    assert sorted(vault.asked) == sorted(n.replace("_", "-") for n in env.KEYVAULT_SECRETS)


def test_cosmos_uri_takes_the_vault_password(bicep_files):
    """The vCore URI names the admin user, so the app can merge MONGODB_PASSWORD into it."""
    client = pytest.importorskip("shared.data.client")
    cosmos = bicep_files["infra/core/database/cosmos-mongo-cluster.bicep"]
    uri = cosmos.outputs["uriWithUser"].strip("'").replace("${adminUser}", "admin").replace("${cluster.name}", "c1")
    merged = client.merge_password(uri, "p@ss:word/1")
    assert merged.startswith("mongodb+srv://admin:p%40ss%3Aword%2F1@c1.global.mongocluster.cosmos.azure.com/")
    assert "retrywrites=false" in merged


def test_minimal_deployment_without_redis_or_optional_settings_also_loads(app_settings, bicep_files, settings_groups):
    """Default parameters: offline model, no Redis, no Entra, no model override."""
    loader = pytest.importorskip("shared.config.loader")
    conditional = {k for k in CONDITIONAL}
    base = {k: v for k, v in app_settings.items() if k not in conditional}
    environ = _environ(base, bicep_files)
    environ["MODEL_PROVIDER"] = "offline"
    environ["MARKET_PROVIDERS"] = "yahoo,offline"
    vault = _FakeVault({"MONGODB-PASSWORD": "pw-12345678", "CURSOR-SIGNING-KEY": VAULT["CURSOR-SIGNING-KEY"]})
    settings = loader.load_settings(environ, secret_fetcher=lambda url: vault)
    assert settings.app.env == "production"
    assert not settings.redis.configured
    assert settings.models.provider == "offline"


def test_binding_expressions_resolve_from_unconditional_settings(settings_groups):
    """`%NAME%` in trigger arguments is resolved by the Functions host from app settings at
    indexing time: a missing one stops the function from loading, whatever the config files say."""
    from infra_bicep_reader import REPO

    sources = [REPO / "function_app.py", *sorted((REPO / "functions").rglob("*.py"))]
    names = set()
    for path in sources:
        if path.is_file():
            names.update(re.findall(r"""["']%([A-Za-z_][A-Za-z0-9_]*)%["']""", path.read_text(encoding="utf-8")))
    assert {"MARKET_REFRESH_SCHEDULE", "MIGRATION_SCHEDULE"} <= names
    always = set(settings_groups["platformSettings"]) | set(settings_groups["coreSettings"])
    assert names <= always, f"binding expressions without an unconditional app setting: {sorted(names - always)}"


def test_the_app_sends_where_the_deployed_triggers_listen(app_settings, bicep_files):
    """With the deployed settings, the producer resolves the managed identity and the queue endpoint the host uses."""
    from shared.queues.connection import resolve_queue_connection

    environ = _environ(app_settings, bicep_files)
    connection = resolve_queue_connection(environ)
    assert connection.kind == "identity" and connection.credential == "managedidentity"
    assert connection.account_url == "https://stabc123.queue.core.windows.net"
    assert connection.client_id == SAMPLE_VALUES["AzureWebJobsStorage__clientId"]
    assert "AzureWebJobsStorage" not in environ  # never a connection string (no account keys) on Azure
