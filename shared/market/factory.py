"""Builds a DataManager and, lazily on first use, the providers named in settings."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from shared.market.manager import DataManager
from shared.market.protocols import CacheLike, SingleFlightLike

if TYPE_CHECKING:  # pragma: no cover
    from shared.config.models import Settings

logger = logging.getLogger(__name__)

KNOWN_PROVIDERS = ("yahoo", "alpha_vantage", "offline")


def provider_factory(settings: "Settings", cache: CacheLike, *, clock: Callable[[], datetime] | None = None,
                     av_transport: Any = None, yahoo_session: Any = None) -> Callable[[str], Any]:
    """A function building one provider by name; it raises (naming the setting) when the provider cannot run as
    configured, e.g. Alpha Vantage without a key, and returns None for an unknown name.

    ``av_transport`` (an httpx transport) and ``yahoo_session`` (a ``YahooSession``) replace the real HTTP layer
    in tests; the SDK code above them runs as in production."""
    clock = clock or (lambda: datetime.now(timezone.utc))
    market = settings.market

    def build(name: str) -> Any:
        if name == "offline":
            from shared.market.providers.offline import OfflineProvider

            # Authoritative only when no real provider is configured anywhere (see OfflineProvider).
            alone = all(order == ["offline"] for order in market.providers.values() if order)
            return OfflineProvider(clock=clock, authoritative=alone)
        if name == "yahoo":
            from shared.market.providers.yahoo import YahooProvider

            return YahooProvider(max_concurrency=market.yahoo_max_concurrency, timeout_s=market.yahoo_timeout_s,
                                 deadline_s=market.yahoo_deadline_s, clock=clock, session=yahoo_session)
        if name == "alpha_vantage":
            av = market.alpha_vantage
            key = av.api_key.get_secret_value() if av.api_key else ""
            if not key:
                raise ValueError("market.alpha_vantage.api_key (ALPHA_VANTAGE_API_KEY) is not set")
            from shared.market.providers.alpha_vantage import AlphaVantageProvider

            return AlphaVantageProvider(api_key=key, cache=cache, base_url=av.base_url, daily_quota=av.daily_quota,
                                        timeout_s=av.timeout_s, transport=av_transport, clock=clock)
        logger.warning("unknown market data provider %r in market.providers (known: %s)", name, ", ".join(KNOWN_PROVIDERS))
        return None

    return build


def build_data_manager(settings: "Settings", cache: CacheLike, singleflight: SingleFlightLike, **kw: Any) -> DataManager:
    """DataManager wired from settings. Keyword args are passed to DataManager (clock, snapshot_sink,
    executor, providers to pre-seed or override by name, ...); ``av_transport`` and ``yahoo_session`` go to
    ``provider_factory``.
    Nothing heavy is imported here: each provider module is imported when first asked for.
    """
    clock = kw.pop("clock", None) or (lambda: datetime.now(timezone.utc))
    http = {name: kw.pop(name) for name in ("av_transport", "yahoo_session") if name in kw}
    factory = kw.pop("provider_factory", None) or provider_factory(settings, cache, clock=clock, **http)
    return DataManager(settings=settings, cache=cache, singleflight=singleflight, clock=clock, provider_factory=factory, **kw)
