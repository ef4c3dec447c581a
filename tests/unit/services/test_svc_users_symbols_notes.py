import pytest

from shared.errors import Conflict, MarketDataUnavailable, NotFound, PreconditionFailed, ValidationFailed
from shared.market.models import SymbolMatch
from shared.schemas.notes import IdeaCreate, IdeaUpdate, NoteCreate, NoteUpdate
from shared.schemas.users import PreferencesUpdate, ProfileUpdate, UserCreate
from shared.services.notes import IdeaService, NoteService
from shared.services.symbols import SymbolsService
from shared.services.users import UserService
from svc_fakes import Broken, FakeKeyIssuer, FakeMarketSearch


def build_user_service(repos, keys=None, preferences_repository=None) -> UserService:
    return UserService(user_repository=repos.get_user_repository(),
                       profile_repository=repos.get_user_profile_repository(),
                       preferences_repository=preferences_repository or repos.get_user_preferences_repository(),
                       api_keys=keys or FakeKeyIssuer(), watchlist_repository=repos.get_watchlist_repository())


def build_symbols_service(repos, market=None, cache=None) -> SymbolsService:
    repo = repos.get_symbol_repository()
    if repo.count() == 0:
        repo.insert_one({"symbol": "AAPL", "name": "Apple Inc.", "exchange": "NASDAQ", "type": "equity"})
        repo.insert_one({"symbol": "MSFT", "name": "Microsoft Corporation", "exchange": "NASDAQ", "type": "equity"})
    return SymbolsService(symbol_repository=repo, market=market, cache=cache)


def test_create_user_returns_key_once_and_rejects_duplicates(repos):
    keys = FakeKeyIssuer()
    svc = build_user_service(repos, keys)
    created = svc.create_user(UserCreate(email="Ann@Example.com", roles=["admin"]))
    assert created.user.email == "ann@example.com" and set(created.user.roles) == {"admin", "user"}
    assert created.api_key.secret.startswith("sak_") and created.api_key.id in keys.keys
    with pytest.raises(Conflict):
        svc.create_user(UserCreate(email="ann@example.com"))
    listed = svc.list_api_keys(created.user.id)
    assert [k.id for k in listed.items] == [created.api_key.id]
    assert "secret" not in listed.items[0].model_dump() and "key_hash" not in listed.items[0].model_dump()


def test_profile_versioning(repos):
    svc = build_user_service(repos)
    assert svc.get_profile("u1").version == 0
    with pytest.raises(PreconditionFailed):
        svc.update_profile("u1", ProfileUpdate(bio="x"), expected_version=3)
    p = svc.update_profile("u1", ProfileUpdate(bio="hello"), expected_version=0)
    assert p.version == 1 and p.bio == "hello"
    p = svc.update_profile("u1", ProfileUpdate(display_name="Ann"))
    assert p.version == 2 and p.bio == "hello" and p.display_name == "Ann"
    with pytest.raises(PreconditionFailed):
        svc.update_profile("u1", ProfileUpdate(bio="stale"), expected_version=1)


def test_preferences_replace_and_default_watchlist_must_be_own(repos):
    svc = build_user_service(repos)
    assert svc.get_preferences("u1").risk_profile == "moderate"
    mine = repos.get_watchlist_repository().insert_one("u1", {"name": "L", "symbols": []})
    theirs = repos.get_watchlist_repository().insert_one("u2", {"name": "L", "symbols": []})
    prefs = svc.replace_preferences("u1", PreferencesUpdate(default_watchlist_id=mine["id"], risk_profile="aggressive",
                                                           currency="eur", preferred_model_provider="openai"))
    assert prefs.currency == "EUR" and prefs.version == 1 and prefs.default_watchlist_id == mine["id"]
    with pytest.raises(ValidationFailed):
        svc.replace_preferences("u1", PreferencesUpdate(default_watchlist_id=theirs["id"]))
    prefs = svc.replace_preferences("u1", PreferencesUpdate(), expected_version=1)  # PUT: back to defaults
    assert prefs.risk_profile == "moderate" and prefs.default_watchlist_id is None and prefs.version == 2


def test_user_service_health(repos):
    assert build_user_service(repos).health_check()[0] is True
    healthy, details = build_user_service(repos, preferences_repository=Broken()).health_check()
    assert healthy is False and details["components"]["preferences_repository"]["status"] == "unhealthy"


def test_symbols_catalogue_then_market(repos):
    market = FakeMarketSearch([SymbolMatch(symbol="SHOP", name="Shopify Inc.", exchange="NYSE")])
    svc = build_symbols_service(repos, market)
    assert svc.get_symbol(" aapl ").name == "Apple Inc."
    assert market.calls == 0
    shop = svc.get_symbol("shop")
    assert shop.source == "market" and market.calls == 1
    assert svc.find_symbol("NOPE") is None
    with pytest.raises(NotFound):
        svc.get_symbol("NOPE")
    with pytest.raises(ValidationFailed):
        svc.get_symbol("bad symbol!")
    assert [s.symbol for s in svc.search_symbols("micro").items] == ["MSFT"]
    assert [s.symbol for s in svc.search_symbols("shop").items] == ["SHOP"]


def test_symbols_market_failure_propagates_and_health_degrades(repos):
    svc = build_symbols_service(repos, FakeMarketSearch(down=MarketDataUnavailable("down")))
    assert svc.get_symbol("AAPL").symbol == "AAPL"  # catalogue needs no market
    with pytest.raises(MarketDataUnavailable):
        svc.get_symbol("SHOP")
    svc = build_symbols_service(repos, Broken())
    healthy, details = svc.health_check()
    assert healthy is True and details["status"] == "degraded"


def test_symbols_browse_catalogue_paginates(repos):
    svc = build_symbols_service(repos)
    first = svc.search_symbols(None, limit=1)
    assert [s.symbol for s in first.items] == ["AAPL"] and first.next_cursor
    second = svc.search_symbols("", limit=1, cursor=first.next_cursor)
    assert [s.symbol for s in second.items] == ["MSFT"]


def test_symbol_lookups_are_cached(repos):
    from shared.cache.backend import CacheBackend
    from shared.config import Settings

    cache = CacheBackend.from_config(Settings())
    market = FakeMarketSearch([SymbolMatch(symbol="SHOP", name="Shopify Inc.")])
    svc = build_symbols_service(repos, market, cache=cache)
    svc.get_symbol("SHOP")
    svc.get_symbol("SHOP")
    assert market.calls == 1


def test_notes_tags_filters_and_versions(repos):
    svc = NoteService(note_repository=repos.get_note_repository())
    n = svc.create_note("u1", NoteCreate(body="# AAPL", tags=["tech", "tech", "ai"], symbol="aapl"))
    svc.create_note("u1", NoteCreate(body="other", tags=["macro"]))
    assert n.tags == ["tech", "ai"] and n.symbol == "AAPL"
    assert [x.id for x in svc.list_notes("u1", tag="ai").items] == [n.id]
    assert [x.id for x in svc.list_notes("u1", symbol="aapl").items] == [n.id]
    assert svc.list_notes("u2").items == []
    updated = svc.update_note("u1", n.id, NoteUpdate(tags=["x", "x"]), expected_version=1)
    assert updated.tags == ["x"] and updated.version == 2
    with pytest.raises(NotFound):
        svc.delete_note("u2", n.id)
    assert NoteService(note_repository=Broken()).health_check()[0] is False


def test_ideas_crud_and_filters(repos):
    svc = IdeaService(idea_repository=repos.get_investment_idea_repository())
    idea = svc.create_idea("u1", IdeaCreate(title="Long NVDA", symbol="nvda", target_price=200))
    svc.create_idea("u1", IdeaCreate(title="Short X", status="active"))
    assert [i.id for i in svc.list_ideas("u1", status="draft").items] == [idea.id]
    assert [i.id for i in svc.list_ideas("u1", symbol="NVDA").items] == [idea.id]
    assert svc.update_idea("u1", idea.id, IdeaUpdate(status="closed")).status == "closed"
    svc.delete_idea("u1", idea.id)
    with pytest.raises(NotFound):
        svc.get_idea("u1", idea.id)
