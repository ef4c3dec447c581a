"""The caller's dashboard: workspaces, watchlists with latest quotes, portfolio values.

Each section is built independently: when its dependency fails the section says so
(`status`, `error`) and the others are still served, so the endpoint answers 200
whenever the caller can be authenticated.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from shared.errors import ApiError, DatabaseUnavailable, ServiceUnavailable, UpstreamError
from shared.market.models import Quote, QuoteError
from shared.schemas.dashboard import (
    CurrencyTotal, DashboardPortfolio, DashboardPublic, DashboardQuote, DashboardWatchlist, PortfoliosSection,
    WatchlistsSection, WorkspacesSection,
)
from shared.services.base import BaseService
from shared.services.market_access import fetch_quotes
from shared.services.protocols import PortfolioProvider, QuoteProvider, WatchlistProvider, WorkspaceProvider

S = TypeVar("S")


def _reason(exc: BaseException) -> str:
    """A short, safe description of why a section could not be built."""
    if isinstance(exc, UpstreamError):
        return "market data unavailable"
    if isinstance(exc, DatabaseUnavailable):
        return "database unavailable"
    if isinstance(exc, ServiceUnavailable):
        return "service unavailable"
    if isinstance(exc, ApiError):
        return exc.title.lower()
    return "internal error"


class DashboardService(BaseService):
    MAX_WORKSPACES = 10
    MAX_WATCHLISTS = 10
    MAX_PORTFOLIOS = 10
    MAX_SYMBOLS = 100

    def __init__(self, *, workspace_provider: WorkspaceProvider, watchlist_provider: WatchlistProvider,
                 portfolio_provider: PortfolioProvider, quote_provider: QuoteProvider | None, **kw: Any) -> None:
        super().__init__(**kw)
        self._workspaces = workspace_provider
        self._watchlists = watchlist_provider
        self._portfolios = portfolio_provider
        self._quotes = quote_provider

    def health_check(self) -> tuple[bool, dict[str, Any]]:
        def checkable(dep: Any) -> Any:
            return dep if hasattr(dep, "health_check") else None

        return self._dependencies_health_report(
            required={},
            optional={"workspaces": checkable(self._workspaces), "watchlists": checkable(self._watchlists),
                      "portfolios": checkable(self._portfolios), "quotes": checkable(self._quotes)},
        )

    def get_dashboard(self, user_id: str) -> DashboardPublic:
        workspaces = self._section(WorkspacesSection, lambda: self._workspaces_section(user_id))
        watchlists = self._section(WatchlistsSection, lambda: self._watchlists_section(user_id))
        portfolios = self._section(PortfoliosSection, lambda: self._portfolios_section(user_id))
        statuses = {workspaces.status, watchlists.status, portfolios.status}
        overall = "ok" if statuses == {"ok"} else "degraded"
        return DashboardPublic(status=overall, generated_at=self._utc_now(), workspaces=workspaces,
                               watchlists=watchlists, portfolios=portfolios)

    def _section(self, model: type[S], build: Callable[[], S]) -> S:
        try:
            return build()
        except Exception as exc:  # the degradation boundary: one section failing must not fail the dashboard
            if not isinstance(exc, ApiError):
                self.logger.exception("dashboard section %s failed", model.__name__)
            else:
                self.logger.warning("dashboard section %s unavailable: %s", model.__name__, type(exc).__name__)
            return model(status="unavailable", error=_reason(exc))  # type: ignore[call-arg]

    def _workspaces_section(self, user_id: str) -> WorkspacesSection:
        page = self._workspaces.list_workspaces(user_id, limit=self.MAX_WORKSPACES)
        return WorkspacesSection(items=page.items, has_more=page.next_cursor is not None)

    def _watchlists_section(self, user_id: str) -> WatchlistsSection:
        page = self._watchlists.list_watchlists(user_id, limit=self.MAX_WATCHLISTS)
        symbols = list(dict.fromkeys(s for w in page.items for s in w.symbols))[: self.MAX_SYMBOLS]
        quotes, error = self._quote_map(symbols)
        items = []
        for w in page.items:
            rows = []
            for sym in w.symbols:
                q = quotes.get(sym)
                if isinstance(q, Quote):
                    rows.append(DashboardQuote(symbol=sym, price=q.price, currency=q.currency, change=q.change,
                                               change_percent=q.change_percent, provenance=q.provenance))
                elif isinstance(q, QuoteError):
                    rows.append(DashboardQuote(symbol=sym, error=q))
                else:  # beyond MAX_SYMBOLS: listed without a quote
                    rows.append(DashboardQuote(symbol=sym))
            items.append(DashboardWatchlist(id=w.id, name=w.name, symbols=w.symbols, quotes=rows))
        failed = sum(isinstance(q, QuoteError) for q in quotes.values())
        status = "ok"
        if error is not None or failed:
            status = "degraded"
            error = error or f"{failed} of {len(quotes)} quotes unavailable"
        return WatchlistsSection(status=status, error=error, items=items, has_more=page.next_cursor is not None)

    def _quote_map(self, symbols: list[str]) -> tuple[dict[str, Quote | QuoteError], str | None]:
        quotes, batch_failed = fetch_quotes(self._quotes, symbols)
        return quotes, "market data unavailable" if batch_failed else None

    def _portfolios_section(self, user_id: str) -> PortfoliosSection:
        # One quote batch for every portfolio shown, not one per portfolio.
        valuations, has_more = self._portfolios.value_portfolios(user_id, limit=self.MAX_PORTFOLIOS)
        items: list[DashboardPortfolio] = []
        totals: dict[str, CurrencyTotal] = {}
        problems = 0
        market_down = False
        for v in valuations:
            if v.status in ("partial", "unavailable"):
                problems += 1
                market_down = market_down or v.failed_positions > 0
            items.append(DashboardPortfolio(id=v.portfolio_id, name=v.name, currency=v.currency, status=v.status,
                                            market_value=v.market_value, day_change=v.day_change,
                                            priced_positions=v.priced_positions, failed_positions=v.failed_positions))
            if v.market_value is not None:
                t = totals.setdefault(v.currency, CurrencyTotal(market_value=0.0, day_change=0.0))
                t.market_value = round(t.market_value + v.market_value, 6)
                t.day_change = round(t.day_change + (v.day_change or 0.0), 6)
        status = "degraded" if problems else "ok"
        error = None
        if problems:
            error = "market data unavailable" if market_down else f"{problems} portfolio valuations incomplete"
        return PortfoliosSection(status=status, error=error, items=items, totals=totals, has_more=has_more)
