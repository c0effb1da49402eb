"""Accepting a command: record the job first, then hand the message to the broker.

The order is what makes a 202 safe: once the row is committed the command cannot
be lost. If the broker is down, or the process dies before the enqueue, the
sweeper finds the row (``enqueued_at IS NULL``) and enqueues it. A message sent
twice carries the same id, and the workers run a job to success once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq
import msgspec
import psycopg

from bus import broker_adapter
from bus.jobstore import SQL, row_params
from contracts import CommandBase, Job, build_message, job_id_for, route, type_of

#: what a reused idempotency key answers when the command differs (HTTP's 409, the CLI's error)
KEY_REUSED = "this Idempotency-Key was used for a different command"


class Submission(msgspec.Struct, kw_only=True, frozen=True):
    job_id: str
    type: str
    queue: str
    command: dict[str, Any]
    options: dict[str, Any]

    def message(self) -> dramatiq.Message:
        return to_message(self.job_id, self.type, self.queue, self.command, self.options)


def prepare(
    command: CommandBase,
    *,
    idempotency_key: str | None = None,
    trace_id: str | None = None,
    origin: Mapping[str, Any] | None = None,
) -> Submission:
    """The job of ``command``: its id (derived from ``idempotency_key`` when there is one), its row's
    fields and its message's options; ``origin``: more options kept with the job (a follow-up's
    caused_by, rule and chain_depth)."""
    job_id = job_id_for(idempotency_key)
    fields = build_message(command, job_id=job_id, idempotency_key=idempotency_key, trace_id=trace_id)
    return Submission(
        job_id=job_id,
        type=type_of(command),
        queue=route(command).queue,
        command=fields["args"][0],
        options={**fields["options"], **(origin or {})},
    )


def record(conn: psycopg.Connection, sub: Submission) -> bool:
    """Insert the job of ``sub`` in the caller's transaction, so it commits with the caller's other
    writes; False when a job of that id exists (nothing is written). Its message is the caller's to
    send after the commit: if it is never sent, the sweeper sends it."""
    params = row_params(job_id=sub.job_id, type=sub.type, queue=sub.queue, command=sub.command, options=sub.options)
    return conn.execute(SQL["insert"], params).fetchone() is not None


def to_message(
    job_id: str, type: str, queue: str, command: dict[str, Any], options: dict[str, Any]
) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue,
        actor_name=type,
        args=(command,),
        kwargs={},
        options=dict(options),
        message_id=job_id,
        message_timestamp=dramatiq.common.current_millis(),
    )


def message_for(job: Job, options: dict[str, Any] | None = None) -> dramatiq.Message:
    """The message that (re)runs a recorded job, with the same id."""
    return to_message(job.id, job.type, job.queue, job.command, options or {"schema_version": 1})


def submit(store: Any, broker: dramatiq.Broker, command: CommandBase, *, idempotency_key: str | None = None) -> Job:
    """Record and enqueue ``command`` from synchronous code (the CLI, Python callers).

    Same guarantees as ``POST /v1/commands``: the row is committed first; if the broker
    refuses the message the sweeper sends it later. A reused idempotency key returns the job
    it made (``submit_checked`` also says whether it was for the same command).
    """
    return submit_checked(store, broker, command, idempotency_key=idempotency_key)[0]


def submit_checked(
    store: Any, broker: dramatiq.Broker, command: CommandBase, *, idempotency_key: str | None = None
) -> tuple[Job, bool]:
    """``submit``, and whether the job is for this command: False when the idempotency key was
    used before for a different one (HTTP answers 409 then)."""
    sub = prepare(command, idempotency_key=idempotency_key)
    job, created, same_command = store.insert(
        job_id=sub.job_id, type=sub.type, queue=sub.queue, command=sub.command, options=sub.options
    )
    if created:
        try:
            broker_adapter.enqueue(broker, sub.message())
        except Exception:  # noqa: BLE001 - recorded; the sweeper enqueues it
            return job, True
        store.mark_enqueued([job.id])
    return job, same_command
