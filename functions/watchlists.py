"""watchlists routes."""

import azure.functions as func

bp = func.Blueprint()
