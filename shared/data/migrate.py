"""`python -m shared.data.migrate [--dry-run]`: apply (or preview) migrations against the configured store."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.data.migrate", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="show pending steps without changing anything")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another run's lock")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from shared.config import load_settings
    from shared.data.client import build_database
    from shared.data.migrations import MigrationError, MigrationLocked, run_migrations

    settings = load_settings()
    handle = build_database(settings)
    try:
        print(f"backend: {handle.description}", file=sys.stderr)
        try:
            summary = run_migrations(handle.db, settings, dry_run=args.dry_run, wait_s=args.wait)
        except MigrationLocked as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 2
        except MigrationError as exc:
            print(json.dumps(exc.summary, indent=2, default=str))
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(summary, indent=2, default=str))
        return 0
    finally:
        handle.close()


if __name__ == "__main__":
    sys.exit(main())
