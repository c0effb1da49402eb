"""``system.http``: one HTTP call to another service, through the outbound client (bus/outbound.py).

So a schedule or a rule can trigger another service. The call never reaches our own network
(loopback, private, link-local, ...) unless ``OUTBOUND_ALLOW`` lists it, and follows no redirect:
a 3xx is the answer (a success only when ``expect_status`` lists it).

- a status in ``expect_status`` (default: any 2xx) succeeds;
- a 408, 425, 429 or 5xx outside it is retried with the pool's backoff, and so is a connection
  error or a timeout; any other status outside it (4xx, 3xx) ends the job dead at once;
- the result: status, elapsed_ms, a few response headers that carry no secrets (an allowlist:
  content type and length, ETag, Last-Modified, Retry-After, request ids; never Set-Cookie, Location
  or an authorization header), and a bounded body: the JSON value when it parses and is
  small, else its text cut at ``MAX_TEXT`` characters, with ``body_truncated``.

Every call carries ``Idempotency-Key: <job id>``: delivery is at least once, and a service that
honours the header drops a repeated call.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from bus import outbound
from bus.errors import PermanentError, permanent_status
from contracts import storable
from contracts.system import Http

#: the most of a response read (the rest is not waited for)
MAX_READ = 64 * 1024
#: a JSON body larger than this (encoded) is recorded as cut text instead
MAX_JSON = 4096
MAX_TEXT = 4096
#: response headers recorded: none of them carries a credential or a signed address
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "retry-after",
    "x-request-id",
    "request-id",
)
#: how much of an unexpected answer's body its error quotes
ERROR_BODY_CHARS = 200
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class CallFailed(Exception):
    """A failure worth retrying: a 408, 425, 429 or 5xx outside expect_status, a timeout, no connection."""


def _text(raw: bytes) -> str:
    # jsonb keeps no NUL character: a binary answer is recorded with it escaped
    return raw.decode("utf-8", errors="replace").replace("\x00", "\\x00")


def recorded_body(answer: outbound.Answer) -> tuple[Any, bool]:
    """(body, truncated): the JSON value when it parses and is small, else text cut at MAX_TEXT."""
    raw = answer.body
    if not raw:
        return None, answer.truncated
    if not answer.truncated and len(raw) <= MAX_JSON:
        try:
            value = msgspec.json.decode(raw)  # strict JSON: NaN and Infinity are text
        except msgspec.DecodeError:
            pass
        else:
            if storable.problem(value) is None:  # a NUL, 1e999: what jsonb cannot keep stays text
                return value, False
    text = _text(raw)
    if len(text) > MAX_TEXT:
        return text[:MAX_TEXT], True
    return text, answer.truncated


def expected(status: int, expect: list[int] | None) -> bool:
    return status in expect if expect else 200 <= status < 300


def call(command: Http, *, job_id: str) -> dict[str, Any]:
    """Make the call; its record (the job's result). Raises CallFailed (retry) or PermanentError."""
    body = command.body if command.method in WITH_BODY else None
    headers = {"Idempotency-Key": job_id} if job_id else {}
    started = time.perf_counter()
    try:
        answer = outbound.request(
            command.method,
            command.url,
            json=body,
            headers=headers,
            timeout=command.timeout_s,
            max_body=MAX_READ,
        )
    except outbound.Refused as err:
        raise PermanentError(f"url: refused: {err}; not retried") from None
    except outbound.Unreachable as err:
        raise CallFailed(f"{err} (within timeout_s={command.timeout_s:g})") from None
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    kept, truncated = recorded_body(answer)
    if not expected(answer.status, command.expect_status):
        want = ", ".join(map(str, command.expect_status)) if command.expect_status else "2xx"
        quoted = _text(answer.body[:ERROR_BODY_CHARS]).strip()
        what = f"answered {answer.status}, expected {want}" + (f": {quoted}" if quoted else "")
        if 300 <= answer.status < 400:
            raise PermanentError(f"{what} (redirects are not followed); not retried")
        if answer.status < 400 or permanent_status(answer.status):
            raise PermanentError(f"{what}; not retried")
        raise CallFailed(what)
    return {
        "status": answer.status,
        "elapsed_ms": elapsed_ms,
        "headers": {name: answer.headers[name] for name in KEPT_HEADERS if name in answer.headers},
        "body": kept,
        "body_truncated": truncated,
    }
