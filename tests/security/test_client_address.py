"""The client address that keys failed sign-ins (and every per-address limit) is the one the platform
put on the request, never one the caller chose.

What the Azure front ends add (see shared/http/api.py:client_ip):
- the App Service / Functions front end appends the peer it accepted as `ip:port` to X-Forwarded-For
  (after whatever the caller sent) and overwrites CLIENT-IP;
- Azure Front Door adds X-Azure-SocketIP (its TCP peer) and X-Azure-ClientIP (taken from the caller's
  own X-Forwarded-For, so not trusted here).
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import inside_one_minute

GUARDED = "/api/v1/admin/metrics"
THREE_FAILURES = {"rate_limits": {"groups": {"read": "1000/minute", "auth_failures": "3/minute"}}}


def failed_sign_ins(client, headers_for) -> list[int]:
    return [client.get(GUARDED, headers={"X-API-Key": f"sak_guess{i}", **headers_for(i)}).status_code for i in range(5)]


def test_rotating_x_forwarded_for_does_not_avoid_the_failed_sign_in_limit(serve):
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True}, **THREE_FAILURES)
    # The caller rotates the hops it writes; the front end appends the same real peer each time.
    statuses = failed_sign_ins(client, lambda i: {"X-Forwarded-For": f"198.51.100.{i}, 10.9.{i}.1, 203.0.113.7:5{i}000"})
    assert statuses == [401, 401, 401, 429, 429]


def test_the_appended_hop_is_the_key(serve):
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True}, **THREE_FAILURES)
    # Five different peers, one spoofed leftmost hop: five different keys, none over the limit.
    statuses = failed_sign_ins(client, lambda i: {"X-Forwarded-For": f"203.0.113.7, 192.0.2.{i}:443"})
    assert statuses == [401] * 5


def test_behind_front_door_the_socket_ip_is_the_key(serve):
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True, "behind_azure_front_door": True}, **THREE_FAILURES)
    statuses = failed_sign_ins(client, lambda i: {
        "X-Azure-SocketIP": "203.0.113.50",
        "X-Azure-ClientIP": f"198.51.100.{i}",  # follows the caller's X-Forwarded-For: ignored
        "X-Forwarded-For": f"198.51.100.{i}, 147.243.0.{i}:1{i}",  # rightmost: one of Front Door's egress addresses
    })
    assert statuses == [401, 401, 401, 429, 429]


def test_behind_front_door_a_socket_ip_line_sent_by_the_caller_is_not_the_key(serve):
    """A caller may send its own X-Azure-SocketIP line; the one Front Door adds comes after it (or replaces it)."""
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True, "behind_azure_front_door": True}, **THREE_FAILURES)
    statuses = [client.get(GUARDED, headers=[("X-API-Key", f"sak_guess{i}"), ("X-Azure-SocketIP", f"198.51.100.{i}"),
                                             ("X-Azure-SocketIP", "203.0.113.50")]).status_code for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_front_door_headers_are_ignored_unless_configured(serve):
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True}, **THREE_FAILURES)
    statuses = failed_sign_ins(client, lambda i: {"X-Azure-SocketIP": f"198.51.100.{i}",
                                                  "X-Forwarded-For": "203.0.113.7:5000"})
    assert statuses == [401, 401, 401, 429, 429]


def test_without_a_front_end_forwarding_headers_are_ignored(serve):
    inside_one_minute()
    client = serve(**THREE_FAILURES)
    statuses = failed_sign_ins(client, lambda i: {"X-Forwarded-For": f"198.51.100.{i}", "X-Azure-SocketIP": f"192.0.2.{i}"})
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.parametrize("front_door,headers_for", [
    (False, lambda i: {"X-Forwarded-For": f"[2001:db8:7:9:{i:x}::{i + 1:x}]:5{i}000"}),
    (True, lambda i: {"X-Azure-SocketIP": f"2001:db8:7:9::{i + 1:x}"}),
], ids=["appended hop", "front door socket ip"])
def test_an_ipv6_caller_rotating_through_its_own_64_does_not_avoid_the_limit(serve, front_door, headers_for):
    """An IPv6 subscriber gets at least a /64 and its host may use any of those 2^64 addresses: the /64 is the key."""
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True, "behind_azure_front_door": front_door}, **THREE_FAILURES)
    assert failed_sign_ins(client, headers_for) == [401, 401, 401, 429, 429]


def test_separate_ipv6_networks_and_ipv4_mapped_callers_keep_their_own_keys(serve):
    inside_one_minute()
    client = serve(http={"behind_azure_frontend": True}, **THREE_FAILURES)
    # Five /64s of one /48 (five subscribers of a provider), then five IPv4 callers in IPv4-mapped form.
    assert failed_sign_ins(client, lambda i: {"X-Forwarded-For": f"2001:db8:7:{i:x}::1"}) == [401] * 5
    assert failed_sign_ins(client, lambda i: {"X-Forwarded-For": f"::ffff:192.0.2.{i}"}) == [401] * 5


@pytest.mark.parametrize("hops,expected", [
    ("203.0.113.9:5555", "203.0.113.9"),
    ("198.51.100.1, [2001:db8::1]:443", "2001:db8::1"),
    ("spoofed, 2001:DB8::2", "2001:db8::2"),
    ("203.0.113.9, not-an-address", "10.1.1.1"),  # nothing usable appended: the socket peer
])
def test_client_ip_forms(hops, expected):
    from starlette.requests import Request

    from shared.config.models import HttpSettings
    from shared.http.api import client_ip

    scope = {"type": "http", "headers": [(b"x-forwarded-for", hops.encode())], "client": ("10.1.1.1", 1)}
    assert client_ip(Request(scope), HttpSettings(behind_azure_frontend=True)) == expected
    assert client_ip(Request(scope), HttpSettings()) == "10.1.1.1"


def test_the_local_host_ignores_forwarding_headers_from_loopback(tmp_path):
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 by default; the local host must not, or a local caller
    rotating it would escape the failed-sign-in limit."""
    from devhost.__main__ import uvicorn_options
    from devhost.app import build_asgi_app
    from shared.runtime import build_core, set_core
    from tests.conftest import make_settings, served_on_loopback

    inside_one_minute(10)
    core = build_core(make_settings(tmp_path, **THREE_FAILURES))
    previous = set_core(core)
    options = {k: v for k, v in uvicorn_options().items() if k not in ("reload", "reload_dirs", "factory", "host", "port")}
    try:
        with served_on_loopback(build_asgi_app(), **options) as base_url, httpx.Client(base_url=base_url) as http:
            statuses = failed_sign_ins(http, lambda i: {"X-Forwarded-For": f"198.51.100.{i}", "X-Forwarded-Proto": "https"})
        assert statuses == [401, 401, 401, 429, 429]
    finally:
        set_core(previous)
        core.close()
