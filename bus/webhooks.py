"""Slack-compatible webhooks: a JSON payload POSTed through the outbound client (bus/outbound.py).

Metric alerts (workers/metrics/alerts.py) and rule notifications (workers/notifications.py) send
them. A webhook URL is a secret (Slack's carry the token in the path), so it never appears in an
error, a log line or a job record: errors name what went wrong, and ``host_of`` is how a
destination is shown.

Failures are classified for the job lifecycle: ``WebhookFailed`` (a 5xx, 408, 425, 429, a
timeout, a connection error) is worth retrying; ``PermanentError`` (a refused destination, a
redirect, any other 4xx) is not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bus import outbound
from bus.errors import PermanentError, permanent_status

#: Slack answers in well under a second; a receiver slower than this is retried later
TIMEOUT_S = 10.0
#: a receiver's answer is not kept: only enough of it to know it ended
MAX_ANSWER = 64 * 1024


class WebhookFailed(Exception):
    """A webhook failure worth retrying (5xx, 408, 425, 429, timeout, connection error)."""


def host_of(url: str) -> str:
    """The part of a webhook URL that may be shown: its host (the path holds the token)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def post(url: str, payload: dict[str, Any], *, timeout: float = TIMEOUT_S, idempotency_key: str | None = None) -> int:
    """POST ``payload`` as JSON; the status of a 2xx answer. Raises ``WebhookFailed`` (retry) or
    ``PermanentError``. ``idempotency_key`` goes in an ``Idempotency-Key`` header, so a receiver
    that honours it drops a repeated delivery (delivery is at least once)."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    try:
        answer = outbound.request("POST", url, json=payload, headers=headers, timeout=timeout, max_body=MAX_ANSWER)
    except outbound.Refused as err:
        raise PermanentError(f"webhook refused: {err}; not retried") from None
    except outbound.Unreachable:
        raise WebhookFailed(f"webhook unreachable ({host_of(url)} could not be reached or did not answer)") from None
    if 300 <= answer.status < 400:
        raise PermanentError(f"webhook answered {answer.status}: redirects are not followed; not retried")
    if answer.status >= 400:
        if permanent_status(answer.status):
            raise PermanentError(f"webhook answered {answer.status}; not retried")
        raise WebhookFailed(f"webhook answered {answer.status}")
    return answer.status
