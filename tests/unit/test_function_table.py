"""The full table of registered functions: unique names, HTTP routes and methods, timer schedules.

A change here is a change to the public surface: update the table deliberately.
"""

import azure.functions as func

from devhost.app import registered_functions
from function_app import app

HTTP = {
    'health': ('health', ('GET',)),
    'openapi_document': ('v1/openapi.json', ('GET',)),
    'docs_page': ('v1/docs', ('GET',)),
    'docs_asset': ('v1/docs/assets/{asset}', ('GET',)),
    'get_me': ('v1/users/me', ('GET',)),
    'get_my_profile': ('v1/users/me/profile', ('GET',)),
    'update_my_profile': ('v1/users/me/profile', ('PATCH',)),
    'get_my_preferences': ('v1/users/me/preferences', ('GET',)),
    'replace_my_preferences': ('v1/users/me/preferences', ('PUT',)),
    'get_my_dashboard': ('v1/users/me/dashboard', ('GET',)),
    'create_my_api_key': ('v1/users/me/api-keys', ('POST',)),
    'list_my_api_keys': ('v1/users/me/api-keys', ('GET',)),
    'get_my_api_key': ('v1/users/me/api-keys/{key_id}', ('GET',)),
    'revoke_my_api_key': ('v1/users/me/api-keys/{key_id}', ('DELETE',)),
    'create_user': ('v1/users', ('POST',)),
    'list_users': ('v1/users', ('GET',)),
    'get_user': ('v1/users/{user_id}', ('GET',)),
    'list_workspaces': ('v1/workspaces', ('GET',)),
    'create_workspace': ('v1/workspaces', ('POST',)),
    'get_workspace': ('v1/workspaces/{workspace_id}', ('GET',)),
    'update_workspace': ('v1/workspaces/{workspace_id}', ('PATCH',)),
    'delete_workspace': ('v1/workspaces/{workspace_id}', ('DELETE',)),
    'list_watchlists': ('v1/watchlists', ('GET',)),
    'create_watchlist': ('v1/watchlists', ('POST',)),
    'get_watchlist': ('v1/watchlists/{watchlist_id}', ('GET',)),
    'update_watchlist': ('v1/watchlists/{watchlist_id}', ('PATCH',)),
    'delete_watchlist': ('v1/watchlists/{watchlist_id}', ('DELETE',)),
    'add_watchlist_symbol': ('v1/watchlists/{watchlist_id}/symbols', ('POST',)),
    'remove_watchlist_symbol': ('v1/watchlists/{watchlist_id}/symbols/{symbol}', ('DELETE',)),
    'list_portfolios': ('v1/portfolios', ('GET',)),
    'create_portfolio': ('v1/portfolios', ('POST',)),
    'get_portfolio': ('v1/portfolios/{portfolio_id}', ('GET',)),
    'update_portfolio': ('v1/portfolios/{portfolio_id}', ('PATCH',)),
    'delete_portfolio': ('v1/portfolios/{portfolio_id}', ('DELETE',)),
    'get_portfolio_valuation': ('v1/portfolios/{portfolio_id}/valuation', ('GET',)),
    'list_positions': ('v1/portfolios/{portfolio_id}/positions', ('GET',)),
    'create_position': ('v1/portfolios/{portfolio_id}/positions', ('POST',)),
    'get_position': ('v1/portfolios/{portfolio_id}/positions/{position_id}', ('GET',)),
    'update_position': ('v1/portfolios/{portfolio_id}/positions/{position_id}', ('PATCH',)),
    'delete_position': ('v1/portfolios/{portfolio_id}/positions/{position_id}', ('DELETE',)),
    'list_notes': ('v1/notes', ('GET',)),
    'create_note': ('v1/notes', ('POST',)),
    'get_note': ('v1/notes/{note_id}', ('GET',)),
    'update_note': ('v1/notes/{note_id}', ('PATCH',)),
    'delete_note': ('v1/notes/{note_id}', ('DELETE',)),
    'list_ideas': ('v1/ideas', ('GET',)),
    'create_idea': ('v1/ideas', ('POST',)),
    'get_idea': ('v1/ideas/{idea_id}', ('GET',)),
    'update_idea': ('v1/ideas/{idea_id}', ('PATCH',)),
    'delete_idea': ('v1/ideas/{idea_id}', ('DELETE',)),
    'symbols_search': ('v1/symbols', ('GET',)),
    'symbols_get': ('v1/symbols/{symbol}', ('GET',)),
    'get_quotes': ('v1/market/quotes', ('GET',)),
    'get_quote': ('v1/market/{symbol}/quote', ('GET',)),
    'get_history': ('v1/market/{symbol}/history', ('GET',)),
    'get_fundamentals': ('v1/market/{symbol}/fundamentals', ('GET',)),
    'get_news': ('v1/market/{symbol}/news', ('GET',)),
    'get_indicators': ('v1/market/{symbol}/indicators', ('GET',)),
    'chat': ('v1/chat', ('POST',)),
    'chat_stream': ('v1/chat/stream', ('POST',)),
    'list_chats': ('v1/chats', ('GET',)),
    'get_chat': ('v1/chats/{chat_id}', ('GET',)),
    'delete_chat': ('v1/chats/{chat_id}', ('DELETE',)),
    'list_chat_messages': ('v1/chats/{chat_id}/messages', ('GET',)),
    'list_models': ('v1/models', ('GET',)),
    'mcp': ('mcp', ('POST',)),
    'oauth_protected_resource': ('.well-known/oauth-protected-resource', ('GET',)),
    'admin_metrics': ('v1/admin/metrics', ('GET',)),
    'admin_run_migrations': ('v1/admin/migrations', ('POST',)),
    'list_poison_messages': ('v1/admin/queues/poison', ('GET',)),
    'fallback': ('{*path}', ('DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT')),
}
TIMERS = {
    "market_refresh": "%MARKET_REFRESH_SCHEDULE%",
    "run_migrations": "%MIGRATION_SCHEDULE%",
}
# Queue-triggered functions: each queue has its function and one on its poison queue.
QUEUES = {
    "market_refresh_batch": "market-refresh",
    "market_refresh_poison": "market-refresh-poison",
}


def _table():
    http, timers, names = {}, {}, []
    for fn in registered_functions(app):
        trigger = fn.get_trigger()
        names.append(fn.get_function_name())
        if trigger.type == "httpTrigger":
            http[fn.get_function_name()] = (trigger.route, tuple(sorted(getattr(m, "value", m) for m in trigger.methods)))
            assert trigger.auth_level.value == "anonymous"  # authentication is the pipeline's job
        elif trigger.type == "timerTrigger":
            timers[fn.get_function_name()] = trigger.schedule
            assert not trigger.run_on_startup
        else:
            assert trigger.type == "queueTrigger", f"unexpected trigger {trigger.type} on {fn.get_function_name()}"
    return http, timers, names


def _queue_table():
    queues = {}
    for fn in registered_functions(app):
        trigger = fn.get_trigger()
        if trigger.type == "queueTrigger":
            queues[fn.get_function_name()] = trigger.queue_name
            assert trigger.connection == "AzureWebJobsStorage"  # the host's storage, where the producer sends
            # The worker binds the trigger by this annotation: it must be the class, not a postponed string.
            assert fn.get_user_function().__annotations__[trigger.name] is func.QueueMessage
    return queues


def test_function_names_are_unique():
    _, _, names = _table()
    assert len(names) == len(set(names))


def test_http_routes_and_methods():
    http, _, _ = _table()
    assert http == HTTP


def test_timer_schedules_come_from_settings():
    _, timers, _ = _table()
    assert timers == TIMERS


def test_queue_functions_and_their_poison_queues():
    queues = _queue_table()
    assert queues == QUEUES
    for queue in queues.values():
        assert queue.endswith("-poison") or f"{queue}-poison" in queues.values(), f"nothing records {queue}'s poison"


def test_no_two_functions_serve_the_same_route_and_method():
    seen = set()
    for route, methods in HTTP.values():
        for method in methods:
            assert (route, method) not in seen
            seen.add((route, method))


def test_every_http_function_uses_the_streams_types():
    from azurefunctions.extensions.http.fastapi import Request, Response

    for fn in registered_functions(app):
        if fn.get_trigger().type == "httpTrigger":
            annotations = fn.get_user_function().__annotations__
            assert annotations["req"] is Request and annotations["return"] is Response
