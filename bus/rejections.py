"""Messages a worker refused to run, and why: what an operator sees of a poison message.

A message on the bus that cannot become a job (not JSON, not Dramatiq's seven fields, an actor or
queue this pool does not serve, no ``options.redis_message_id`` to acknowledge it by) is moved to
its queue's dead-letter queue by the consumer (bus/quarantine.py) instead of stopping it. Beside
the dead letter, which keeps the raw body, the same atomic step writes to the broker's Redis

- ``switchyard:<ns>:rejected:<queue>``: a list of records, newest first, capped at ``KEEP``: the
  reason, when, the message id if the body has one, the Redis id of the dead letter, and the body
  as text, truncated and with secrets masked;
- ``switchyard:<ns>:rejected``: a hash of queue -> messages rejected since the key was made (the
  /metrics counter ``switchyard_rejected_messages_total``).

``<ns>`` is BROKER_NAMESPACE. The raw body stays in Dramatiq's dead-letter hash for its dead-message
TTL (bus/broker_adapter.dead_letter reads it by the record's ``redis_id``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from bus.errors import redact

#: records kept per queue (the counter keeps counting past it)
KEEP = 1000
#: characters of the body a record shows
PREVIEW_CHARS = 2000
#: characters of a reason (it may quote a producer's actor or queue name)
REASON_CHARS = 300
#: a JSON key whose value is never shown (in any object of the body, at any depth)
_SECRETS = r"token|passw|secret|api[_-]?key|authori[sz]ation|credential|webhook|cookie"
_SECRET_KEY = re.compile(_SECRETS, re.I)
#: the same in text that is not valid JSON: ``"password": "…"`` or ``"token": 123``
_SECRET_PAIR = re.compile(rf'("[^"]*(?:{_SECRETS})[^"]*"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}\s]+)', re.I)


class Rejected(msgspec.Struct, kw_only=True, frozen=True):
    """A message a worker refused to run: why, when, and its body as text (secrets masked, cut at
    2,000 characters). The raw body is in the queue's dead-letter queue under ``redis_id``."""

    queue: str
    reason: str
    at: dt.datetime
    #: the body as text (UTF-8, undecodable bytes escaped), secrets masked, at most PREVIEW_CHARS
    body: str
    truncated: bool
    #: the body's size in bytes
    size: int
    #: the message's ``message_id`` (the job id) when the body has one
    message_id: str | None = None
    #: the dead letter's id in ``<ns>:<queue>.XQ.msgs``; filled in by the broker when it moves it
    redis_id: str | None = None


def log_key(namespace: str, queue: str) -> str:
    return f"switchyard:{namespace}:rejected:{queue}"


def totals_key(namespace: str) -> str:
    return f"switchyard:{namespace}:rejected"


def record(queue: str, body: bytes, reason: str, at: dt.datetime | None = None) -> Rejected:
    text, truncated = preview(body)
    return Rejected(
        queue=queue,
        reason=redact(reason)[:REASON_CHARS],
        at=dt.datetime.now(dt.UTC) if at is None else at,
        body=text,
        truncated=truncated,
        size=len(body),
        message_id=message_id_of(body),
    )


def preview(body: bytes) -> tuple[str, bool]:
    """The body as text for people, secrets masked; and whether it was cut."""
    text = body.decode("utf-8", errors="backslashreplace")
    try:
        parsed = json.loads(text)
    except ValueError:
        pass
    else:
        text = json.dumps(_masked(parsed), ensure_ascii=False)
    text = redact(_SECRET_PAIR.sub(r'\1"***"', text))  # and credentials in URLs, "token=…" in free text
    return (text[:PREVIEW_CHARS], True) if len(text) > PREVIEW_CHARS else (text, False)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "***" if _SECRET_KEY.search(str(k)) else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def message_id_of(body: bytes) -> str | None:
    try:
        found = json.loads(body).get("message_id")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return found[:200] if isinstance(found, str) else None


_decoder = msgspec.json.Decoder(Rejected)


def read(raws: Iterable[bytes]) -> list[Rejected]:
    found = []
    for raw in raws:
        try:
            found.append(_decoder.decode(raw))
        except msgspec.DecodeError:
            continue  # a record written by another version: skip it rather than fail the listing
    return found


def newest(per_queue: Sequence[list[Rejected]], limit: int) -> list[Rejected]:
    """The ``limit`` newest records of several queues' lists (each newest first)."""
    merged = [r for records in per_queue for r in records]
    return sorted(merged, key=lambda r: r.at, reverse=True)[:limit]
