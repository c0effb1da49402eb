"""Dashboard sessions: a signed cookie that is never the API key itself, and CSRF tokens tied to it.

The token is ``<payload>.<signature>``; the payload names the key by a fingerprint (so removing a key
from API_KEYS ends its sessions), an expiry and a random session id. The signing key is derived from the
API key with HMAC, so every web process (and a restart) accepts the same cookie without a shared
store, and nobody holding the cookie can recover the API key. Logout revokes the session id in Redis
until the token would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import msgspec

COOKIE = "sy_session"
LOGIN_CSRF_COOKIE = "sy_login_csrf"
LIFETIME_S = 12 * 3600
_SIGNING_CONTEXT = b"switchyard-ui-session-v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(key: str) -> str:
    return hashlib.sha256(b"fp:" + key.encode()).hexdigest()[:16]


class _Payload(msgspec.Struct):
    k: str  # key fingerprint
    e: int  # expiry, unix seconds
    s: str  # session id


@dataclass(frozen=True)
class Session:
    id: str
    expires: int
    signing_key: bytes

    def csrf(self) -> str:
        """The CSRF token of every form of this session: useless to anyone who cannot read the page."""
        return _b64(hmac.new(self.signing_key, b"csrf:" + self.id.encode(), hashlib.sha256).digest())

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf(), presented or "")


class Signer:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self._by_fingerprint = {
            fingerprint(k): hmac.new(k.encode(), _SIGNING_CONTEXT, hashlib.sha256).digest() for k in keys
        }
        self._digests = tuple(hashlib.sha256(k.encode()).digest() for k in keys)

    def valid_key(self, key: str) -> str | None:
        """The key itself when it is one of API_KEYS (constant time over every key), else None."""
        digest = hashlib.sha256(key.encode()).digest()
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(digest, known)
        return key if found else None

    def issue(self, key: str, now: float | None = None) -> tuple[str, Session]:
        fp = fingerprint(key)
        signing_key = self._by_fingerprint[fp]
        payload = _Payload(k=fp, e=int(now or time.time()) + LIFETIME_S, s=secrets.token_urlsafe(18))
        body = _b64(msgspec.json.encode(payload))
        sig = _b64(hmac.new(signing_key, body.encode(), hashlib.sha256).digest())
        return f"{body}.{sig}", Session(payload.s, payload.e, signing_key)

    def read(self, token: str | None, now: float | None = None) -> Session | None:
        if not token or len(token) > 512 or token.count(".") != 1:
            return None
        body, sig = token.split(".")
        try:
            payload = msgspec.json.decode(_unb64(body), type=_Payload)
            presented = _unb64(sig)
        except (ValueError, msgspec.DecodeError):
            return None
        signing_key = self._by_fingerprint.get(payload.k)
        if signing_key is None:
            return None
        expected = hmac.new(signing_key, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, presented) or payload.e <= (now or time.time()):
            return None
        return Session(payload.s, payload.e, signing_key)


def revoked_key(session_id: str) -> str:
    return f"switchyard:ui:revoked:{session_id}"
