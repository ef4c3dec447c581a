"""The validated configuration model. Secrets are `SecretStr`: they never show in reprs or logs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

AppEnv = Literal["local", "k8s-local", "staging", "production", "test"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSettings(_Section):
    name: str = "stockagent-api"
    version: str = "0.1.0"
    env: AppEnv = "local"
    log_level: str = "INFO"


class CorsSettings(_Section):
    origins: list[str] = Field(default_factory=list)
    allow_credentials: bool = False
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    allow_headers: list[str] = Field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "If-Match",
                                 "MCP-Protocol-Version", "Mcp-Session-Id", "Last-Event-ID"]
    )
    max_age_s: int = 600


class HttpSettings(_Section):
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    max_string_length: int = 100_000
    # The App Service / Functions front end appends the caller's address to X-Forwarded-For.
    behind_azure_frontend: bool = False
    # Azure Front Door's X-Azure-SocketIP names the caller; trust it only when the app accepts Front Door traffic alone.
    behind_azure_front_door: bool = False
    # HMAC key of pagination cursors; required outside local (locally generated under the data directory).
    cursor_signing_key: SecretStr | None = Field(None, min_length=32)
    cors: CorsSettings = CorsSettings()


class AuthSettings(_Section):
    local_dev_api_key: SecretStr | None = None
    easy_auth_enabled: bool = False
    entra_tenant_id: str | None = None
    entra_audience: str | None = None
    entra_issuer: str | None = None
    entra_jwks_url: str | None = None
    # The app role (Entra ID `roles` claim, Easy Auth role claims) that grants `admin` for the request.
    entra_admin_role: str = Field(default="StockAgent.Admin", min_length=1)
    # Tolerated clock difference for `exp`/`nbf`/`iat` of bearer tokens.
    entra_clock_skew_s: int = Field(default=60, ge=0, le=300)
    # An unknown `kid` refetches the signing keys at most this often (a flood of made-up kids costs one fetch).
    entra_jwks_refetch_interval_s: float = Field(default=60.0, ge=1.0)
    entra_jwks_lifespan_s: float = Field(default=3600.0, ge=60.0)
    # Bootstrap: a first-seen Entra/Easy Auth principal with one of these verified emails is created as admin.
    admin_emails: list[str] = Field(default_factory=list)

    @property
    def entra_configured(self) -> bool:
        """Entra ID bearer tokens are accepted (a tenant and the audience our tokens carry are set)."""
        return bool(self.entra_tenant_id and self.entra_audience)


class MongoSettings(_Section):
    uri: SecretStr | None = None
    password: SecretStr | None = None
    database: str = "stockagent"
    server_selection_timeout_ms: int = 1500  # a dead database answers 503 well within 2.5 s
    timeout_ms: int = 1500
    retry_writes: bool = True
    # Consecutive timeouts/connection failures that open the database breaker; while it is open every
    # request that needs the database answers 503 at once, and one probe goes through per cool-down.
    breaker_failure_threshold: int = Field(3, ge=1)
    breaker_cooldown_s: float = Field(5.0, gt=0)
    app_name: str = "stockagent-api"
    local_data_dir: str = ".data"


class RedisSettings(_Section):
    url: SecretStr | None = None
    host: str | None = None
    port: int = 6379
    db: int = 0
    password: SecretStr | None = None
    ssl: bool = False
    use_entra_id: bool = False
    socket_timeout_ms: int = 250
    connect_timeout_ms: int = 250
    max_connections: int = 50

    @property
    def configured(self) -> bool:
        return bool(self.url or self.host)


# Seconds a cached value of each data type stays fresh (the conventions' TTL strategy).
DEFAULT_TTLS: dict[str, int] = {
    "price_data": 60,
    "historical_data": 3600,
    "fundamental_data": 86400,
    "technical_data": 900,
    "reports": 43200,
    "news_data": 900,
    "symbols": 86400,
}


class CacheSettings(_Section):
    namespace: str = "stockagent"
    key_version: str = "v1"
    memory_max_entries: int = 10_000
    breaker_failure_threshold: int = 3
    breaker_probe_interval_s: float = 2.0
    ttl: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_TTLS))


class RateLimitSettings(_Section):
    enabled: bool = True
    fail_open: bool = True
    # aligned-window: one Redis round trip per check; moving-window: exact, two round trips.
    strategy: Literal["aligned-window", "moving-window", "fixed-window", "sliding-window-counter"] = "aligned-window"
    default: str = "300/minute"
    groups: dict[str, str] = Field(
        default_factory=lambda: {"read": "300/minute", "write": "60/minute", "market": "120/minute", "chat": "20/minute",
                                 "mcp": "120/minute", "auth_failures": "30/minute"}
    )


class AlphaVantageSettings(_Section):
    api_key: SecretStr | None = None
    base_url: str = "https://www.alphavantage.co/query"
    daily_quota: int = 25
    timeout_s: float = 10.0


class MarketSettings(_Section):
    # Provider order per data type; "offline" is the embedded default.
    providers: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "quote": ["offline"],
            "history": ["offline"],
            "fundamentals": ["offline"],
            "news": ["offline"],
            "search": ["offline"],
        }
    )
    alpha_vantage: AlphaVantageSettings = AlphaVantageSettings()
    yahoo_max_concurrency: int = 2
    yahoo_timeout_s: float = 8.0  # per HTTP request (yfinance itself waits up to 30 s)
    yahoo_deadline_s: float = 20.0  # per provider call, however many requests yfinance makes for it
    breaker_failure_threshold: int = 3
    breaker_cooldown_s: float = 60.0
    core_symbols: list[str] = Field(default_factory=lambda: ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "SPY"])
    refresh_batch_size: int = 50


class BreakerSettings(_Section):
    """A circuit breaker's policy (see ``shared.resilience.BreakerPolicy``)."""

    failure_threshold: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)
    half_open_max_calls: int = Field(default=1, ge=1)
    open_on_rate_limit: bool = True
    misconfigured_recheck_s: float = Field(default=900.0, ge=0)


class ModelClientSettings(_Section):
    """How one model provider is called.

    Timeouts: ``connect_timeout_s`` to open the connection; ``first_token_timeout_s`` is the longest
    silence tolerated, which is the wait for the first token (reasoning models think for a long time
    before it) and any pause after it; ``stream_timeout_s`` bounds one whole answer. ``max_retries``
    quick retries (each wait at most ``models.retry_wait_max_s``) happen only when no fallback provider
    is left: with one behind, a failure falls back at once.
    """

    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float = Field(default=120.0, gt=0)
    stream_timeout_s: float = Field(default=300.0, gt=0)
    max_retries: int = Field(default=1, ge=0, le=5)


class ProviderModelSettings(ModelClientSettings):
    api_key: SecretStr | None = None
    model: str | None = None
    base_url: str | None = None


class OpenAIModelSettings(ProviderModelSettings):
    model: str | None = "gpt-4o-mini"


class GrokModelSettings(ProviderModelSettings):
    """xAI. The default is xAI's fast non-reasoning model with tool calling; GROK_MODEL overrides it."""

    model: str | None = "grok-4-1-fast-non-reasoning"
    base_url: str | None = "https://api.x.ai/v1"


class CompatibleModelSettings(ProviderModelSettings):
    """Any OpenAI-compatible endpoint. ``use_entra_id`` sends a Microsoft Entra ID token for
    ``entra_scope`` instead of a key (Azure AI Foundry and other Azure-hosted endpoints)."""

    use_entra_id: bool = False
    entra_scope: str = "https://cognitiveservices.azure.com/.default"


class AzureOpenAISettings(ModelClientSettings):
    """Azure OpenAI. An ``endpoint`` ending in ``/openai/v1`` uses the v1 API through the plain OpenAI
    client (no api_version); otherwise ``AzureOpenAI`` with ``api_version``. ``model`` names the model
    the deployment serves (e.g. ``o4-mini``) so its parameter family applies; default: the deployment."""

    endpoint: str | None = None
    deployment: str | None = None
    model: str | None = None
    api_version: str = "2024-10-21"
    api_key: SecretStr | None = None
    use_entra_id: bool = False


# Optional request parameters the model client sends (and a model family may reject).
OptionalModelParam = Literal["temperature", "tool_choice", "stream_options"]


class ModelFamily(_Section):
    """Request parameters a family of models rejects; ``match`` holds name patterns (fnmatch, case-insensitive)."""

    match: list[str] = Field(min_length=1)
    omit: list[OptionalModelParam] = Field(default_factory=list)


# Which parameters each model family rejects. The most specific (longest) matching pattern wins, so
# "gpt-5-chat*" (a chat model) beats "gpt-5*" (reasoning). OpenAI reasoning models (o-series, gpt-5)
# accept only the default temperature; xAI documents that its reasoning models reject penalties and
# `stop`, and temperature is left out for them as well (harmless where it is accepted).
DEFAULT_MODEL_FAMILIES: dict[str, dict[str, Any]] = {
    "openai-reasoning": {"match": ["o1*", "o3*", "o4*", "gpt-5*"], "omit": ["temperature"]},
    "openai-chat": {"match": ["gpt-5-chat*"], "omit": []},
    "grok-reasoning": {"match": ["grok-3-mini*", "grok-4*", "grok-code*"], "omit": ["temperature"]},
    "grok-non-reasoning": {"match": ["grok-*non-reasoning*"], "omit": []},
}


class ModelSettings(_Section):
    provider: str = "offline"
    allow_fallback: bool = True
    fallback_order: list[str] = Field(default_factory=lambda: ["openai", "grok", "azure_openai", "compatible", "offline"])
    debug_prompt: bool = False
    temperature: float = 0.3
    retry_wait_max_s: float = Field(default=1.0, ge=0)
    breaker: BreakerSettings = BreakerSettings()
    # Entries given in config add to or replace the defaults by name.
    families: dict[str, ModelFamily] = Field(default_factory=lambda: {
        name: ModelFamily.model_validate(f) for name, f in DEFAULT_MODEL_FAMILIES.items()})
    openai: OpenAIModelSettings = OpenAIModelSettings()
    grok: GrokModelSettings = GrokModelSettings()
    compatible: CompatibleModelSettings = CompatibleModelSettings()
    azure_openai: AzureOpenAISettings = AzureOpenAISettings()

    @field_validator("families", mode="before")
    @classmethod
    def _merge_default_families(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**DEFAULT_MODEL_FAMILIES, **value}
        return value


class ChatSettings(_Section):
    max_tool_rounds: int = 4
    max_tool_calls: int = 8
    history_token_budget: int = 4000
    daily_token_budget: int = 200_000
    heartbeat_s: float = 15.0
    # Chat turns in progress (streamed or not): over the per-user cap 429, over the per-instance cap 503.
    max_streams_per_user: int = Field(20, ge=1)
    max_streams_per_instance: int = Field(64, ge=1)
    # A conversation holds at most this many messages (a turn adds two); then 422: start a new one.
    max_conversation_messages: int = Field(200, ge=2)
    # The model sees at most the last N stored messages (then trimmed to history_token_budget).
    context_messages: int = Field(20, ge=0)


class TimerSettings(_Section):
    market_refresh_schedule: str = "0 */15 * * * *"
    migration_schedule: str = "0 0 3 * * *"
    run_on_startup: bool = False


class KeyVaultSettings(_Section):
    enabled: bool = False
    uri: str | None = None
    name: str | None = None

    @property
    def vault_url(self) -> str | None:
        if self.uri:
            return self.uri
        return f"https://{self.name}.vault.azure.net/" if self.name else None


class McpSettings(_Section):
    """The MCP endpoint (/api/mcp)."""

    # The app's public origin as MCP clients reach it (e.g. https://api.example.com): the resource named in the
    # protected resource metadata and in the 401 challenge. Default: the request's own origin (Host, and
    # X-Forwarded-Host/-Proto behind the Azure front end).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+$")


class TelemetrySettings(_Section):
    applicationinsights_connection_string: SecretStr | None = None


class Settings(_Section):
    """Everything the app reads, validated once per cold start."""

    app: AppSettings = AppSettings()
    http: HttpSettings = HttpSettings()
    auth: AuthSettings = AuthSettings()
    mongodb: MongoSettings = MongoSettings()
    redis: RedisSettings = RedisSettings()
    cache: CacheSettings = CacheSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    market: MarketSettings = MarketSettings()
    models: ModelSettings = ModelSettings()
    chat: ChatSettings = ChatSettings()
    timers: TimerSettings = TimerSettings()
    mcp: McpSettings = McpSettings()
    keyvault: KeyVaultSettings = KeyVaultSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @property
    def is_local(self) -> bool:
        return self.app.env in ("local", "test")
