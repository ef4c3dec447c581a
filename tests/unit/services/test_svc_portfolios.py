import pytest

from shared.errors import MarketDataUnavailable, NotFound, ValidationFailed
from shared.schemas.portfolios import PortfolioCreate, PositionCreate, PositionUpdate
from shared.services.portfolios import PortfolioService
from svc_fakes import FakeQuotes, FakeSymbols, clock


def build_portfolio_service(repos, quotes=None, symbols=None) -> PortfolioService:
    return PortfolioService(portfolio_repository=repos.get_portfolio_repository(),
                            position_repository=repos.get_position_repository(),
                            quote_provider=quotes, symbol_provider=symbols or FakeSymbols(), time_provider=clock)


def _portfolio(svc, positions, currency="USD"):
    p = svc.create_portfolio("u1", PortfolioCreate(name="Main", currency=currency))
    for sym, qty, cost in positions:
        svc.create_position("u1", p.id, PositionCreate(symbol=sym, quantity=qty, cost_basis=cost))
    return p


def test_valuation_complete_with_provenance(repos):
    svc = build_portfolio_service(repos, FakeQuotes({"AAPL": 200.0, "MSFT": 100.0}))
    p = _portfolio(svc, [("AAPL", 2, 150.0), ("MSFT", 1, 120.0)])
    v = svc.value_portfolio("u1", p.id)
    assert v.status == "complete"
    assert v.market_value == 500.0 and v.cost_value == 420.0 and v.unrealized_pl == 80.0
    assert v.day_change == 3.0  # change 1.0 per unit x 3 units
    assert all(row.provenance.source == "fake" for row in v.positions)


def test_failed_quote_is_reported_not_defaulted(repos):
    svc = build_portfolio_service(repos, FakeQuotes({"AAPL": 200.0}, failing=["MSFT"]))
    p = _portfolio(svc, [("AAPL", 1, 100.0), ("MSFT", 10, 100.0)])
    v = svc.value_portfolio("u1", p.id)
    assert v.status == "partial" and v.failed_positions == 1 and v.priced_positions == 1
    msft = next(r for r in v.positions if r.symbol == "MSFT")
    assert msft.price is None and msft.market_value is None and not msft.included_in_totals
    assert msft.error.status == 502 and msft.error.type == "/problems/market-data-unavailable"
    assert v.market_value == 200.0  # only the priced position


def test_market_down_makes_valuation_unavailable(repos):
    svc = build_portfolio_service(repos, FakeQuotes(down=MarketDataUnavailable("all providers failed")))
    p = _portfolio(svc, [("AAPL", 1, 1.0)])
    v = svc.value_portfolio("u1", p.id)
    assert v.status == "unavailable" and v.market_value is None
    assert v.positions[0].error.detail == "all providers failed"


def test_currency_mismatch_is_left_out_of_totals(repos):
    svc = build_portfolio_service(repos, FakeQuotes({"AAPL": 10.0, "MSFT": 5.0}, currencies={"MSFT": "EUR"}))
    p = _portfolio(svc, [("AAPL", 1, 1.0), ("MSFT", 1, 1.0)])
    v = svc.value_portfolio("u1", p.id)
    assert v.status == "partial" and v.market_value == 10.0
    assert "EUR" in next(r for r in v.positions if r.symbol == "MSFT").note


def test_empty_portfolio_and_no_provider(repos):
    svc = build_portfolio_service(repos, quotes=None)
    empty = svc.create_portfolio("u1", PortfolioCreate(name="E"))
    assert svc.value_portfolio("u1", empty.id).status == "empty"
    p = _portfolio(svc, [("AAPL", 1, 1.0)])
    assert svc.value_portfolio("u1", p.id).positions[0].error.status == 503


def test_positions_are_scoped_to_portfolio_and_owner(repos):
    svc = build_portfolio_service(repos, FakeQuotes())
    a = _portfolio(svc, [("AAPL", 1, 1.0)])
    b = svc.create_portfolio("u1", PortfolioCreate(name="B"))
    pos = svc.list_positions("u1", a.id).items[0]
    with pytest.raises(NotFound):
        svc.get_position("u1", b.id, pos.id)  # right owner, wrong portfolio
    with pytest.raises(NotFound):
        svc.list_positions("u2", a.id)
    with pytest.raises(ValidationFailed):
        svc.create_position("u1", a.id, PositionCreate(symbol="NOPE", quantity=1, cost_basis=1))
    assert svc.update_position("u1", a.id, pos.id, PositionUpdate(quantity=3)).quantity == 3
    svc.delete_portfolio("u1", a.id)
    assert repos.get_position_repository().count("u1") == 0  # positions went with it


def test_portfolio_health(repos):
    healthy, details = build_portfolio_service(repos, FakeQuotes(healthy=False)).health_check()
    assert healthy is True and details["status"] == "degraded"
    healthy, details = build_portfolio_service(repos, FakeQuotes()).health_check()
    assert details["status"] == "healthy"
