"""Regression tests for the data/services review: ordering, races and normalisation."""

import pytest

from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from shared.schemas.portfolios import PortfolioCreate, PositionCreate, PositionUpdate
from shared.schemas.users import PreferencesUpdate, ProfileUpdate, UserCreate
from shared.schemas.watchlists import WatchlistCreate, WatchlistUpdate
from shared.schemas.workspaces import WorkspaceCreate, WorkspaceUpdate
from shared.services.portfolios import PortfolioService
from shared.services.users import UserService
from shared.services.watchlists import WatchlistService
from shared.services.workspaces import WorkspaceService
from svc_fakes import FakeKeyIssuer, FakeSymbols, clock


class Proxy:
    """Delegates to a real repository; tests override single methods."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)


# ---------------------------------------------------------------- portfolios (3)

def _portfolio_service(repos, positions=None) -> PortfolioService:
    return PortfolioService(portfolio_repository=repos.get_portfolio_repository(),
                            position_repository=positions or repos.get_position_repository(),
                            symbol_provider=FakeSymbols(), time_provider=clock)


def test_failed_position_delete_keeps_the_portfolio(repos):
    class FailingPositions(Proxy):
        def delete_for_portfolio(self, owner_id, portfolio_id):
            raise RuntimeError("database hiccup")

    svc = _portfolio_service(repos, FailingPositions(repos.get_position_repository()))
    p = svc.create_portfolio("u1", PortfolioCreate(name="Main"))
    pos = svc.create_position("u1", p.id, PositionCreate(symbol="AAPL", quantity=1, cost_basis=1.0))
    with pytest.raises(RuntimeError):
        svc.delete_portfolio("u1", p.id)
    assert svc.get_portfolio("u1", p.id).id == p.id  # nothing orphaned: the delete can be retried
    assert svc.get_position("u1", p.id, pos.id).id == pos.id


def test_if_match_is_checked_before_positions_are_deleted(repos):
    svc = _portfolio_service(repos)
    p = svc.create_portfolio("u1", PortfolioCreate(name="Main"))
    svc.create_position("u1", p.id, PositionCreate(symbol="AAPL", quantity=1, cost_basis=1.0))
    with pytest.raises(PreconditionFailed):
        svc.delete_portfolio("u1", p.id, expected_version=9)
    assert repos.get_position_repository().count("u1") == 1
    svc.delete_portfolio("u1", p.id, expected_version=1)
    assert repos.get_position_repository().count("u1") == 0


def test_orphan_position_is_not_served(repos):
    svc = _portfolio_service(repos)
    p = svc.create_portfolio("u1", PortfolioCreate(name="Main"))
    pos = svc.create_position("u1", p.id, PositionCreate(symbol="AAPL", quantity=1, cost_basis=1.0))
    repos.get_portfolio_repository().delete_one("u1", p.id)  # as a racing/failed delete leaves it
    with pytest.raises(NotFound):
        svc.get_position("u1", p.id, pos.id)
    with pytest.raises(NotFound):
        svc.update_position("u1", p.id, pos.id, PositionUpdate(quantity=2))
    with pytest.raises(NotFound):
        svc.delete_position("u1", p.id, pos.id)


# ---------------------------------------------------------------- users (4, 5)

def _user_service(repos, *, keys=None, profiles=None, preferences=None) -> UserService:
    return UserService(user_repository=repos.get_user_repository(),
                       profile_repository=profiles or repos.get_user_profile_repository(),
                       preferences_repository=preferences or repos.get_user_preferences_repository(),
                       api_keys=keys or FakeKeyIssuer(), watchlist_repository=repos.get_watchlist_repository())


class WriteAfterRead(Proxy):
    """Another request writes right after this one read the document."""

    def __init__(self, inner, changes) -> None:
        super().__init__(inner)
        self._changes = changes

    def get_for_owner(self, owner_id):
        doc = self._inner.get_for_owner(owner_id)
        if doc is not None:
            self._inner.update_one(owner_id, doc["id"], self._changes)
        return doc


def test_concurrent_profile_write_without_if_match_is_not_a_precondition_failure(repos):
    # No If-Match: the version the service read is not a client precondition (that was a 412);
    # the repository's own read-then-conditional-write makes a true race a 409 instead.
    profiles = repos.get_user_profile_repository()
    _user_service(repos).update_profile("u1", ProfileUpdate(bio="first"))
    svc = _user_service(repos, profiles=WriteAfterRead(profiles, {"display_name": "Other"}))
    p = svc.update_profile("u1", ProfileUpdate(bio="mine"))
    assert p.version == 3 and p.bio == "mine" and p.display_name == "Other"


def test_concurrent_preferences_write_without_if_match_is_not_a_precondition_failure(repos):
    prefs = repos.get_user_preferences_repository()
    _user_service(repos).replace_preferences("u1", PreferencesUpdate(risk_profile="aggressive"))
    svc = _user_service(repos, preferences=WriteAfterRead(prefs, {"preferences": {"risk_profile": "moderate"}}))
    assert svc.replace_preferences("u1", PreferencesUpdate(risk_profile="conservative")).version == 3


def test_concurrent_write_with_if_match_is_still_412(repos):
    profiles = repos.get_user_profile_repository()
    _user_service(repos).update_profile("u1", ProfileUpdate(bio="first"))
    svc = _user_service(repos, profiles=WriteAfterRead(profiles, {"display_name": "Other"}))
    with pytest.raises(PreconditionFailed):
        svc.update_profile("u1", ProfileUpdate(bio="mine"), expected_version=1)


class ReadsNothing(Proxy):
    """Each save's first read sees "no document yet", as two racing first saves both do."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.reads = 0

    def get_for_owner(self, owner_id):
        self.reads += 1
        return None if self.reads == 1 else self._inner.get_for_owner(owner_id)


def _stale(proxy: ReadsNothing) -> ReadsNothing:
    proxy.reads = 0
    return proxy


def test_two_first_profile_saves_with_if_match_zero_do_not_both_pass(repos):
    profiles = repos.get_user_profile_repository()
    proxy = ReadsNothing(profiles)
    svc = _user_service(repos, profiles=proxy)
    assert svc.update_profile("u1", ProfileUpdate(bio="a"), expected_version=0).version == 1
    with pytest.raises(PreconditionFailed):
        _stale(proxy)
        svc.update_profile("u1", ProfileUpdate(bio="b"), expected_version=0)
    with pytest.raises(Conflict):
        _stale(proxy)
        svc.update_profile("u1", ProfileUpdate(bio="c"))
    assert profiles.get_for_owner("u1")["bio"] == "a"


def test_two_first_preferences_saves_with_if_match_zero_do_not_both_pass(repos):
    prefs = repos.get_user_preferences_repository()
    proxy = ReadsNothing(prefs)
    svc = _user_service(repos, preferences=proxy)
    svc.replace_preferences("u1", PreferencesUpdate(risk_profile="aggressive"), expected_version=0)
    with pytest.raises(PreconditionFailed):
        _stale(proxy)
        svc.replace_preferences("u1", PreferencesUpdate(risk_profile="conservative"), expected_version=0)


def test_create_user_is_undone_when_the_key_cannot_be_created(repos):
    class BrokenKeys(FakeKeyIssuer):
        def create_api_key(self, user_id, name):
            raise RuntimeError("key store down")

    with pytest.raises(RuntimeError):
        _user_service(repos, keys=BrokenKeys()).create_user(UserCreate(email="ann@example.com"))
    assert repos.get_user_repository().find_by_email("ann@example.com") is None
    created = _user_service(repos).create_user(UserCreate(email="ann@example.com"))  # the retry is not a 409
    assert created.user.email == "ann@example.com"


# ---------------------------------------------------------------- watchlists (7) and names (11)

def test_add_symbol_cannot_exceed_max_symbols_even_after_a_stale_read(repos, monkeypatch):
    import shared.services.watchlists as module

    monkeypatch.setattr(module, "MAX_SYMBOLS", 2)
    raw = repos.get_watchlist_repository()

    class StaleRead(Proxy):
        def get(self, owner_id, id):  # read before a concurrent add filled the list
            return {**self._inner.get(owner_id, id), "symbols": []}

    svc = WatchlistService(watchlist_repository=StaleRead(raw), symbol_provider=FakeSymbols())
    wl = raw.insert_one("u1", {"name": "L", "symbols": ["AAPL", "MSFT"]})
    with pytest.raises(ValidationFailed) as info:
        svc.add_symbol("u1", wl["id"], "NVDA")
    assert info.value.errors == {"symbol": ["At most 2 symbols per watchlist"]}
    assert raw.get("u1", wl["id"])["symbols"] == ["AAPL", "MSFT"]
    assert svc.add_symbol("u1", wl["id"], "aapl").symbols == ["AAPL", "MSFT"]  # already there: idempotent
    with pytest.raises(NotFound):
        raw.add_symbol("u2", wl["id"], "NVDA", max_symbols=2)


@pytest.mark.parametrize("entity", ["workspace", "watchlist"])
def test_duplicate_name_caught_by_the_index_has_a_clear_message(repos, entity):
    repo = repos.get_workspace_repository() if entity == "workspace" else repos.get_watchlist_repository()
    first = repo.insert_one("u1", {"name": "Research", "symbols": []} if entity == "watchlist" else {"name": "Research"})
    other = repo.insert_one("u1", {"name": "Ideas", "symbols": []} if entity == "watchlist" else {"name": "Ideas"})
    for attempt in (lambda: repo.insert_one("u1", {"name": " research "}),
                    lambda: repo.update_one("u1", other["id"], {"name": "RESEARCH"})):
        with pytest.raises(Conflict) as info:
            attempt()
        assert info.value.detail == f"{entity.capitalize()} name already exists"
        assert info.value.extra == {"field": "name"}
    assert repo.get("u1", first["id"])["name"] == "Research"


def test_services_no_longer_pre_read_names(repos):
    class NoNameLookups(Proxy):
        def find_by_name(self, owner_id, name):
            raise AssertionError("name uniqueness is the index's job")

    ws = WorkspaceService(workspace_repository=NoNameLookups(repos.get_workspace_repository()))
    a = ws.create_workspace("u1", WorkspaceCreate(name="A"))
    with pytest.raises(Conflict, match="Workspace name already exists"):
        ws.create_workspace("u1", WorkspaceCreate(name="a"))
    assert ws.update_workspace("u1", a.id, WorkspaceUpdate(name="B")).name == "B"
    wls = WatchlistService(watchlist_repository=NoNameLookups(repos.get_watchlist_repository()),
                           symbol_provider=FakeSymbols())
    wl = wls.create_watchlist("u1", WatchlistCreate(name="L"))
    with pytest.raises(Conflict, match="Watchlist name already exists"):
        wls.create_watchlist("u1", WatchlistCreate(name="l"))
    assert wls.update_watchlist("u1", wl.id, WatchlistUpdate(name="M")).name == "M"


# ---------------------------------------------------------------- tags and symbols (12)

@pytest.mark.parametrize("getter", ["get_note_repository", "get_investment_idea_repository"])
def test_tags_and_symbol_are_normalised_on_update_too(repos, getter):
    repo = getattr(repos, getter)()
    base = {"body": "b"} if getter == "get_note_repository" else {"title": "t", "thesis": "x", "status": "open"}
    doc = repo.insert_one("u1", {**base, "tags": [" a ", "a", "", "b"], "symbol": " msft "})
    assert doc["tags"] == ["a", "b"] and doc["symbol"] == "MSFT"
    updated = repo.update_one("u1", doc["id"], {"tags": ["  x", "x ", " ", "y"], "symbol": "aapl "})
    assert updated["tags"] == ["x", "y"] and updated["symbol"] == "AAPL"
