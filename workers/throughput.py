"""Finished jobs per queue and minute, counted in Redis: the dashboard's last hour of throughput.

Counting the jobs table for this would scan millions of rows on every refresh. Instead each job
ending adds one to ``switchyard:<ns>:stats:<queue>:<minute>`` (a hash: succeeded, failed, dead,
cancelled), queued in the same Redis pipeline that mirrors the finished batch, so it costs no
extra round trip. ``<ns>`` is BROKER_NAMESPACE (deployments sharing a Redis keep their own counts);
``<minute>`` is the epoch second the minute starts. Buckets expire after two hours.

``failed`` counts attempts that failed and will be retried; the other three count jobs that ended.
A job store transition happens once per job and status (it only moves a ``running`` job), so a
redelivered message is not counted twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from contracts import JobStatus

BUCKET_S = 60
#: minutes the overview shows (the current, partial one included)
WINDOW = 60
TTL_S = 2 * 3600
COUNTED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED)
_COUNTED = frozenset(s.value for s in COUNTED)


def minute_of(at: float) -> int:
    return int(at // BUCKET_S) * BUCKET_S


def key(namespace: str, queue: str, minute: int) -> str:
    return f"switchyard:{namespace}:stats:{queue}:{minute}"


def count(pipe: Any, namespace: str, ended: Iterable[tuple[str, str]], at: float | None = None) -> None:
    """Queue the increments for (queue, status) pairs on a Redis pipeline (sync or asyncio); the
    caller executes it. One HINCRBY per queue and status, one EXPIRE per touched bucket."""
    minute = minute_of(time.time() if at is None else at)
    tally = Counter((queue, str(status)) for queue, status in ended if str(status) in _COUNTED)
    for (queue, status), n in sorted(tally.items()):
        pipe.hincrby(key(namespace, queue, minute), status, n)
    for queue in sorted({queue for queue, _ in tally}):
        pipe.expire(key(namespace, queue, minute), TTL_S)


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
