"""Errors a job can end with, and how they are told apart.

``permanent`` is the one place that decides which failures are not retried: the actor wrapper
(workers/lifecycle.py) records them ``dead`` and ``Retries`` (bus/broker.py) dead-letters them.
"""

from __future__ import annotations

import re

import psycopg
from dramatiq.middleware import MiddlewareError

from contracts import JobError


class PermanentError(Exception):
    """Retrying cannot help (bad input, a 4xx from a remote API): the job goes ``dead`` at once."""


#: SQLSTATE classes that fail the same way on every attempt: data exception (22: out-of-range
#: values, bad casts), syntax error or access rule violation (42: undefined table or column),
#: feature not supported (0A)
PERMANENT_SQLSTATE_CLASSES = frozenset({"22", "42", "0A"})
#: 4xx answers that are worth asking again: request timeout, too early, too many requests
RETRYABLE_4XX = frozenset({408, 425, 429})
#: what the datetime module says when arithmetic or parsing leaves the calendar (a ValueError)
_DATE_ERROR = re.compile(
    r"\b(?:year|month|day|hour|minute|second|microsecond|date|time)\b[^.]*\b(?:out of range|must be in)\b"
    r"|Invalid isoformat string|does not match format|unconverted data remains",
    re.IGNORECASE,
)


def permanent_status(status: int) -> bool:
    """An HTTP answer from a remote API that a retry cannot change: a 4xx other than RETRYABLE_4XX."""
    return 400 <= status < 500 and status not in RETRYABLE_4XX


def permanent(exc: BaseException) -> bool:
    """True for failures that recur on every attempt, so retrying only delays the ``dead`` status:
    ``PermanentError``; psycopg errors of PERMANENT_SQLSTATE_CLASSES; ``OverflowError`` (``date value
    out of range``) and the datetime module's ``ValueError``; an HTTP 4xx from a remote API (requests,
    httpx, urllib) other than RETRYABLE_4XX. The pools translate their SDKs' errors themselves
    (workers/gooddata/errors.py) with ``permanent_status``."""
    if isinstance(exc, PermanentError | OverflowError):
        return True
    if isinstance(exc, psycopg.Error):
        return (exc.sqlstate or "")[:2] in PERMANENT_SQLSTATE_CLASSES
    if isinstance(exc, ValueError) and _DATE_ERROR.search(str(exc)):
        return True
    status = _http_status(exc)
    return status is not None and permanent_status(status)


def _http_status(exc: BaseException) -> int | None:
    """The status of an HTTP error answer: requests' and httpx's carry their response, urllib's its code."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None and exc.__class__.__name__ == "HTTPError" and exc.__class__.__module__ == "urllib.error":
        status = getattr(exc, "code", None)
    return status if isinstance(status, int) else None


class Continue(Exception):
    """The job is not over: its handler runs again (same job, same command) after ``delay_ms``.

    For polling long remote work (a SageMaker training job) without holding a worker thread
    idle. The job stays ``running``; the handler keeps its state where the next delivery finds
    it (Postgres, the remote service). Each delivery counts as an attempt in the job record.
    """

    def __init__(self, delay_ms: int, reason: str = "") -> None:
        super().__init__(reason or f"continues in {delay_ms} ms")
        self.delay_ms = max(0, int(delay_ms))


class UnstorableCommand(ValueError):
    """The job store refused a value of an accepted command (what contracts.storable did not
    foresee): that request alone is answered 422; the others of its batch are written."""


class JobCancelled(BaseException):
    """A running job's cancel was requested (``POST /v1/jobs/{id}/cancel``); raised by
    ``JobContext.progress`` and ended ``cancelled`` by the lifecycle, neither retried nor dead.

    A BaseException, like Dramatiq's own interrupts (time limit, shutdown), so a handler's
    ``except Exception`` around its work does not swallow it.
    """


class StoreUnavailable(MiddlewareError):
    """The job store could not record a transition; the message is retried with backoff."""


_SECRETS = (
    re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE),  # user:password@ in URLs
    re.compile(r"(?P<scheme>bearer\s+)[^\s,;'\"]+", re.IGNORECASE),
    # "token=…", "password: …"; not prose such as "set GOODDATA_TOKEN for the pool"
    re.compile(r"(?P<scheme>(?:token|api[_-]?key|password|secret)\s*[=:]\s*)[^\s,;'\"]+", re.IGNORECASE),
)
MAX_MESSAGE = 2000


def redact(text: str) -> str:
    """Remove credentials that libraries like to put in their error messages."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m["scheme"] + "***" + ("@" if "://" in m["scheme"] else ""), text)
    return text


def describe(exc: BaseException) -> JobError:
    # a NUL (a binary payload quoted in an error) is text that jsonb refuses: it would fail the record
    message = redact(str(exc) or exc.__class__.__name__).replace("\x00", "\\x00")
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return JobError(type=exc.__class__.__name__, message=message)
