"""A local stand-in for a Microsoft Entra ID tenant: RSA signing keys, their JWKS served over
HTTP on loopback (so the app's real key-fetching code runs), and access tokens signed with them.

Token shape: the claims of a v2.0 Entra ID access token as documented by Microsoft
("Access token claims reference": aud, iss, iat, nbf, exp, oid, sub, tid, preferred_username,
name, roles, ver); the JWKS shape is that of https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
(kty, use, kid, n, e). Use the `entra` fixture (import it into a test module or conftest).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

TENANT = "00000000-0000-4000-8000-0000000000aa"
AUDIENCE = "api://stockagent-test"


class EntraTenant:
    """Signing keys + a loopback JWKS endpoint + a token factory. `fetches` counts JWKS requests."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []  # kids served by the JWKS endpoint
        self.fetches = 0
        self.add_key("test-kid-1")
        tenant = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                tenant.fetches += 1
                body = json.dumps(tenant.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{TENANT}/discovery/v2.0/keys"

    @property
    def issuer(self) -> str:
        return f"https://login.microsoftonline.com/{TENANT}/v2.0"

    def auth_settings(self, **extra: Any) -> dict[str, Any]:
        """The `auth` section that makes the app accept this tenant's tokens."""
        return {"entra_tenant_id": TENANT, "entra_audience": AUDIENCE, "entra_jwks_url": self.jwks_url, **extra}

    def add_key(self, kid: str, *, publish: bool = True) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        return {"keys": [{**json.loads(RSAAlgorithm.to_jwk(self.keys[kid].public_key())), "kid": kid, "use": "sig"}
                         for kid in self.published]}

    def token(self, *, kid: str = "test-kid-1", omit: tuple[str, ...] = (), headers: dict[str, Any] | None = None,
              **claims: Any) -> str:
        """A signed access token; `claims` override the defaults, `omit` removes claims."""
        import jwt

        now = int(time.time())
        oid = claims.pop("oid", str(uuid.uuid4()))
        body = {"aud": AUDIENCE, "iss": self.issuer, "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0",
                "tid": TENANT, "oid": oid, "sub": f"sub-{oid}", "preferred_username": f"{oid[:8]}@contoso.example",
                "name": "Entra User", **claims}
        for name in omit:
            body.pop(name, None)
        return jwt.encode(body, self.keys.get(kid) or self.keys["test-kid-1"], algorithm="RS256",
                          headers={"kid": kid, **(headers or {})})

    @staticmethod
    def with_header(token: str, header: dict[str, Any]) -> str:
        """`token` with its header replaced verbatim (for headers PyJWT refuses to write, e.g. a numeric kid)."""
        import base64

        raw = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        return ".".join([raw, *token.split(".")[1:]])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def entra() -> Iterator[EntraTenant]:
    tenant = EntraTenant()
    try:
        yield tenant
    finally:
        tenant.close()
