"""Emitting scheduled commands: exactly one job per (schedule, slot).

In one transaction a ticker locks a batch of due schedules (SKIP LOCKED: another
ticker takes other rows), advances their ``next_fire_at``, sends one message per slot
to emit and records its job. The job id is derived from (schedule, slot), so a slot
can never be recorded twice, even by two tickers or a ticker that restarted. A batch
costs a handful of statements and one pipeline to the broker, however many slots it
has; a job the ticker could not send is recorded unsent, and the sweeper sends it.

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
    return _job_id(schedule, slot.astimezone(dt.UTC).isoformat())


def _job_id(schedule: str, utc_iso: str) -> str:
    """``slot_job_id`` of a slot given as its UTC ISO form (computed once per slot of a batch)."""
    return str(uuid.uuid5(JOB_ID_NAMESPACE, f"schedule:{schedule}:{utc_iso}"))


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
        due = _Batch(now, grace)
        for row in rows:
            due.add(row)
        conn.execute(SCHEDULES["advance_many"], due.advances)
        recorded = {r["id"] for r in conn.execute(JOBS["recorded"], {"ids": due.ids()}).fetchall()}
        # the others were recorded before (a ticker that restarted, a schedule set again)
        messages = [m for m in due.messages if m.message_id not in recorded]
        # Sent before their rows are written, so before the commit: the sweeper cannot see the rows
        # and send them a second time, and a row is stamped enqueued only once the broker has its
        # message (one write per job, no update after the send). A ticker that dies here rolls
        # back; the next one records the same slots (same ids) and sends what is missing.
        if messages:
            sent = _send(broker, messages)
            conn.execute(JOBS["insert_many"], due.job_rows(messages, sent=sent))
    return len(rows), len(messages)


class _Batch:
    """The jobs of one batch of due schedules, and each schedule's next slot.

    Schedules that share a cron, zone, misfire policy and slot share the arithmetic: 10,000
    "every minute" schedules cost one computation, not 10,000. The next slot depends on the cron
    and zone alone.
    """

    def __init__(self, now: dt.datetime, grace: dt.timedelta) -> None:
        self.now, self.grace = now, grace
        self.messages: list[dramatiq.Message] = []
        #: each job's command hash: one per schedule, however many of its slots are emitted
        self.hashes: dict[str, str] = {}
        self.advances: dict[str, list[Any]] = {"names": [], "next": [], "last": []}
        self._plans: dict[tuple[Any, ...], list[tuple[dt.datetime, str]]] = {}
        self._next: dict[tuple[str, str], dt.datetime] = {}
        self._queues: dict[str, str] = {}

    def add(self, row: dict[str, Any]) -> None:
        name, cron, zone = row["name"], row["cron"], row["timezone"]
        emitted = self._planned(row)
        if emitted:
            type_, command = row["command_type"], row["command"]
            queue = self._queue(type_)
            digest = command_hash(command)
            for _, at in emitted:
                options = {"schema_version": SCHEMA_VERSION, "scheduled_at": at, "schedule": name}
                job_id = _job_id(name, at)
                self.messages.append(to_message(job_id, type_, queue, command, options))
                self.hashes[job_id] = digest
        if (cron, zone) not in self._next:
            self._next[cron, zone] = slots.after(cron, zone, self.now)[0]
        self.advances["names"].append(name)
        self.advances["next"].append(self._next[cron, zone])
        self.advances["last"].append(emitted[-1][0] if emitted else None)

    def _planned(self, row: dict[str, Any]) -> list[tuple[dt.datetime, str]]:
        """The slots to emit, each with its UTC ISO form (the job id's and ``scheduled_at``'s)."""
        # the due query gives the misfire policy as text: equal policies read alike
        key = (row["cron"], row["timezone"], row["misfire"], row["next_fire_at"])
        if key not in self._plans:
            emitted = plan({**row, "misfire": json.loads(row["misfire"])}, self.now, self.grace)
            self._plans[key] = [(slot, slot.astimezone(dt.UTC).isoformat()) for slot in emitted]
        return self._plans[key]

    def _queue(self, command_type: str) -> str:
        if command_type not in self._queues:
            self._queues[command_type] = route(BY_TYPE[command_type]).queue
        return self._queues[command_type]

    def ids(self) -> list[str]:
        return [m.message_id for m in self.messages]

    def job_rows(self, messages: list[dramatiq.Message], *, sent: bool) -> dict[str, Any]:
        """The ``insert_many`` parameters of ``messages`` (some of this batch's, in its order)."""
        jobs = [
            {
                "id": m.message_id,
                "type": m.actor_name,
                "queue": m.queue_name,
                "command": m.args[0],
                "options": m.options,
                "command_hash": self.hashes[m.message_id],
            }
            for m in messages
        ]
        return {"jobs": Jsonb(jobs), "sent": sent}


def _send(broker: dramatiq.Broker, messages: list[dramatiq.Message]) -> bool:
    """Whether the broker took ``messages``; if not their rows are kept and the sweeper sends them."""
    try:
        enqueue_many(broker, messages)
    except Exception as err:  # noqa: BLE001 - the rows are kept; the sweeper sends them
        log.warning("broker unavailable (%s); %d scheduled jobs left to the sweeper", type(err).__name__, len(messages))
        return False
    return True


def seconds_until_due(now: dt.datetime) -> float | None:
    with db.pool().connection() as conn:
        row = conn.execute(SCHEDULES["next_due"]).fetchone()
    at = row["at"] if row else None
    return None if at is None else max(0.0, (at - now).total_seconds())
