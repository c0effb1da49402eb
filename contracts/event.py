"""Job events: what the bus says when a job ends, one message per transition.

Every transition of a job into ``succeeded``, ``failed`` (another attempt is scheduled), ``dead``
or ``cancelled`` is one event. It travels as an ordinary Dramatiq message (the seven fields) on
the ``events`` queue and on every queue named in ``EVENT_QUEUES``:

- ``actor_name``: the event's name (``job.succeeded``, ``job.failed``, ``job.dead``, ``job.cancelled``)
- ``message_id``: the event id, derived from (job id, attempt, status): a redelivered message
  carries the same id, so a consumer that keeps the ids it handled handles each event once
- ``args``: ``[JobEvent]`` as JSON; ``kwargs``: ``{}``; ``options``: ``{"schema_version": 1}``
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from contracts.job import JobError, JobStatus

#: the queue the rule processors consume; EVENT_QUEUES adds queues of other consumers
EVENTS_QUEUE = "events"
#: the statuses a job ends a transition in, each an event
EVENT_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED)
#: event name (the message's actor_name) by status
EVENT_NAMES: dict[str, str] = {str(s): f"job.{s}" for s in EVENT_STATUSES}
#: results larger than this travel as a summary (their top-level scalars); the job has them whole
RESULT_SUMMARY_BYTES = 8192

_EVENT_NAMESPACE = uuid.UUID("5b2f4c1e-7f1a-4d7e-9a51-0c7a3e8f2d10")


def event_id(job_id: str, attempt: int, status: str) -> str:
    """The id of the event of ``job_id`` ending ``attempt`` in ``status``: the same every time."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{job_id}\x1f{attempt}\x1f{status}"))


class JobEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    #: ``job.succeeded`` | ``job.failed`` | ``job.dead`` | ``job.cancelled``
    event: str
    job_id: str
    type: str
    queue: str
    status: JobStatus
    attempt: int
    occurred_at: dt.datetime
    #: the job's result, or a summary of it (its top-level scalar fields) when it is large
    result: Any = None
    result_truncated: bool = False
    error: JobError | None = None
    #: set on a follow-up job: the job whose event caused it, and the rule that did
    caused_by: str | None = None
    rule: str | None = None
    #: how many rule firings led to this job (0: submitted by a client or a schedule)
    chain_depth: int = 0


def summarize(result: Any) -> tuple[Any, bool]:
    """The result as an event carries it, and whether it was cut down to its top-level scalars."""
    if result is None or len(msgspec.json.encode(result)) <= RESULT_SUMMARY_BYTES:
        return result, False
    if isinstance(result, dict):
        scalars = {k: v for k, v in result.items() if v is None or isinstance(v, bool | int | float)}
        scalars.update({k: v for k, v in result.items() if isinstance(v, str) and len(v) <= 256})
        return scalars, True
    return None, True
