"""Emitting scheduled commands: exactly one job per (schedule, slot).

In one transaction a ticker locks the due schedules (SKIP LOCKED: another ticker
takes other rows), records one job per slot to emit and advances ``next_fire_at``.
The job id is derived from (schedule, slot), so a slot can never be recorded twice,
even by two tickers or a ticker that restarted. Messages are enqueued after the
commit; one the ticker could not send is sent by the sweeper.

Misfires (slots older than the grace period, e.g. the ticker was down) follow the
schedule's policy: skip them, fire once for the newest, or catch up to a bound.
Slots within the grace period always fire, so a quick restart loses nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

import dramatiq
import psycopg
from psycopg.types.json import Jsonb

from bus import db, slots
from bus.broker_adapter import enqueue_many
from bus.jobstore import SQL as JOBS
from bus.jobstore import command_hash
from bus.schedule_store import SQL as SCHEDULES
from bus.submission import to_message
from contracts import BY_TYPE, SCHEMA_VERSION, route
from contracts.message import JOB_ID_NAMESPACE

log = logging.getLogger(__name__)
#: a schedule firing every second that was late by the grace period emits this many at most
MAX_RECENT_SLOTS = 1000
#: due schedules handled in one transaction
BATCH = 1000


def slot_job_id(schedule: str, slot: dt.datetime) -> str:
    return str(uuid.uuid5(JOB_ID_NAMESPACE, f"schedule:{schedule}:{slot.astimezone(dt.UTC).isoformat()}"))


def plan(row: dict[str, Any], now: dt.datetime, grace: dt.timedelta) -> list[dt.datetime]:
    """The slots of a due schedule to emit now."""
    start, cutoff = row["next_fire_at"], now - grace
    recent = slots.between(row["cron"], row["timezone"], max(start, cutoff), now, MAX_RECENT_SLOTS)
    if start >= cutoff:
        return recent
    policy = row["misfire"].get("policy", "skip")
    if policy == "skip":
        missed: list[dt.datetime] = []
    else:
        limit = 1 if policy == "fire_once" else int(row["misfire"].get("catch_up_limit", 10))
        missed = slots.between(row["cron"], row["timezone"], start, cutoff - dt.timedelta(microseconds=1), limit)
    if missed:
        log.info("schedule %s: %d missed slot(s) emitted (policy %s)", row["name"], len(missed), policy)
    return missed + recent


def emit_due(broker: dramatiq.Broker, *, now: dt.datetime, grace: dt.timedelta, batch: int = BATCH) -> tuple[int, int]:
    """One batch of due schedules: (schedules handled, jobs emitted)."""
    with db.pool().connection() as conn, conn.transaction():
        rows = conn.execute(SCHEDULES["due"], {"now": now, "limit": batch}).fetchall()
        if not rows:
            return 0, 0
        # schedules that share a cron, zone and slot share the arithmetic (10,000 "every
        # minute" schedules cost one computation, not 10,000)
        plans: dict[tuple[Any, ...], tuple[list[dt.datetime], dt.datetime]] = {}
        jobs: dict[str, dramatiq.Message] = {}
        #: each job's command hash: one per schedule, however many of its slots are emitted
        hashes: dict[str, str] = {}
        advances: dict[str, list[Any]] = {"names": [], "next": [], "last": []}
        for row in rows:
            key = (row["cron"], row["timezone"], json.dumps(row["misfire"], sort_keys=True), row["next_fire_at"])
            if key not in plans:
                plans[key] = (plan(row, now, grace), slots.after(row["cron"], row["timezone"], now)[0])
            emitted, next_at = plans[key]
            queue = route(BY_TYPE[row["command_type"]]).queue
            digest = command_hash(row["command"]) if emitted else ""
            for slot in emitted:
                options = {"schema_version": SCHEMA_VERSION, "scheduled_at": slot.isoformat(), "schedule": row["name"]}
                job_id = slot_job_id(row["name"], slot)
                jobs[job_id] = to_message(job_id, row["command_type"], queue, row["command"], options)
                hashes[job_id] = digest
            advances["names"].append(row["name"])
            advances["next"].append(next_at)
            advances["last"].append(emitted[-1] if emitted else None)
        messages = _record(conn, jobs, hashes)
        conn.execute(SCHEDULES["advance_many"], advances)
        # Sent before the commit, while the new rows are invisible to the sweeper: it
        # cannot send them a second time. A ticker that dies here rolls back; the next
        # one records the same slots (same ids) and sends what is missing.
        try:
            enqueue_many(broker, messages)
        except Exception as err:  # noqa: BLE001 - the rows are kept; the sweeper sends them
            log.warning(
                "broker unavailable (%s); %d scheduled jobs left to the sweeper", type(err).__name__, len(messages)
            )
        else:
            conn.execute(JOBS["mark_enqueued"], {"ids": [m.message_id for m in messages]})
    return len(rows), len(messages)


def _record(
    conn: psycopg.Connection, jobs: dict[str, dramatiq.Message], hashes: dict[str, str]
) -> list[dramatiq.Message]:
    """Insert the slots' jobs in one statement; the messages of those not recorded before."""
    if not jobs:
        return []
    messages = list(jobs.values())
    inserted = conn.execute(
        JOBS["insert_many"],
        {
            "ids": [m.message_id for m in messages],
            "types": [m.actor_name for m in messages],
            "queues": [m.queue_name for m in messages],
            "commands": [Jsonb(m.args[0]) for m in messages],
            "options": [Jsonb(m.options) for m in messages],
            "hashes": [hashes[m.message_id] for m in messages],
        },
    ).fetchall()
    fresh = {r["id"] for r in inserted}  # the others were recorded before (a ticker that restarted)
    return [m for m in messages if m.message_id in fresh]


def seconds_until_due(now: dt.datetime) -> float | None:
    with db.pool().connection() as conn:
        row = conn.execute(SCHEDULES["next_due"]).fetchone()
    at = row["at"] if row else None
    return None if at is None else max(0.0, (at - now).total_seconds())
