"""Entry point the Functions worker imports: one FunctionApp, one Blueprint per domain.

Importing this module registers functions only: no client is created and no heavy SDK
is imported (see shared/runtime.py: the core is built on the first request).
"""

import azure.functions as func

from functions import (
    admin,
    chat,
    docs,
    fallback,
    health,
    ideas,
    jobs,
    market,
    mcp,
    models,
    notes,
    portfolios,
    symbols,
    timers,
    users,
    watchlists,
    workspaces,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# The catch-all (fallback) goes last: on the local host, order is precedence among equals.
for module in (health, docs, users, workspaces, watchlists, portfolios, notes, ideas, symbols, market, chat, models, mcp,
               admin, timers, jobs, fallback):
    app.register_functions(module.bp)
