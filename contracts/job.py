"""What the API says about a job: its status, progress, result and error."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import msgspec


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: the last attempt failed and another one is scheduled
    FAILED = "failed"
    #: retries exhausted or a permanent error: nothing runs it again unless retried by hand
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED})


class Progress(msgspec.Struct, kw_only=True):
    percent: float
    message: str | None = None


class JobError(msgspec.Struct, kw_only=True):
    type: str
    message: str


class Job(msgspec.Struct, kw_only=True):
    id: str
    type: str
    queue: str
    status: JobStatus
    attempts: int
    command: dict[str, Any]
    progress: Progress | None = None
    result: Any = None
    error: JobError | None = None
    idempotency_key: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    #: when a cancel was asked for; a running job ends ``cancelled`` at its next progress report
    cancel_requested_at: dt.datetime | None = None
    #: a follow-up job: the job whose event caused it, and the rule that fired
    caused_by: str | None = None
    rule: str | None = None
    #: the follow-ups this job's events caused, oldest first (``GET /v1/jobs/{id}``; null in listings)
    followed_by: list[str] | None = None
