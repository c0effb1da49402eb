"""The job store: every job transition, written to Postgres, mirrored to Redis.

Transitions are keyed by job id and attempt because delivery is at least once: ``start``
of a job that is over, or running under another attempt, starts nothing (the caller skips
the message); ``finish`` and ``progress`` only apply to the attempt that runs, so a late
write of an attempt that was superseded never overwrites a newer one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import redis
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads

from bus import db, settings, throughput
from bus.groupcommit import GroupCommit, Started
from bus.queries import load
from bus.redis_client import sync_client
from contracts import BY_TYPE, ROUTES, Job, JobError, JobStatus, Progress

log = logging.getLogger(__name__)
SQL = load("jobs")
MIRROR_PREFIX = "switchyard:job:"
#: Redis holds a job once it can no longer change by itself: polls of finished jobs are
#: answered from there, a job still moving is read from Postgres. Mirroring only these
#: spares each job's start and progress a Redis write, and a mirror write lost in a crash
#: can never leave a stale "running" behind.
MIRRORED = frozenset({JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.DEAD})
#: what the API may answer from the mirror alone (a dead job can be retried from the API,
#: which rewrites the row first: read it from Postgres)
FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.CANCELLED})
#: the statuses of jobs that still need a worker or an operator, as the `count_open` query counts them
#: (finished ones are counted as they end, in Redis: bus/throughput.py)
OPEN = ("queued", "running", "failed", "dead")

#: mirrors and counts a finished batch (its arguments: ``JobStore._finished``)
FINISHED_LUA = (Path(__file__).with_name("lua") / "finished.lua").read_bytes()

_encoder = msgspec.json.Encoder()
set_json_dumps(_encoder.encode)
set_json_loads(msgspec.json.decode)


def command_hash(command: dict[str, Any]) -> str:
    return hashlib.sha256(msgspec.json.encode(command, order="sorted")).hexdigest()


def row_params(*, job_id: str, type: str, queue: str, command: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Bound parameters of a new job row (the ``insert`` query; batched by the ingress)."""
    return {
        "id": job_id,
        "type": type,
        "queue": queue,
        "command": Jsonb(command),
        "options": Jsonb(options),
        "idempotency_key": options.get("idempotency_key"),
        # the hash detects a reused idempotency key: only an accepted command needs it
        "command_hash": command_hash(command) if isinstance(command, dict) else None,
    }


#: a follow-up job's origin, kept in its options (workers/lifecycle.py keeps them from a message too)
ORIGIN = ("caused_by", "rule")


def to_job(row: dict[str, Any]) -> Job:
    fields = {k: row[k] for k in Job.__struct_fields__ if k in row and row[k] is not None}
    options = row.get("options") or {}
    fields.update({k: options[k] for k in ORIGIN if isinstance(options.get(k), str)})
    return msgspec.convert(fields, Job, from_attributes=False)


def mirror_key(job_id: str) -> str:
    return MIRROR_PREFIX + job_id


def encode(job: Job) -> bytes:
    return _encoder.encode(job)


def decode(raw: bytes) -> Job:
    return msgspec.json.decode(raw, type=Job)


class BadCursor(ValueError):
    pass


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return dt.datetime.fromisoformat(created), job_id
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this API returned") from None


class JobFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which jobs a listing shows; every field narrows it, None leaves it open."""

    status: str | None = None
    type: str | None = None
    queue: str | None = None
    #: created at or after
    since: dt.datetime | None = None
    #: created before
    until: dt.datetime | None = None


EVERY_JOB = JobFilter()


def aware_time(text: str) -> dt.datetime:
    """A filter's time: ISO 8601 (a browser's datetime-local too), UTC unless it names its offset."""
    moment = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


#: one condition per filter, by its parameter's name
_CONDITIONS = {
    "status": "status = %(status)s",
    "type": "type = %(type)s",
    "queue_types": "type = ANY(%(queue_types)s)",
    "since": "created_at >= %(since)s",
    "until": "created_at < %(until)s",
}


def _types_of(queue: str) -> list[str]:
    return sorted(name for name, cls in BY_TYPE.items() if ROUTES[cls].queue == queue)


def list_query(where: JobFilter, *, limit: int, cursor: str | None) -> tuple[sql.Composed, dict[str, Any]]:
    """Newest first, keyset-paginated; fetches limit + 1 rows to know if a next page exists.

    Every filter is served by an index ending in (created_at, id): a queue is asked for as its
    command types, because a type belongs to one queue and `type` is indexed (a rare queue would
    otherwise walk the whole time index)."""
    wanted = {
        "status": where.status,
        "type": where.type,
        "queue_types": None if where.queue is None else _types_of(where.queue),
        "since": where.since,
        "until": where.until,
    }
    params: dict[str, Any] = {name: value for name, value in wanted.items() if value is not None}
    clauses: list[sql.Composable] = [sql.SQL(_CONDITIONS[name]) for name in params]
    params["limit"] = limit + 1
    if cursor is not None:
        params["c_created"], params["c_id"] = decode_cursor(cursor)
        clauses.append(sql.SQL("(created_at, id) < (%(c_created)s, %(c_id)s)"))
    condition = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")
    return sql.SQL("SELECT * FROM jobs{} ORDER BY created_at DESC, id DESC LIMIT %(limit)s").format(condition), params


def page(rows: list[dict[str, Any]], limit: int) -> tuple[list[Job], str | None]:
    jobs = [to_job(r) for r in rows[:limit]]
    return jobs, (encode_cursor(jobs[-1]) if len(rows) > limit else None)


class JobStore:
    """Synchronous store used by worker processes, the ticker and the CLI."""

    def __init__(self, redis_client: redis.Redis | None = None) -> None:
        self.redis = redis_client or sync_client()
        self.ttl = settings.get().status_ttl_s
        self.lease_s = settings.get().lease_s
        self.namespace = settings.get().broker_namespace
        self.group = GroupCommit(on_finished=self._finished)
        self._record_finished = self.redis.register_script(FINISHED_LUA)

    def _one(self, name: str, params: dict[str, Any], *, durable: bool = True) -> dict[str, Any] | None:
        # not durable: losing this write in a Postgres crash only leaves the previous
        # state, which the redelivered message corrects, so it need not wait for fsync
        with db.statements(durable=durable).connection() as conn:
            return conn.execute(SQL[name], params).fetchone()

    def start(
        self,
        *,
        job_id: str,
        type: str,
        queue: str,
        command: Any,
        options: dict[str, Any],
        continues: int | None = None,
    ) -> Started:
        """Record a delivery as running, with a fresh lease: the attempt it runs, or None and the
        status that keeps it from running. ``continues``: the attempt a continuation's message
        continues (only that attempt's running job can be taken over)."""
        return self.group.start(
            {
                "id": job_id,
                "type": type,
                "queue": queue,
                "command": command,
                "options": options,
                "idempotency_key": options.get("idempotency_key"),
                "continues": continues,
            }
        )

    def finish(
        self, job_id: str, status: JobStatus, *, attempt: int, result: Any = None, error: JobError | None = None
    ) -> Job | None:
        """End ``attempt`` of a running job; None when that attempt no longer runs (it ended
        already, or was superseded). Durable (fsync'd) before it returns."""
        return self.group.finish({"id": job_id, "attempt": attempt, "status": status, "result": result, "error": error})

    def mirror_finished(self, rows: list[dict[str, Any]]) -> dict[str, Job]:
        """Jobs that ended outside a worker's finish (the reconciler's): mirrored and counted the same way."""
        return self._finished(rows)

    def _finished(self, rows: list[dict[str, Any]]) -> dict[str, Job]:
        """The finished batch as jobs, mirrored in one Redis command, the dashboard's per-minute
        counts included (best effort: Postgres holds the truth and the API falls back to it)."""
        jobs = {row["id"]: to_job(row) for row in rows}
        mirrored = [job for job in jobs.values() if job.status in MIRRORED]
        keys = [mirror_key(job.id) for job in mirrored]
        args: list[Any] = [len(mirrored), self.ttl, *(encode(job) for job in mirrored)]
        for counted in throughput.increments(self.namespace, jobs.values()):
            keys.append(counted.key)
            args.append(len(counted.fields))
            for field, n in counted.fields:
                args += (field, n)
            args.append(counted.expire_s)
        if not keys:
            return jobs  # none of these attempts still ran: nothing ended, nothing to mirror or count
        try:
            self._record_finished(keys=keys, args=args)
        except redis.RedisError as err:
            log.warning("status mirror unavailable for %d jobs: %s", len(rows), err.__class__.__name__)
        return jobs

    def progress(self, job_id: str, attempt: int, percent: float, message: str | None = None) -> bool:
        """Record a running attempt's progress; True when the job's cancel has been requested (the
        same statement says so, so a job learns it at no extra cost). Best effort: a progress write
        lost to a Postgres outage must not fail the job."""
        # a running job is read from Postgres, never from the mirror: nothing to mirror here
        value = Progress(percent=max(0.0, min(100.0, float(percent))), message=message)
        params = {"id": job_id, "attempt": attempt, "progress": Jsonb(value), "lease_s": self.lease_s}
        try:
            row = self._one("progress", params, durable=False)
        except Exception as err:
            if not unavailable(err):
                raise
            log.warning("progress of job %s not recorded: %s", job_id, err.__class__.__name__)
            return False
        return row is not None and row["cancel_requested_at"] is not None

    def renew_leases(self, held: list[tuple[str, int]]) -> None:
        """Renew the leases of these (job id, attempt) pairs, in one statement."""
        if held:
            params = {"ids": [j for j, _ in held], "attempts": [a for _, a in held], "lease_s": self.lease_s}
            with db.statements(durable=False).connection() as conn:
                conn.execute(SQL["renew_leases"], params)

    def continue_later(self, job_id: str, attempt: int, delay_ms: int) -> bool:
        """Hold a running job over a continuation's delay; False when ``attempt`` no longer runs it."""
        params = {"id": job_id, "attempt": attempt, "delay_s": delay_ms / 1000, "lease_s": self.lease_s}
        return self._one("continue_later", params) is not None

    def running_attempt(self, job_id: str) -> tuple[int, float] | None:
        """The attempt a running job runs and how many seconds ago its lease was last renewed, or
        None when it does not run."""
        row = self._one("running_attempt", {"id": job_id, "lease_s": self.lease_s}, durable=False)
        if row is None:
            return None
        return int(row["attempts"]), float(row["renewed_s_ago"] or 0.0)

    def reclaim(self, job_id: str, attempt: int, *, max_losses: int, error: JobError) -> Job | None:
        """Count ``attempt`` of a running job as lost: the job is queued again (or ``dead`` after
        ``max_losses`` losses, with ``error``); None when that attempt no longer runs it."""
        params = {"id": job_id, "attempt": attempt, "max_losses": max_losses, "error": Jsonb(error)}
        row = self._one("reclaim_one", params)
        return None if row is None else to_job(row)

    def get(self, job_id: str) -> Job | None:
        row = self._one("get", {"id": job_id})
        return None if row is None else to_job(row)

    def followed_by(self, job_id: str) -> list[str]:
        """The ids of the follow-ups this job's events caused, oldest first."""
        with db.statements().connection() as conn:
            return [r["id"] for r in conn.execute(SQL["followed_by"], {"id": job_id}).fetchall()]

    def insert(
        self, *, job_id: str, type: str, queue: str, command: dict[str, Any], options: dict[str, Any]
    ) -> tuple[Job, bool, bool]:
        """Record an accepted command: (job, created, same_command). A replayed idempotency key
        returns the existing job; same_command is False when it was recorded for another command."""
        params = row_params(job_id=job_id, type=type, queue=queue, command=command, options=options)
        with db.statements().connection() as conn:
            row = conn.execute(SQL["insert"], params).fetchone()
            if row is not None:
                return to_job(row), True, True
            existing = conn.execute(SQL["get"], {"id": job_id}).fetchone()
        assert existing is not None
        same = existing.get("command_hash") in (None, params["command_hash"])
        return to_job(existing), False, same

    def mark_enqueued(self, job_ids: list[str]) -> None:
        if job_ids:
            with db.statements(durable=False).connection() as conn:
                conn.execute(SQL["mark_enqueued"], {"ids": job_ids})

    def list(
        self, where: JobFilter = EVERY_JOB, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        query, params = list_query(where, limit=limit, cursor=cursor)
        with db.statements().connection() as conn:
            return page(conn.execute(query, params).fetchall(), limit)


def unavailable(err: BaseException) -> bool:
    """True for errors that mean a dependency is down (the caller answers 503 or retries)."""
    return isinstance(err, (psycopg.OperationalError, redis.ConnectionError, redis.TimeoutError)) or (
        err.__class__.__name__ == "PoolTimeout"
    )


_shared: JobStore | None = None


def shared() -> JobStore:
    """The process's store, created on first use (Dramatiq forks workers after import)."""
    global _shared
    if _shared is None:
        _shared = JobStore()
    return _shared
