"""Jobs ended per queue, counted in Redis: the dashboard's last hour and the /metrics counters.

Counting the jobs table for this would scan millions of rows on every refresh and every scrape.
Instead each job ending adds one, in the same Redis pipeline that mirrors the finished batch (no
extra round trip), to

- ``switchyard:<ns>:stats:<queue>:<minute>``: a hash of succeeded, failed, dead, cancelled for
  that minute (``<minute>``: the epoch second it starts), expiring after two hours;
- ``switchyard:<ns>:totals:<queue>``: the same counts since the key was made, and the run time of
  the jobs that ran to an end (a histogram: ``run_le_<bound>`` per bucket, ``run_count``,
  ``run_ms``), which /metrics reports as counters (a Redis flush reads as a counter reset).

``<ns>`` is BROKER_NAMESPACE (deployments sharing a Redis keep their own counts).

``failed`` counts attempts that failed and will be retried; the other three count jobs that ended.
A job store transition happens once per job and status (it only moves a ``running`` job), so a
redelivered message is not counted twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import msgspec

from contracts import JobStatus

BUCKET_S = 60
#: minutes the overview shows (the current, partial one included)
WINDOW = 60
TTL_S = 2 * 3600
COUNTED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED)
_COUNTED = frozenset(s.value for s in COUNTED)
#: upper bounds (seconds) of the run-time histogram's buckets; a longer run counts in +Inf only
RUN_BUCKETS = (0.01, 0.1, 1.0, 10.0, 60.0, 600.0)
#: the endings whose run time is measured: the job ran, from its start to this end
_TIMED = frozenset({JobStatus.SUCCEEDED.value, JobStatus.DEAD.value})


class Ended(Protocol):
    """What is counted of a job that ended (contracts.Job is one)."""

    queue: str
    status: Any
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def minute_of(at: float) -> int:
    return int(at // BUCKET_S) * BUCKET_S


def key(namespace: str, queue: str, minute: int) -> str:
    return f"switchyard:{namespace}:stats:{queue}:{minute}"


def totals_key(namespace: str, queue: str) -> str:
    return f"switchyard:{namespace}:totals:{queue}"


def _run_field(seconds: float) -> str | None:
    return next((f"run_le_{bound:g}" for bound in RUN_BUCKETS if seconds <= bound), None)


class Increments(NamedTuple):
    """What the endings of a batch add to one hash: HINCRBY each field, then EXPIRE (when ``expire_s``)."""

    key: str
    fields: list[tuple[str, int]]
    #: 0: the hash keeps its expiry (the totals have none)
    expire_s: int


def increments(namespace: str, jobs: Iterable[Ended], at: float | None = None) -> list[Increments]:
    """The increments for these jobs' endings, summed per queue first: one HINCRBY per queue and
    field, one EXPIRE per touched minute."""
    minute = minute_of(time.time() if at is None else at)
    tally: Counter[tuple[str, str]] = Counter()
    for job in jobs:
        status = str(getattr(job.status, "value", job.status))
        if status not in _COUNTED:
            continue
        tally[(job.queue, status)] += 1
        if status in _TIMED and job.started_at is not None and job.finished_at is not None:
            seconds = max(0.0, (job.finished_at - job.started_at).total_seconds())
            tally[(job.queue, "run_count")] += 1
            tally[(job.queue, "run_ms")] += round(seconds * 1000)
            if (field := _run_field(seconds)) is not None:
                tally[(job.queue, field)] += 1
    found: list[Increments] = []
    for queue in sorted({queue for queue, _ in tally}):
        fields = sorted((field, n) for (q, field), n in tally.items() if q == queue)
        found.append(Increments(key(namespace, queue, minute), [f for f in fields if f[0] in _COUNTED], TTL_S))
        found.append(Increments(totals_key(namespace, queue), fields, 0))
    return found


def count(pipe: Any, namespace: str, jobs: Iterable[Ended], at: float | None = None) -> None:
    """Queue the increments for these jobs' endings on a Redis pipeline (sync or asyncio); the
    caller executes it."""
    for hash_key, fields, expire_s in increments(namespace, jobs, at):
        for field, n in fields:
            pipe.hincrby(hash_key, field, n)
        if expire_s:
            pipe.expire(hash_key, expire_s)


class Minute(msgspec.Struct, frozen=True):
    at: int
    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    cancelled: int = 0

    @property
    def finished(self) -> int:
        """Jobs that ended (a failed attempt is retried, so it is not one)."""
        return self.succeeded + self.dead + self.cancelled


class Hour(msgspec.Struct, frozen=True):
    """One queue's last ``WINDOW`` minutes, oldest first."""

    queue: str
    minutes: list[Minute]

    def total(self, field: str) -> int:
        return sum(getattr(m, field) for m in self.minutes)

    @property
    def finished(self) -> int:
        return sum(m.finished for m in self.minutes)

    @property
    def per_minute(self) -> float:
        return self.finished / len(self.minutes) if self.minutes else 0.0

    @property
    def failures(self) -> int:
        return self.total("failed") + self.total("dead")

    @property
    def failure_rate(self) -> float | None:
        """Failed attempts (retried or dead) per attempt that ran to an outcome, or None without any."""
        attempts = self.total("succeeded") + self.failures
        return None if attempts == 0 else self.failures / attempts


def window(now: float) -> list[int]:
    current = minute_of(now)
    return [current - BUCKET_S * i for i in range(WINDOW - 1, -1, -1)]


def ask(pipe: Any, namespace: str, queues: Sequence[str], minutes: Sequence[int]) -> None:
    """Queue the reads of every bucket on a pipeline (sync or asyncio); ``read`` parses the replies."""
    for queue in queues:
        for minute in minutes:
            pipe.hgetall(key(namespace, queue, minute))


def read(queues: Sequence[str], minutes: Sequence[int], replies: Sequence[dict[Any, Any]]) -> dict[str, Hour]:
    hours: dict[str, Hour] = {}
    replies_of = iter(replies)
    for queue in queues:
        row = []
        for minute in minutes:
            raw = next(replies_of) or {}
            counts = {_text(k): int(v) for k, v in raw.items() if _text(k) in _COUNTED}
            row.append(Minute(minute, **counts))
        hours[queue] = Hour(queue, row)
    return hours


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Totals(msgspec.Struct, frozen=True):
    """One queue's counts since its totals key was made."""

    queue: str
    ended: dict[str, int]
    #: cumulative counts per bound of RUN_BUCKETS, then the count of every timed run (+Inf)
    run_buckets: list[int]
    run_seconds: float


def ask_totals(pipe: Any, namespace: str, queues: Sequence[str]) -> None:
    for queue in queues:
        pipe.hgetall(totals_key(namespace, queue))


def read_totals(queues: Sequence[str], replies: Sequence[dict[Any, Any]]) -> dict[str, Totals]:
    found: dict[str, Totals] = {}
    for queue, raw in zip(queues, replies, strict=True):
        fields = {_text(k): int(v) for k, v in (raw or {}).items()}
        cumulative, running = [], 0
        for bound in RUN_BUCKETS:
            running += fields.get(f"run_le_{bound:g}", 0)
            cumulative.append(running)
        found[queue] = Totals(
            queue=queue,
            ended={status: fields.get(status, 0) for status in sorted(_COUNTED)},
            run_buckets=[*cumulative, fields.get("run_count", 0)],
            run_seconds=fields.get("run_ms", 0) / 1000,
        )
    return found
