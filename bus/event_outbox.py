"""The job events outbox: the ``job_events`` rows the trigger on ``jobs`` writes, as messages on the bus.

Every transition of a job into succeeded, failed, dead or cancelled adds one row in the same
transaction (migration 0012), so an event exists exactly when its transition committed. The relay
(workers/event_relay.py) calls ``relay_batch``: in one transaction it claims the oldest unpublished
rows (``FOR UPDATE SKIP LOCKED``: two relays never hold the same rows), hands one message per row
and destination queue to the broker, marks the rows published and commits. A relay that dies
between the broker's answer and the commit leaves the rows unpublished: the next one sends them
again under the same message ids, which is why delivery is at least once and consumers dedupe by
``message_id`` (the event id, derived from job, attempt and status: contracts/event.py).

The counter of published events lives in Redis beside the job counters, so any web process can
report it (``switchyard_events_published_total``); the backlog is counted from the table.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import msgspec
from psycopg_pool import AsyncConnectionPool

from bus import db
from bus.broker_adapter import enqueue_many
from bus.queries import load
from contracts.base import SCHEMA_VERSION
from contracts.event import EVENT_NAMES, JobEvent, event_id, summarize
from contracts.job import JobError, JobStatus

SQL = load("events")


def to_event(row: dict[str, Any]) -> JobEvent:
    """The event of one outbox row."""
    try:
        result, truncated = summarize(row["result"])
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError):
        result, truncated = None, True  # the job has it; an event it would fail is sent without it
    return JobEvent(
        id=event_id(row["job_id"], row["attempt"], row["status"]),
        event=EVENT_NAMES[row["status"]],
        job_id=row["job_id"],
        type=row["type"],
        queue=row["queue"],
        status=JobStatus(row["status"]),
        attempt=row["attempt"],
        occurred_at=row["occurred_at"],
        result=result,
        result_truncated=truncated,
        error=_error(row["error"]),
        caused_by=row["caused_by"],
        rule=row["rule"],
        chain_depth=row["chain_depth"],
    )


def _error(value: Any) -> JobError | None:
    # every writer stores a JobError; read it leniently all the same, a row that cannot become an
    # event would hold up every event behind it
    if value is None:
        return None
    if not isinstance(value, dict):
        return JobError(type="Error", message=str(value))
    return JobError(type=str(value.get("type") or "Error"), message=str(value.get("message") or ""))


def messages(event: JobEvent, queues: tuple[str, ...]) -> list[dramatiq.Message]:
    """The event's message on each of ``queues``: Dramatiq's seven fields, the event id as message id."""
    payload = msgspec.to_builtins(event)
    timestamp = int(event.occurred_at.timestamp() * 1000)
    return [
        dramatiq.Message(
            queue_name=queue,
            actor_name=event.event,
            args=(payload,),
            kwargs={},
            options={"schema_version": SCHEMA_VERSION},
            message_id=event.id,
            message_timestamp=timestamp,
        )
        for queue in queues
    ]


def relay_batch(broker: dramatiq.Broker, queues: tuple[str, ...], limit: int) -> int:
    """Publish up to ``limit`` unpublished events to ``queues``; how many were published. Raises what
    the broker or Postgres raised, with nothing marked: the rows wait for the next call."""
    with db.pool().connection() as conn, conn.transaction():
        rows = conn.execute(SQL["claim"], {"limit": limit}).fetchall()
        if not rows:
            return 0
        enqueue_many(broker, [m for row in rows for m in messages(to_event(row), queues)])
        conn.execute(SQL["mark_published"], {"ids": [row["id"] for row in rows]})
    return len(rows)


async def unpublished(pool: AsyncConnectionPool) -> int:
    """Events waiting for the relay (the ingress's metrics)."""
    async with pool.connection() as conn:
        row = await (await conn.execute(SQL["count_unpublished"])).fetchone()
    return int(row["n"]) if row else 0


def published_key(namespace: str) -> str:
    return f"switchyard:{namespace}:events"


def count_published(client: Any, namespace: str, n: int) -> None:
    """Add ``n`` to the published events counter (a redis-py client or pipeline)."""
    client.hincrby(published_key(namespace), "published", n)
