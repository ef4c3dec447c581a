import pytest

from shared.errors import Conflict, MarketDataUnavailable, NotFound
from shared.schemas.workspaces import WorkspaceCreate, WorkspaceUpdate
from shared.services.market_access import DeferredMarket
from shared.services.workspaces import WorkspaceService
from svc_fakes import FakeQuotes
from tests.racing import RacingCollection


def test_concurrent_update_without_if_match_is_retried_then_conflict(repos):
    from shared.data.repository import CONTENTION_ATTEMPTS

    repo = repos.get_workspace_repository()
    svc = WorkspaceService(workspace_repository=repo)
    ws = svc.create_workspace("u1", WorkspaceCreate(name="A"))
    inner = repo._collection
    repo._collection = RacingCollection(inner, on="find_one_and_update", also_set={"description": "theirs"})
    assert svc.update_workspace("u1", ws.id, WorkspaceUpdate(name="mine")).name == "mine"  # one lost race: retried
    assert svc.get_workspace("u1", ws.id).description == "theirs"  # the other write is kept
    repo._collection = RacingCollection(inner, on="find_one_and_update", also_set={"name": "theirs"},
                                        times=CONTENTION_ATTEMPTS)
    with pytest.raises(Conflict):
        svc.update_workspace("u1", ws.id, WorkspaceUpdate(name="mine again"))
    assert svc.get_workspace("u1", ws.id).name == "theirs"  # the other write is not lost


def test_deferred_market_resolves_lazily_and_translates_build_failures():
    calls = []

    def resolve():
        calls.append(1)
        return FakeQuotes({"AAPL": 1.0})

    market = DeferredMarket(resolve)
    assert calls == []  # nothing built until used
    assert market.get_quotes(["AAPL"])[0].price == 1.0
    assert market.health_check()[0] is True

    def broken():
        raise ImportError("market stack missing")

    down = DeferredMarket(broken)
    with pytest.raises(MarketDataUnavailable):
        down.get_quotes(["AAPL"])
    assert down.health_check()[0] is False


def test_deferred_market_passes_our_errors_through():
    def not_found():
        raise NotFound("x")

    with pytest.raises(NotFound):
        DeferredMarket(not_found).get_symbol("AAPL")
