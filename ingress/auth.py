"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time.

Every route but the health checks needs a key. There is no default key.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from ingress.errors import error_response
from ingress.ui.paths import is_ui_path

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        # digests have one length, so compare_digest's time does not depend on the key
        self.digests = tuple(_digest(k) for k in keys)

    def valid(self, key: str) -> bool:
        digest = _digest(key)
        found = False
        for known in self.digests:  # no early exit: every key is compared
            found |= hmac.compare_digest(digest, known)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the dashboard (/ui) checks its own session cookie instead (ingress/ui/web.py)
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        if key is None:
            response = error_response(
                401,
                "unauthorized",
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                {"WWW-Authenticate": "Bearer"},
            )
        elif not self.valid(key):
            response = error_response(403, "forbidden", "the API key is not valid")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
