"""The reconciler: Postgres drives recovery; the broker is a delivery mechanism that may forget.

The ticker runs both passes every SWEEP_INTERVAL_S, after the sweeper (which sends accepted jobs
the broker never got: workers/sweeper.py). They re-drive from the jobs table:

1. Lost attempts (``reclaim_lost_attempts``): running jobs whose lease ran out (their worker
   stopped renewing it: workers/leases.py) and that no live worker process lists
   (bus/presence.py): the worker died, or the attempt's outcome was lost with its message. They go
   back to ``queued`` and their message is sent again. The lost attempt stays counted in
   ``attempts`` and in ``reclaims``; a job lost more than MAX_RETRIES times ends ``dead``
   (``WorkerLost``) rather than taking down workers for ever. Without an answer from Redis
   (presence) no running job is judged lost.
2. Lost messages (``redrive_lost_messages``): queued jobs, and failed ones waiting for their retry,
   whose message the broker no longer holds (a Redis restarted without persistence). The Redis
   broker is looked into (bus/broker_adapter.py): only when the table counts more jobs needing a
   message on a queue than the broker holds messages for it are that queue's message ids read, and
   each job sent REDRIVE_AFTER_S ago that has none is sent again; a job whose only message is in
   the dead-letter queue ends ``dead``. RabbitMQ cannot be looked into without consuming: a job
   there is sent again when it has not started REDRIVE_RABBITMQ_AFTER_S after it was sent.

Each pass locks its rows FOR UPDATE SKIP LOCKED and sends their messages before the commit (a
failure rolls it back, and the next pass tries again), so any number of tickers can run.
Redelivery stays idempotent: a worker starts a job only from ``queued`` or ``failed``
(bus/jobstore.py), so a message sent twice runs the job once, and a duplicate message of a running
job is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import dramatiq
import msgspec
import redis
from psycopg.types.json import Jsonb

from bus import db, settings
from bus.broker_adapter import Held, enqueue_many, held_counts, held_messages, is_redis
from bus.jobstore import shared, to_job
from bus.presence import listed_jobs
from bus.queries import load
from bus.submission import message_for
from contracts import JobError

log = logging.getLogger(__name__)
SQL = load("recovery")
#: rows handled in one transaction
BATCH = 500
_BEGINNING = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "")


class Recovered(msgspec.Struct):
    """What one pass did."""

    #: lost attempts whose job was queued again
    reclaimed: int = 0
    #: jobs whose message was sent again
    resent: int = 0
    #: jobs ended dead: lost too often, or their message dead-lettered
    dead: int = 0


def reclaim_lost_attempts(broker: dramatiq.Broker, presence: redis.Redis, s: settings.Settings) -> Recovered:
    done = Recovered()
    # read before the rows: a job that starts meanwhile has a fresh lease, so it is not a candidate
    listed = sorted(listed_jobs(presence, s.broker_namespace))
    while True:
        with db.pool().connection() as conn, conn.transaction():
            rows = conn.execute(
                SQL["expired_leases"], {"lease_s": s.lease_s, "listed": listed, "limit": BATCH}
            ).fetchall()
            if not rows:
                break
            statuses = ["dead" if r["reclaims"] >= s.max_retries else "queued" for r in rows]
            moved = conn.execute(
                SQL["reclaim_many"],
                {
                    "ids": [r["id"] for r in rows],
                    "statuses": statuses,
                    "errors": [Jsonb(_lost(r, st, s)) for r, st in zip(rows, statuses, strict=True)],
                },
            ).fetchall()
            again = [m for m in moved if m["status"] == "queued"]
            enqueue_many(broker, [message_for(to_job(m), m["options"]) for m in again])
        ended = [m for m in moved if m["status"] == "dead"]
        if ended:
            shared().mirror_finished(ended)
        done.reclaimed += len(again)
        done.dead += len(ended)
        log.warning(
            "reconciler: %d running jobs had lost their attempt (lease over, no live worker): %d queued again, %d dead",
            len(moved),
            len(again),
            len(ended),
        )
        if len(rows) < BATCH:
            break
    return done


def _lost(row: dict[str, Any], status: str, s: settings.Settings) -> JobError:
    message = f"attempt {row['attempts']} was lost: its lease ran out and no live worker runs it"
    if status == "dead":
        message += f"; lost {row['reclaims'] + 1} times, more than MAX_RETRIES={s.max_retries}"
    return JobError(type="WorkerLost", message=message)


def redrive_lost_messages(broker: dramatiq.Broker, s: settings.Settings) -> Recovered:
    done = Recovered()
    with db.pool().connection() as conn:
        open_jobs = {r["queue"]: r["n"] for r in conn.execute(SQL["open_by_queue"]).fetchall()}
    if not open_jobs:
        return done
    if not is_redis(broker):
        for queue in sorted(open_jobs):
            rabbit = s.redrive_rabbitmq_after_s
            # a failed job's retry waits in the broker for up to MAX_BACKOFF_MS first
            _redrive(broker, queue, None, rabbit, s.max_backoff_ms / 1000 + rabbit, done)
        return done
    counts = held_counts(broker, tuple(sorted(open_jobs)))
    assert counts is not None
    for queue in sorted(q for q, n in open_jobs.items() if n > counts[q]):
        # read before the rows: a message acknowledged meanwhile belongs to a job no longer waiting
        held = held_messages(broker, queue)
        _redrive(broker, queue, held, s.redrive_after_s, s.redrive_after_s, done)
    return done


def _redrive(
    broker: dramatiq.Broker,
    queue: str,
    held: Held | None,
    queued_after_s: float,
    failed_after_s: float,
    done: Recovered,
) -> None:
    """Send again the messages of ``queue``'s waiting jobs that ``held`` lacks (None: all of them)."""
    after = _BEGINNING
    while True:
        with db.pool().connection() as conn, conn.transaction():
            rows = conn.execute(
                SQL["waiting"],
                {
                    "queue": queue,
                    "queued_after_s": queued_after_s,
                    "failed_after_s": failed_after_s,
                    "after_created": after[0],
                    "after_id": after[1],
                    "limit": BATCH,
                },
            ).fetchall()
            if not rows:
                return
            after = (rows[-1]["created_at"], rows[-1]["id"])
            lost = [r for r in rows if held is None or r["id"] not in held.live]
            dead_lettered = [r["id"] for r in lost if held is not None and r["id"] in held.dead]
            resend = [r for r in lost if r["id"] not in dead_lettered]
            if resend:
                enqueue_many(broker, [_message(r) for r in resend])
                conn.execute(SQL["resent"], {"ids": [r["id"] for r in resend]})
            ended = []
            if dead_lettered:
                error = JobError(type="DeadLettered", message="the broker dead-lettered its message; nothing runs it")
                ended = conn.execute(SQL["dead_lettered"], {"ids": dead_lettered, "error": Jsonb(error)}).fetchall()
        if ended:
            shared().mirror_finished(ended)
        if resend or ended:
            log.warning(
                "reconciler: queue %s: %d waiting jobs had no message in the broker: %d sent again, %d dead",
                queue,
                len(lost),
                len(resend),
                len(ended),
            )
        done.resent += len(resend)
        done.dead += len(ended)
        if len(rows) < BATCH:
            return


def _message(row: dict[str, Any]) -> dramatiq.Message:
    options = dict(row["options"])
    if row["status"] == "failed":
        # the retry goes on counting where the lost one was: the attempts that failed so far
        options["retries"] = max(0, row["attempts"] - row["reclaims"])
    return message_for(to_job(row), options)
