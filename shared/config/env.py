"""Every environment setting the app reads, in one table.

`ConfigLoader` applies these as overrides, `local.settings.example.json` and `infra/`
app settings are checked against this table by tests, so a name the code reads can
never be missing from either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSetting:
    name: str
    path: str | None  # dotted path in Settings; None for bootstrap settings read directly
    secret: bool = False
    kind: str = "str"  # str | int | float | bool | list | map ("k=v,k=v", merged into the mapping at path)


# Bootstrap settings: read before config loads (they decide how it loads).
BOOTSTRAP: tuple[EnvSetting, ...] = (
    EnvSetting("APP_ENV", "app.env"),
    EnvSetting("CONFIG_ENV_OVERRIDE_MODE", None),
    EnvSetting("USE_AZURE_KEYVAULT", "keyvault.enabled", kind="bool"),
    EnvSetting("AZURE_KEYVAULT_URI", "keyvault.uri"),
    EnvSetting("KEYVAULT_NAME", "keyvault.name"),
)

OVERRIDES: tuple[EnvSetting, ...] = (
    EnvSetting("LOG_LEVEL", "app.log_level"),
    EnvSetting("APP_VERSION", "app.version"),
    EnvSetting("CORS_ORIGINS", "http.cors.origins", kind="list"),
    EnvSetting("MAX_BODY_BYTES", "http.max_body_bytes", kind="int"),
    EnvSetting("BEHIND_AZURE_FRONTEND", "http.behind_azure_frontend", kind="bool"),
    EnvSetting("BEHIND_AZURE_FRONT_DOOR", "http.behind_azure_front_door", kind="bool"),
    EnvSetting("CURSOR_SIGNING_KEY", "http.cursor_signing_key", secret=True),
    EnvSetting("RATE_LIMITS", "rate_limits.groups", kind="map"),  # e.g. "read=600/minute,chat=10/minute"
    EnvSetting("LOCAL_DEV_API_KEY", "auth.local_dev_api_key", secret=True),
    EnvSetting("EASY_AUTH_ENABLED", "auth.easy_auth_enabled", kind="bool"),
    EnvSetting("ENTRA_TENANT_ID", "auth.entra_tenant_id"),
    EnvSetting("ENTRA_AUDIENCE", "auth.entra_audience"),
    EnvSetting("ENTRA_ADMIN_ROLE", "auth.entra_admin_role"),
    EnvSetting("ADMIN_EMAILS", "auth.admin_emails", kind="list"),
    EnvSetting("MONGODB_URI", "mongodb.uri", secret=True),
    EnvSetting("MONGODB_PASSWORD", "mongodb.password", secret=True),
    EnvSetting("MONGODB_DATABASE", "mongodb.database"),
    EnvSetting("MONGODB_RETRY_WRITES", "mongodb.retry_writes", kind="bool"),
    EnvSetting("LOCAL_DATA_DIR", "mongodb.local_data_dir"),
    EnvSetting("REDIS_URL", "redis.url", secret=True),
    EnvSetting("REDIS_HOST", "redis.host"),
    EnvSetting("REDIS_PORT", "redis.port", kind="int"),
    EnvSetting("REDIS_DB", "redis.db", kind="int"),
    EnvSetting("REDIS_PASSWORD", "redis.password", secret=True),
    EnvSetting("REDIS_SSL", "redis.ssl", kind="bool"),
    EnvSetting("REDIS_USE_ENTRA_ID", "redis.use_entra_id", kind="bool"),
    EnvSetting("MARKET_PROVIDERS", None, kind="list"),  # shorthand: same order for every data type
    EnvSetting("ALPHA_VANTAGE_API_KEY", "market.alpha_vantage.api_key", secret=True),
    EnvSetting("MODEL_PROVIDER", "models.provider"),
    EnvSetting("MODEL_ALLOW_FALLBACK", "models.allow_fallback", kind="bool"),
    EnvSetting("MODEL_FALLBACK_ORDER", "models.fallback_order", kind="list"),
    EnvSetting("MODEL_DEBUG_PROMPT", "models.debug_prompt", kind="bool"),
    EnvSetting("OPENAI_API_KEY", "models.openai.api_key", secret=True),
    EnvSetting("OPENAI_MODEL", "models.openai.model"),
    EnvSetting("OPENAI_BASE_URL", "models.compatible.base_url"),
    EnvSetting("OPENAI_COMPATIBLE_MODEL", "models.compatible.model"),
    EnvSetting("OPENAI_COMPATIBLE_API_KEY", "models.compatible.api_key", secret=True),
    EnvSetting("OPENAI_COMPATIBLE_USE_ENTRA_ID", "models.compatible.use_entra_id", kind="bool"),
    EnvSetting("OPENAI_COMPATIBLE_ENTRA_SCOPE", "models.compatible.entra_scope"),
    EnvSetting("GROK_API_KEY", "models.grok.api_key", secret=True),
    EnvSetting("GROK_MODEL", "models.grok.model"),
    EnvSetting("AZURE_OPENAI_ENDPOINT", "models.azure_openai.endpoint"),
    EnvSetting("AZURE_OPENAI_DEPLOYMENT", "models.azure_openai.deployment"),
    EnvSetting("AZURE_OPENAI_MODEL", "models.azure_openai.model"),
    EnvSetting("AZURE_OPENAI_API_KEY", "models.azure_openai.api_key", secret=True),
    EnvSetting("AZURE_OPENAI_USE_ENTRA_ID", "models.azure_openai.use_entra_id", kind="bool"),
    EnvSetting("CHAT_MAX_STREAMS_PER_USER", "chat.max_streams_per_user", kind="int"),
    EnvSetting("CHAT_MAX_STREAMS_PER_INSTANCE", "chat.max_streams_per_instance", kind="int"),
    EnvSetting("CHAT_MAX_CONVERSATION_MESSAGES", "chat.max_conversation_messages", kind="int"),
    EnvSetting("MCP_PUBLIC_URL", "mcp.public_url"),
    EnvSetting("MARKET_REFRESH_SCHEDULE", "timers.market_refresh_schedule"),
    EnvSetting("MIGRATION_SCHEDULE", "timers.migration_schedule"),
    EnvSetting("APPLICATIONINSIGHTS_CONNECTION_STRING", "telemetry.applicationinsights_connection_string", secret=True),
)

# Secrets fetched from Key Vault when it is enabled (vault secret names use dashes).
KEYVAULT_SECRETS: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "GROK_API_KEY",
    "ALPHA_VANTAGE_API_KEY",
    "REDIS_PASSWORD",
    "MONGODB_PASSWORD",
    "CURSOR_SIGNING_KEY",
)

# Read by the Functions host or the Azure SDK, not by our code; listed so parity tests know them.
PLATFORM: tuple[str, ...] = (
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsStorage",
    "AZURE_CLIENT_ID",
)

# Identity-based AzureWebJobsStorage (set on Azure instead of the connection string): read by the
# host and, in the same order, by shared/queues/connection.py. Not in local.settings.example.json,
# where AzureWebJobsStorage (a connection string to Azurite) takes precedence.
PLATFORM_STORAGE: tuple[str, ...] = (
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
)

ALL: tuple[EnvSetting, ...] = BOOTSTRAP + OVERRIDES


def by_name(name: str) -> EnvSetting | None:
    return next((s for s in ALL if s.name == name), None)
