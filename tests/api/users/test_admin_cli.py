"""`python -m shared.admin`: the first admin on a fresh database, then the API with its key; the other
commands, their output and exit codes; the production guard."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.admin.cli import main
from tests.conftest import ROOT, make_settings
from tests.integration.faults.fault_support import serve

CLEAN_ENV = {"MONGODB_URI": "", "REDIS_URL": "", "REDIS_HOST": "", "USE_AZURE_KEYVAULT": "false",
             "LOCAL_DEV_API_KEY": "", "CONFIG_ENV_OVERRIDE_MODE": "all"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("admin-cli")


@pytest.fixture
def fresh(store, monkeypatch) -> Path:
    """An embedded store for main() calls in this process, shared by this module's tests (each uses its
    own emails); APP_ENV=test: migrations run at start, no demo admin."""
    for name, value in {**CLEAN_ENV, "APP_ENV": "test", "LOCAL_DATA_DIR": str(store / "data")}.items():
        monkeypatch.setenv(name, value)
    return store


def run(*argv: str, stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(list(argv), stdin=stdin or io.StringIO(), stdout=out, stderr=err)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_first_admin_from_the_cli_creates_users_through_the_api(tmp_path):
    env = {**os.environ, **CLEAN_ENV, "APP_ENV": "test", "LOCAL_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "shared.admin", "create-user", "--email", "ops@example.com", "--name", "Ops", "--admin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("sak_") and "shown only this once" in done.stdout

    settings = make_settings(tmp_path, auth={"local_dev_api_key": None})
    with serve(settings, seed=False) as client:
        ops = {"X-API-Key": key}
        me = client.get("/api/v1/users/me", headers=ops).json()
        assert me["email"] == "ops@example.com" and me["roles"] == ["admin", "user"]
        created = client.post("/api/v1/users", json={"email": "second@example.com", "name": "Second"}, headers=ops)
        assert created.status_code == 201, created.text
        second = {"X-API-Key": created.json()["api_key"]["secret"]}
        assert client.get("/api/v1/users/me", headers=second).json()["roles"] == ["user"]
        assert client.get("/api/v1/users", headers=second).status_code == 403


def test_commands_and_json_output(fresh):
    code, out, _ = run("create-user", "--email", "Ann@Example.com", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["user"]["email"] == "ann@example.com" and created["user"]["roles"] == ["user"]
    first_prefix = created["api_key"]["prefix"]

    code, out, _ = run("--json", "create-key", "--email", "ann@example.com", "--key-name", "laptop")
    assert code == 0 and json.loads(out)["name"] == "laptop" and json.loads(out)["secret"].startswith("sak_")

    code, out, _ = run("set-role", "--email", "ann@example.com", "--role", "admin", "--json")
    assert code == 0 and json.loads(out)["roles"] == ["admin", "user"]
    code, out, _ = run("disable-user", "--email", "ann@example.com")
    assert code == 0 and "DISABLED" in out
    code, out, _ = run("list-users", "--json")
    assert code == 0 and [u["disabled"] for u in json.loads(out) if u["email"] == "ann@example.com"] == [True]
    code, out, _ = run("enable-user", "--email", "ann@example.com")
    assert code == 0 and "DISABLED" not in out

    code, out, _ = run("revoke-key", "--email", "ann@example.com", "--prefix", first_prefix)
    assert code == 0 and first_prefix in out
    code, _, err = run("revoke-key", "--email", "ann@example.com", "--prefix", first_prefix)
    assert code == 1 and err.startswith("error: No active API key")


def test_revoked_disabled_and_demoted_take_effect_in_the_api(fresh):
    _, out, _ = run("create-user", "--email", "eve@example.com", "--admin", "--json")
    key = json.loads(out)["api_key"]
    settings = make_settings(fresh, auth={"local_dev_api_key": None})
    with serve(settings, seed=False) as client:
        headers = {"X-API-Key": key["secret"]}
        assert client.get("/api/v1/users", headers=headers).status_code == 200
        # The CLI runs its own core, as a second process would: this server learns of changes from
        # the database once its cached sign-in expires (no Redis here); drop it as 30 s would.
        client.core.services.auth._drop_all()
        assert run("set-role", "--email", "eve@example.com", "--role", "user")[0] == 0
        client.core.services.auth._drop_all()
        assert client.get("/api/v1/users", headers=headers).status_code == 403
        assert run("disable-user", "--email", "eve@example.com")[0] == 0
        client.core.services.auth._drop_all()
        assert client.get("/api/v1/users/me", headers=headers).status_code == 401


@pytest.mark.parametrize("argv", [
    [], ["create-user"], ["create-user", "--email", "not-an-email"], ["set-role", "--email", "a@b.example", "--role", "root"],
    ["create-key", "--email", "a@b.example", "--key-name", ""], ["frobnicate"],
])
def test_usage_errors_exit_2(fresh, argv):
    code, _, _ = run(*argv)
    assert code == 2


@pytest.mark.parametrize("argv", [["create-key", "--email", "nobody@example.com"],
                                  ["set-role", "--email", "nobody@example.com", "--role", "admin"]])
def test_errors_exit_1_with_one_line(fresh, argv):
    code, out, err = run(*argv)
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("error: No user with email")


def test_duplicate_user_is_an_error(fresh):
    assert run("create-user", "--email", "dup@example.com")[0] == 0
    code, _, err = run("create-user", "--email", "DUP@example.com")
    assert code == 1 and "already exists" in err


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def production(tmp_path, monkeypatch):
    """APP_ENV=production against a database port nothing listens on (nothing can be changed)."""
    from tests.integration.faults.fault_support import closed_port

    env = {**CLEAN_ENV, "APP_ENV": "production", "MARKET_PROVIDERS": "offline", "MODEL_PROVIDER": "offline",
           "MONGODB_URI": f"mongodb://127.0.0.1:{closed_port()}/"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_production_needs_yes_or_a_typed_confirmation(production):
    code, _, err = run("list-users")
    assert code == 1 and "add --yes" in err
    code, _, err = run("create-user", "--email", "p@example.com", stdin=Tty("no\n"))
    assert code == 1 and "Type yes" in err and "not confirmed" in err
    # Confirmed (typed or --yes): it goes on to the database, which is not there.
    code, _, err = run("list-users", stdin=Tty("yes\n"))
    assert code == 1 and "database is not reachable" in err
    code, _, err = run("list-users", "--yes")
    assert code == 1 and "database is not reachable" in err


@pytest.mark.parametrize(("uri", "asks"), [("mongodb://db.example.net:27017/", True),
                                           ("mongodb://u:p@127.0.0.1:1,[::1]:2/?replicaSet=r", False)])
def test_local_env_with_a_remote_database_asks_too(fresh, monkeypatch, uri, asks):
    """APP_ENV=local seeds the demo admin key at start: pointing it at a remote database by mistake is refused."""
    monkeypatch.setenv("MONGODB_URI", uri)
    code, _, err = run("list-users", stdin=Tty("no\n"))
    assert code == 1
    assert ("not confirmed" in err) is asks and ("remote database" in err) is asks
