from shared.errors import MarketDataUnavailable
from shared.schemas.portfolios import PortfolioCreate, PositionCreate
from shared.schemas.watchlists import WatchlistCreate
from shared.schemas.workspaces import WorkspaceCreate
from shared.services.dashboard import DashboardService
from shared.services.portfolios import PortfolioService
from shared.services.watchlists import WatchlistService
from shared.services.workspaces import WorkspaceService
from svc_fakes import Broken, FakeQuotes, FakeSymbols, clock


def build_dashboard_service(repos, quotes, *, workspaces=None):
    ws = WorkspaceService(workspace_repository=repos.get_workspace_repository())
    wl = WatchlistService(watchlist_repository=repos.get_watchlist_repository(), symbol_provider=FakeSymbols())
    pf = PortfolioService(portfolio_repository=repos.get_portfolio_repository(),
                          position_repository=repos.get_position_repository(), quote_provider=quotes,
                          symbol_provider=FakeSymbols(), time_provider=clock)
    svc = DashboardService(workspace_provider=workspaces or ws, watchlist_provider=wl, portfolio_provider=pf,
                           quote_provider=quotes, time_provider=clock)
    return svc, ws, wl, pf


def _seed(ws, wl, pf):
    ws.create_workspace("u1", WorkspaceCreate(name="W"))
    wl.create_watchlist("u1", WatchlistCreate(name="L", symbols=["AAPL", "MSFT"]))
    p = pf.create_portfolio("u1", PortfolioCreate(name="P"))
    pf.create_position("u1", p.id, PositionCreate(symbol="AAPL", quantity=2, cost_basis=1))


def test_dashboard_all_sections_ok(repos):
    quotes = FakeQuotes({"AAPL": 100.0, "MSFT": 50.0})
    svc, ws, wl, pf = build_dashboard_service(repos, quotes)
    _seed(ws, wl, pf)
    d = svc.get_dashboard("u1")
    assert d.status == "ok"
    assert [w.name for w in d.workspaces.items] == ["W"]
    assert [q.price for q in d.watchlists.items[0].quotes] == [100.0, 50.0]
    assert d.watchlists.items[0].quotes[0].provenance.source == "fake"
    assert d.portfolios.totals["USD"].market_value == 200.0 and d.portfolios.totals["USD"].day_change == 2.0


def test_market_down_degrades_quote_sections_only(repos):
    svc, ws, wl, pf = build_dashboard_service(repos, FakeQuotes(down=MarketDataUnavailable("down")))
    _seed(ws, wl, pf)
    d = svc.get_dashboard("u1")
    assert d.status == "degraded"
    assert d.workspaces.status == "ok" and len(d.workspaces.items) == 1
    assert d.watchlists.status == "degraded" and d.watchlists.error == "market data unavailable"
    assert d.watchlists.items[0].symbols == ["AAPL", "MSFT"]  # still listed
    assert all(q.price is None and q.error is not None for q in d.watchlists.items[0].quotes)
    assert d.portfolios.status == "degraded" and d.portfolios.error == "market data unavailable"
    assert d.portfolios.totals == {}


def test_database_down_for_one_section(repos):
    svc, ws, wl, pf = build_dashboard_service(repos, FakeQuotes({"AAPL": 1.0, "MSFT": 1.0}), workspaces=Broken())
    _seed(WorkspaceService(workspace_repository=repos.get_workspace_repository()), wl, pf)
    d = svc.get_dashboard("u1")
    assert d.workspaces.status == "unavailable" and d.workspaces.error == "database unavailable"
    assert d.watchlists.status == "ok" and d.portfolios.status == "ok"


def test_dashboard_health_degraded_not_failed(repos):
    svc, *_ = build_dashboard_service(repos, FakeQuotes(healthy=False))
    healthy, details = svc.health_check()
    assert healthy is True and details["status"] == "degraded"
    svc, *_ = build_dashboard_service(repos, FakeQuotes())
    assert svc.health_check()[1]["status"] == "healthy"


def test_portfolios_are_valued_with_one_quote_batch(repos):
    quotes = FakeQuotes({"AAPL": 100.0, "MSFT": 50.0, "NVDA": 10.0})
    svc, ws, wl, pf = build_dashboard_service(repos, quotes)
    for name, symbol in (("P1", "AAPL"), ("P2", "MSFT"), ("P3", "NVDA")):
        p = pf.create_portfolio("u9", PortfolioCreate(name=name))
        pf.create_position("u9", p.id, PositionCreate(symbol=symbol, quantity=1, cost_basis=1))
    quotes.calls.clear()
    d = svc.get_dashboard("u9")
    assert d.portfolios.status == "ok" and len(d.portfolios.items) == 3
    portfolio_batches = [c for c in quotes.calls if set(c) >= {"AAPL", "MSFT", "NVDA"}]
    assert len(portfolio_batches) == 1 and len(quotes.calls) == 1  # no watchlists here: one call in all
    assert d.portfolios.totals["USD"].market_value == 160.0
