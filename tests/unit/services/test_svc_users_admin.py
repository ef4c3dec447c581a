"""UserService operations of the admin command line: roles, disabling, revoking a key by its prefix,
and `get_me` showing the roles the request holds."""

import pytest

from shared.errors import Conflict, NotFound
from shared.schemas.users import UserCreate
from shared.services.users import UserService
from svc_fakes import FakeKeyIssuer


def build(repos, keys: FakeKeyIssuer) -> UserService:
    return UserService(user_repository=repos.get_user_repository(),
                       profile_repository=repos.get_user_profile_repository(),
                       preferences_repository=repos.get_user_preferences_repository(), api_keys=keys)


def test_role_and_disabled_changes_are_stored_and_forget_cached_sign_ins(repos):
    keys = FakeKeyIssuer()
    svc = build(repos, keys)
    user = svc.create_user(UserCreate(email="role@example.com")).user
    assert svc.set_role(user.id, "admin").roles == ["admin", "user"]
    assert svc.set_role(user.id, "user").roles == ["user"]
    assert svc.set_disabled(user.id, True).disabled is True
    assert svc.set_disabled(user.id, False).disabled is False
    assert keys.forgotten == [user.id] * 4
    assert svc.get_user_by_email("ROLE@example.com").id == user.id
    with pytest.raises(NotFound):
        svc.get_user_by_email("nobody@example.com")


def test_get_me_shows_the_roles_of_the_request_not_only_the_stored_ones(repos):
    svc = build(repos, FakeKeyIssuer())
    user = svc.create_user(UserCreate(email="me-roles@example.com")).user
    assert svc.get_me(user.id, frozenset({"user", "admin"})).roles == ["admin", "user"]
    assert svc.get_user(user.id).roles == ["user"]


def test_revoke_by_prefix_needs_exactly_one_match(repos):
    keys = FakeKeyIssuer()
    svc = build(repos, keys)
    user = svc.create_user(UserCreate(email="prefix@example.com")).user
    only = next(iter(keys.keys.values()))
    assert svc.revoke_api_key_by_prefix(user.id, "sak_te").id == only["id"]
    with pytest.raises(NotFound):
        svc.revoke_api_key_by_prefix(user.id, "sak_te")  # revoked keys are not listed
    svc.create_api_key(user.id, "a")
    svc.create_api_key(user.id, "b")  # the fake gives every key the prefix sak_test
    with pytest.raises(Conflict):
        svc.revoke_api_key_by_prefix(user.id, "sak_test")
    with pytest.raises(NotFound):
        svc.revoke_api_key_by_prefix(user.id, "")
