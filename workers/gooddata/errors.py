"""What a failed GoodData call means for the job.

- 4xx (and the SDK's own refusals, e.g. a parent change): ``PermanentError`` carrying
  GoodData's message; the job goes ``dead`` at once, nothing is retried. Which 4xx are
  permanent is decided where every pool's is (``bus.errors.permanent_status``).
- 429: ``dramatiq.Retry`` after the ``Retry-After`` the organisation asked for.
- 5xx, 408 and 425, timeouts, refused or dropped connections: ``GoodDataUnavailable``,
  retried with the pool's exponential backoff.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import requests
import urllib3
from gooddata_api_client.exceptions import ApiException

from bus.errors import PermanentError, permanent_status

#: the SDK's export poll gives up with this ValueError: the export is slow, not wrong
_EXPORT_TIMEOUT = "Server was not able to return response"
MAX_RETRY_AFTER_MS = 20 * 60 * 1000


class GoodDataUnavailable(Exception):
    """A transient failure (5xx, timeout, connection): retried with backoff."""


def gooddata_message(exc: ApiException) -> str:
    """``<status> <title>: <detail>`` from GoodData's problem document, or its raw reason."""
    detail: Any = None
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
    with contextlib.suppress(ValueError, TypeError):
        detail = json.loads(body) if body else None
    if isinstance(detail, dict):
        title = detail.get("title") or exc.reason or ""
        text = detail.get("detail") or detail.get("message") or ""
        return f"{exc.status} {title}: {text}".strip().rstrip(":")
    return f"{exc.status} {exc.reason or ''}".strip() + (f": {body[:500]}" if body else "")


def retry_after_ms(headers: Any) -> int | None:
    """``Retry-After`` (seconds or an HTTP date) in milliseconds.

    Honoured in full (the organisation asked for it), up to 20 minutes: delays stay
    below RabbitMQ's 30 min consumer timeout.
    """
    value = None
    if headers is not None:
        with contextlib.suppress(AttributeError, KeyError):
            value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return int(min(max(seconds, 0.0) * 1000, MAX_RETRY_AFTER_MS)) or 1


@contextlib.contextmanager
def remote(doing: str) -> Iterator[None]:
    """Translate GoodData failures inside the block; ``doing`` says what was being done."""
    try:
        yield
    except (PermanentError, dramatiq.Retry, GoodDataUnavailable):
        raise
    except ApiException as exc:
        status = exc.status or 0
        message = f"{doing}: GoodData {gooddata_message(exc)}"
        if status == 429:
            raise dramatiq.Retry(message, delay=retry_after_ms(exc.headers)) from None
        if permanent_status(status):
            raise PermanentError(message) from None
        raise GoodDataUnavailable(message) from None
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        # OSError covers TimeoutError and ConnectionError; the text names host and path, never headers
        raise GoodDataUnavailable(f"{doing}: GoodData unreachable ({exc.__class__.__name__}: {exc})") from None
    except ValueError as exc:
        if str(exc).startswith(_EXPORT_TIMEOUT):
            raise GoodDataUnavailable(f"{doing}: the export did not finish in time ({exc})") from None
        raise PermanentError(f"{doing}: {exc}") from None
