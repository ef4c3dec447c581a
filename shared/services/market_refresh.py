"""The cache-warming job: quotes for every watched, held and core symbol, fanned out as queued batches.

The timer only lists the symbols and queues one message per provider batch; the queue-triggered
function refreshes one batch. So a refresh of thousands of symbols spreads across instances, and
a batch whose provider fails is retried on its own (then lands in the poison queue) while the
others complete.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.config import Settings
from shared.errors import MarketDataUnavailable, ValidationFailed
from shared.market import normalize_symbol
from shared.market.args import MAX_BATCH
from shared.queues import MARKET_REFRESH
from shared.resilience import RATE_LIMITED, UNAVAILABLE
from shared.services.base import BaseService
from shared.services.jobs import Job


class MarketRefreshBatch(BaseModel):
    """The payload of one market-refresh message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(min_length=1, max_length=64)
    batch: int = Field(ge=0)
    batches: int = Field(ge=1)
    symbols: list[str] = Field(min_length=1, max_length=MAX_BATCH)


def retryable_failures(summary: dict[str, Any]) -> dict[str, str]:
    """The failures of a `DataManager.refresh_quotes` summary worth another attempt: a provider rate limited or
    unavailable. A misconfigured provider (skipped until its configuration changes), a symbol no provider offers,
    an unknown or invalid symbol stay failed: retried, they would only end in the poison queue."""
    outcomes: dict[str, str] = summary.get("outcomes") or {}
    return {symbol: reason for symbol, reason in summary["failures"].items()
            if outcomes.get(symbol) in (RATE_LIMITED, UNAVAILABLE)}


class MarketRefreshService(BaseService):
    def __init__(self, *, settings: Settings, repos: Any, market: Any, queues: Any, queue: str = MARKET_REFRESH,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self._settings = settings
        self._repos = repos
        self._market = market
        self._queues = queues
        self.queue = queue

    def symbols_to_refresh(self) -> list[str]:
        """Core symbols first, then every symbol on any watchlist or in any position (all owners:
        this is a system job, so it reads the collections directly rather than per owner), each
        once in its canonical form; a stored value that is not a valid symbol is left out."""
        symbols: dict[str, None] = {}
        watched = self._repos.get_watchlist_repository().collection.distinct("symbols")
        held = self._repos.get_position_repository().collection.distinct("symbol")
        for raw in [*self._settings.market.core_symbols, *watched, *held]:
            try:
                symbols.setdefault(normalize_symbol(raw))
            except ValidationFailed:
                self.logger.warning("market refresh: skipping stored value %r, not a symbol", raw)
        return list(symbols)

    def fan_out(self) -> dict[str, Any]:
        """Queue one message (on `market-refresh`) per batch of `market.refresh_batch_size` symbols (every
        symbol in exactly one batch). Each batch's dedupe key is `<run id>:<batch>`, so a redelivered
        message refreshes its batch once. Raises QueueUnavailable when the queue cannot be reached."""
        symbols = self.symbols_to_refresh()
        size = max(1, min(MAX_BATCH, int(self._settings.market.refresh_batch_size)))
        batches = [symbols[i:i + size] for i in range(0, len(symbols), size)]
        run_id = uuid.uuid4().hex
        jobs = [
            self._queues.enqueue(self.queue, MarketRefreshBatch(run_id=run_id, batch=i, batches=len(batches),
                                                                    symbols=batch).model_dump(),
                                 dedupe_key=f"{run_id}:{i}").id
            for i, batch in enumerate(batches)
        ]
        self.logger.info("market refresh %s: %d symbols queued in %d batches on %s", run_id, len(symbols), len(batches),
                         self.queue, extra={"run_id": run_id, "symbols": len(symbols), "batches": len(batches)})
        return {"run_id": run_id, "queue": self.queue, "symbols": len(symbols), "batches": len(batches), "jobs": jobs}

    def refresh_batch(self, job: Job) -> dict[str, Any]:
        """Refresh the quotes of one queued batch that are not fresh in the cache.

        Raises MarketDataUnavailable when a symbol failed with a transient outcome, a provider rate limited
        or unavailable (the message is retried; symbols refreshed meanwhile are fresh and skipped);
        ValidationFailed for a payload that is not a batch. Other failures (unknown symbols, a provider
        misconfigured or not offering the symbol) are logged and not retried.
        """
        try:
            batch = MarketRefreshBatch.model_validate(job.payload)
        except ValueError as exc:
            raise ValidationFailed(f"not a market-refresh batch: {exc}") from None
        summary: dict[str, Any] = self._market.refresh_quotes(batch.symbols)
        retry = retryable_failures(summary)
        self.logger.info(
            "market refresh %s batch %d/%d: %d symbols, %d refreshed, %d fresh, %d upstream calls, %d failures, %.0f ms",
            batch.run_id, batch.batch + 1, batch.batches, summary["symbols"], summary["refreshed"],
            summary["skipped_fresh"], summary["upstream_calls"], len(summary["failures"]), summary["duration_ms"],
            extra={"run_id": batch.run_id, "batch": batch.batch, "failures": summary["failures"]})
        if retry:
            shown = ", ".join(f"{s} ({r})" for s, r in list(retry.items())[:5])
            raise MarketDataUnavailable(f"{len(retry)} of {len(batch.symbols)} symbols could not be refreshed: {shown}")
        return summary

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        return self._dependencies_health_report(required={"database": self._repos}, optional={"market": self._market})
