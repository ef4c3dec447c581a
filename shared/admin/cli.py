"""The admin commands, their arguments and their output (text, or JSON with `--json`).

Exit codes: 0 done, 1 refused or failed (one line on stderr), 2 usage error (argparse's).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, TextIO

from pydantic import BaseModel, ValidationError

from shared import errors

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.runtime import Core

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
# Commands that write: they need the database's schema migrations applied first.
WRITES = {"create-user", "create-key", "revoke-key", "set-role", "disable-user", "enable-user"}


class Refused(Exception):
    """The command must not run (production without confirmation, pending migrations)."""


def _flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On the subcommands too, so that `list-users --json` works; SUPPRESS keeps a flag given
    # before the subcommand from being reset by the subcommand's default.
    default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument("--json", action="store_true", default=default, help="print JSON instead of text")
    parser.add_argument("--yes", "-y", action="store_true", default=default,
                        help="do not ask for confirmation when APP_ENV=production")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.admin",
        description="Manage users, roles and API keys in the database the environment configures "
                    "(MONGODB_URI / Key Vault; the embedded store under LOCAL_DATA_DIR without a URI).",
    )
    _flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _flags(p, suppress=True)
        return p

    p = command("create-user", "create a user and print its first API key (shown once)")
    p.add_argument("--email", required=True)
    p.add_argument("--name")
    p.add_argument("--admin", action="store_true", help="give the user the admin role")
    p.add_argument("--key-name", default="default", help="name of the first API key (default: default)")
    p = command("create-key", "create another API key for a user and print it (shown once)")
    p.add_argument("--email", required=True)
    p.add_argument("--key-name", default="admin-cli", help="name of the key (default: admin-cli)")
    p = command("revoke-key", "revoke a user's API key, named by the start of its prefix (see the key list)")
    p.add_argument("--email", required=True)
    p.add_argument("--prefix", required=True, help="e.g. sak_AbCdEfGh (the prefix shown when the key was created)")
    command("list-users", "list every user")
    p = command("set-role", "make a user an admin or a plain user")
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=["admin", "user"])
    p = command("disable-user", "refuse every credential of a user (their data stays)")
    p.add_argument("--email", required=True)
    p = command("enable-user", "accept a disabled user's credentials again")
    p.add_argument("--email", required=True)
    return parser


# ------------------------------------------------------------------ commands: (args, core) -> (json value, text)


def _user_line(user: Any) -> str:
    state = " DISABLED" if user.disabled else ""
    return f"{user.email}  roles={','.join(user.roles)}{state}  id={user.id}  name={user.name or ''}"


def _key_text(key: Any) -> str:
    return (f"API key {key.name!r} (prefix {key.prefix}); it is shown only this once, store it now:\n"
            f"{key.secret}")


def create_user(args: argparse.Namespace, core: "Core") -> tuple[Any, str]:
    from shared.schemas.users import UserCreate

    data = UserCreate(email=args.email, name=args.name, roles=["admin"] if args.admin else ["user"],
                      api_key_name=args.key_name)
    created = core.services.users.create_user(data)
    return created, f"created {_user_line(created.user)}\n{_key_text(created.api_key)}"


def create_key(args: argparse.Namespace, core: "Core") -> tuple[Any, str]:
    from shared.schemas.users import ApiKeyCreate

    users = core.services.users
    name = ApiKeyCreate(name=args.key_name).name
    key = users.create_api_key(users.get_user_by_email(args.email).id, name)
    return key, _key_text(key)


def revoke_key(args: argparse.Namespace, core: "Core") -> tuple[Any, str]:
    users = core.services.users
    key = users.revoke_api_key_by_prefix(users.get_user_by_email(args.email).id, args.prefix)
    return key, f"revoked API key {key.name!r} (prefix {key.prefix}) of {args.email}"


def list_users(args: argparse.Namespace, core: "Core") -> tuple[Any, str]:
    found: list[Any] = []
    cursor: str | None = None
    while True:
        page = core.services.users.list_users(limit=100, cursor=cursor)
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return found, "\n".join(_user_line(u) for u in found) or "no users"


def set_role(args: argparse.Namespace, core: "Core") -> tuple[Any, str]:
    users = core.services.users
    user = users.set_role(users.get_user_by_email(args.email).id, args.role)
    return user, f"updated {_user_line(user)}"


def _set_disabled(disabled: bool) -> Callable[[argparse.Namespace, "Core"], tuple[Any, str]]:
    def run(args: argparse.Namespace, core: "Core") -> tuple[Any, str]:
        users = core.services.users
        user = users.set_disabled(users.get_user_by_email(args.email).id, disabled)
        return user, f"updated {_user_line(user)}"

    return run


COMMANDS: dict[str, Callable[[argparse.Namespace, "Core"], tuple[Any, str]]] = {
    "create-user": create_user,
    "create-key": create_key,
    "revoke-key": revoke_key,
    "list-users": list_users,
    "set-role": set_role,
    "disable-user": _set_disabled(True),
    "enable-user": _set_disabled(False),
}


# ------------------------------------------------------------------ running


def _remote_database(settings: "Settings") -> bool:
    """True when MONGODB_URI names a host other than this machine."""
    from urllib.parse import urlsplit

    uri = settings.mongodb.uri.get_secret_value().strip() if settings.mongodb.uri else ""
    if not uri:
        return False  # the embedded store
    hosts = urlsplit(uri).netloc.rpartition("@")[2].split(",")
    return any(h.rsplit(":", 1)[0].strip("[]") not in ("localhost", "127.0.0.1", "::1") for h in hosts)


def _confirm(settings: "Settings", args: argparse.Namespace, stdin: TextIO, stderr: TextIO) -> None:
    """Against production, or a remote database with APP_ENV=local (whose start-up seeds the demo admin
    key into it), go on only with --yes or a typed "yes" on an interactive terminal."""
    env = settings.app.env
    if args.yes or not (env == "production" or (settings.is_local and _remote_database(settings))):
        return
    from shared.data.client import describe_backend

    where = f"APP_ENV={env}, database {describe_backend(settings)}"
    if env != "production":
        where += " (a remote database: is APP_ENV right? local start-up seeds the demo admin key into it)"
    if not stdin.isatty():
        raise Refused(f"{where}: add --yes to run {args.command} without a terminal")
    stderr.write(f"{where}.\nRun {args.command}? Type yes to continue: ")
    stderr.flush()
    if stdin.readline().strip().lower() != "yes":
        raise Refused("not confirmed; nothing changed")


def _check_migrations(core: "Core") -> None:
    pending = core.services.migrations.run(dry_run=True).get("pending") or []
    if pending:
        raise Refused(f"{len(pending)} schema migration(s) pending on this database ({', '.join(pending)}): "
                      "run `python -m shared.data.migrate` first")


def _to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def main(argv: list[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run one command; returns the exit code (argparse exits 2 itself on usage errors)."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)

    from shared.config import load_settings
    from shared.runtime import build_core

    core = None
    try:
        settings = load_settings()
        _confirm(settings, args, stdin, stderr)
        core = build_core(settings)
        if args.command in WRITES and not settings.is_local:
            _check_migrations(core)
        result, text = COMMANDS[args.command](args, core)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "value"
        why = f"{first.get('input')!r} has not the expected form" if "pattern" in first["type"] else first["msg"]
        parser.error(f"invalid {field}: {why}")  # exits 2
    except errors.ApiError as exc:
        stderr.write(f"error: {exc.detail}\n")
        return EXIT_ERROR
    except (errors.ConfigError, Refused) as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except Exception as exc:  # one line, never a traceback (it may hold connection details)
        from shared.logging import redact

        stderr.write(f"error: {type(exc).__name__}: {redact(str(exc)).splitlines()[0] if str(exc) else ''}\n")
        return EXIT_ERROR
    finally:
        if core is not None:
            core.close()
    stdout.write((json.dumps(_to_json(result), indent=2) if args.json else text) + "\n")
    return EXIT_OK
