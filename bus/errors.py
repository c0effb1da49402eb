"""Errors a job can end with, and how they are told apart."""

from __future__ import annotations

import re

from dramatiq.middleware import MiddlewareError

from contracts import JobError


class PermanentError(Exception):
    """Retrying cannot help (bad input, a 4xx from a remote API): the job goes ``dead`` at once."""


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
    message = redact(str(exc) or exc.__class__.__name__)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return JobError(type=exc.__class__.__name__, message=message)
