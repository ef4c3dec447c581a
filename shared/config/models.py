"""The validated configuration model. Secrets are `SecretStr`: they never show in reprs or logs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
        default_factory=lambda: ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "If-Match"]
    )
    max_age_s: int = 600


class HttpSettings(_Section):
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    max_string_length: int = 100_000
    behind_azure_frontend: bool = False
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


class MongoSettings(_Section):
    uri: SecretStr | None = None
    password: SecretStr | None = None
    database: str = "stockagent"
    server_selection_timeout_ms: int = 1500  # a dead database answers 503 well within 2.5 s
    timeout_ms: int = 1500
    retry_writes: bool = True
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
                                 "auth_failures": "30/minute"}
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


class ProviderModelSettings(_Section):
    api_key: SecretStr | None = None
    model: str | None = None
    base_url: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 1


class AzureOpenAISettings(_Section):
    endpoint: str | None = None
    deployment: str | None = None
    api_version: str = "2024-10-21"
    api_key: SecretStr | None = None
    use_entra_id: bool = False
    timeout_s: float = 30.0
    max_retries: int = 1


class ModelSettings(_Section):
    provider: str = "offline"
    allow_fallback: bool = True
    fallback_order: list[str] = Field(default_factory=lambda: ["openai", "grok", "azure_openai", "compatible", "offline"])
    debug_prompt: bool = False
    temperature: float = 0.3
    openai: ProviderModelSettings = ProviderModelSettings(model="gpt-4o-mini")
    grok: ProviderModelSettings = ProviderModelSettings(model="grok-3-mini", base_url="https://api.x.ai/v1")
    compatible: ProviderModelSettings = ProviderModelSettings()
    azure_openai: AzureOpenAISettings = AzureOpenAISettings()


class ChatSettings(_Section):
    max_tool_rounds: int = 4
    max_tool_calls: int = 8
    history_token_budget: int = 4000
    daily_token_budget: int = 200_000
    heartbeat_s: float = 15.0


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
    keyvault: KeyVaultSettings = KeyVaultSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @property
    def is_local(self) -> bool:
        return self.app.env in ("local", "test")
