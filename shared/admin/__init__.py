"""Admin command line: `python -m shared.admin <command>` (users, roles and API keys).

It builds the app's own core (`shared.runtime.build_core`) from the environment's configuration,
so it runs the same services and repositories against the same database: `MONGODB_URI` and Key
Vault as deployed, the embedded store under `LOCAL_DATA_DIR` when no URI is set.
"""
