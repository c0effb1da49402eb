"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time.

Every route but the health checks needs a key. There is no default key. Wrong keys are counted per
client address (ingress/throttle.py): past API_KEY_FAILURE_LIMIT a window, a wrong key is answered 429.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ingress.errors import error_response
from ingress.throttle import FailureThrottle
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
    def __init__(self, app: ASGIApp, keys: tuple[str, ...], throttle: FailureThrottle) -> None:
        self.app = app
        self.throttle = throttle
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
            response = await self.refuse(scope)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    async def refuse(self, scope: Scope) -> Response:
        """403 for a wrong key; 429 once its address has sent too many of them."""
        client = scope.get("client")
        redis = scope["app"].state.switchyard.redis
        wait_s = await self.throttle.failed(redis, client[0] if client else "")
        if wait_s:
            detail = {
                "message": f"too many wrong API keys from this address; try again in {wait_s} s",
                "retry_after_s": wait_s,
            }
            return error_response(429, "too_many_failures", detail, {"Retry-After": str(wait_s)})
        return error_response(403, "forbidden", "the API key is not valid")
