import pytest

from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from shared.schemas.watchlists import WatchlistCreate, WatchlistUpdate
from shared.schemas.workspaces import WorkspaceCreate, WorkspaceUpdate
from shared.services.watchlists import WatchlistService
from shared.services.workspaces import WorkspaceService
from svc_fakes import Broken, FakeSymbols


def build_workspace_service(repos, repo=None) -> WorkspaceService:
    return WorkspaceService(workspace_repository=repo or repos.get_workspace_repository())


def build_watchlist_service(repos, *, symbols=None, workspaces=None) -> WatchlistService:
    return WatchlistService(watchlist_repository=repos.get_watchlist_repository(),
                            symbol_provider=symbols or FakeSymbols(),
                            workspace_provider=workspaces if workspaces is not None else build_workspace_service(repos))


def test_workspace_crud_and_duplicate_names(repos):
    svc = build_workspace_service(repos)
    ws = svc.create_workspace("u1", WorkspaceCreate(name="Research"))
    assert ws.version == 1 and ws.name == "Research"
    with pytest.raises(Conflict):
        svc.create_workspace("u1", WorkspaceCreate(name="  research "))
    other = svc.create_workspace("u2", WorkspaceCreate(name="Research"))  # names are unique per owner only
    assert other.id != ws.id
    second = svc.create_workspace("u1", WorkspaceCreate(name="Ideas"))
    with pytest.raises(Conflict):
        svc.update_workspace("u1", second.id, WorkspaceUpdate(name="RESEARCH"))
    renamed = svc.update_workspace("u1", ws.id, WorkspaceUpdate(name="Research"), expected_version=1)  # own name is fine
    assert renamed.version == 2
    with pytest.raises(PreconditionFailed):
        svc.update_workspace("u1", ws.id, WorkspaceUpdate(description="x"), expected_version=1)
    with pytest.raises(NotFound):
        svc.get_workspace("u2", ws.id)
    svc.delete_workspace("u1", ws.id, expected_version=2)
    with pytest.raises(NotFound):
        svc.get_workspace("u1", ws.id)


def test_empty_patch_changes_nothing_but_checks_version(repos):
    svc = build_workspace_service(repos)
    ws = svc.create_workspace("u1", WorkspaceCreate(name="A"))
    assert svc.update_workspace("u1", ws.id, WorkspaceUpdate()).version == 1
    with pytest.raises(PreconditionFailed):
        svc.update_workspace("u1", ws.id, WorkspaceUpdate(), expected_version=7)
    with pytest.raises(NotFound):
        svc.update_workspace("u1", "not-an-id", WorkspaceUpdate())


def test_stream_workspaces_yields_all_in_chunks(repos):
    svc = build_workspace_service(repos)
    for i in range(7):
        svc.create_workspace("u1", WorkspaceCreate(name=f"w{i}"))
    svc.create_workspace("u2", WorkspaceCreate(name="foreign"))
    chunks = list(svc.stream_workspaces("u1", chunk_size=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    names = {w["name"] for c in chunks for w in c}
    assert names == {f"w{i}" for i in range(7)}
    assert isinstance(chunks[0][0]["created_at"], str)  # JSON-safe


def test_workspace_health_healthy_and_unhealthy(repos):
    healthy, details = build_workspace_service(repos).health_check()
    assert healthy is True and details["status"] == "healthy"
    healthy, details = build_workspace_service(repos, repo=Broken()).health_check()
    assert healthy is False and details["status"] == "unhealthy"


def test_watchlist_symbols_are_validated(repos):
    svc = build_watchlist_service(repos)
    wl = svc.create_watchlist("u1", WatchlistCreate(name="Tech", symbols=["aapl", "MSFT", "AAPL"]))
    assert wl.symbols == ["AAPL", "MSFT"]
    with pytest.raises(ValidationFailed) as exc:
        svc.create_watchlist("u1", WatchlistCreate(name="Bad", symbols=["AAPL", "NOPE"]))
    assert "NOPE" in exc.value.detail
    with pytest.raises(ValidationFailed):
        svc.add_symbol("u1", wl.id, "ZZZZ")
    assert svc.add_symbol("u1", wl.id, "nvda").symbols == ["AAPL", "MSFT", "NVDA"]
    svc.remove_symbol("u1", wl.id, "msft")
    assert svc.get_watchlist("u1", wl.id).symbols == ["AAPL", "NVDA"]
    with pytest.raises(NotFound):
        svc.remove_symbol("u1", wl.id, "MSFT")
    with pytest.raises(NotFound):  # another owner's list: 404 before any symbol check
        svc.add_symbol("u2", wl.id, "ZZZZ")


def test_watchlist_rejects_foreign_workspace_and_duplicate_name(repos):
    workspaces = build_workspace_service(repos)
    mine = workspaces.create_workspace("u1", WorkspaceCreate(name="mine"))
    theirs = workspaces.create_workspace("u2", WorkspaceCreate(name="theirs"))
    svc = build_watchlist_service(repos, workspaces=workspaces)
    wl = svc.create_watchlist("u1", WatchlistCreate(name="L", workspace_id=mine.id))
    assert wl.workspace_id == mine.id
    with pytest.raises(ValidationFailed):
        svc.update_watchlist("u1", wl.id, WatchlistUpdate(workspace_id=theirs.id))
    with pytest.raises(Conflict):
        svc.create_watchlist("u1", WatchlistCreate(name="l"))


def test_watchlist_health_degraded_when_optional_symbols_down(repos):
    svc = WatchlistService(watchlist_repository=repos.get_watchlist_repository(), symbol_provider=Broken())
    healthy, details = svc.health_check()
    assert healthy is True
    assert details["status"] == "degraded" and details["optional_status"] == "degraded"
