"""Helpers of the rules tests: a database of their own, job events as the relay sends them, and
what the rules did (firings, follow-up jobs), read from the tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dramatiq
import msgspec
import psycopg
from psycopg.rows import dict_row

from bus.broker_adapter import enqueue
from contracts import JobStatus
from contracts.event import EVENT_NAMES, EVENTS_QUEUE, JobEvent, event_id, summarize


def query(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def event_of(row: dict[str, Any], status: str | None = None, **changes: Any) -> JobEvent:
    """The event of the job ``row`` ending its attempt in ``status`` (its own status by default)."""
    status = status or row["status"]
    result, cut = summarize(row["result"])
    options = row["options"] or {}
    event = JobEvent(
        id=event_id(row["id"], row["attempts"], status),
        event=EVENT_NAMES[status],
        job_id=row["id"],
        type=row["type"],
        queue=row["queue"],
        status=JobStatus(status),
        attempt=row["attempts"],
        occurred_at=row["finished_at"] or dt.datetime.now(dt.UTC),
        result=result,
        result_truncated=cut,
        caused_by=options.get("caused_by"),
        rule=options.get("rule"),
        chain_depth=options.get("chain_depth", 0),
    )
    return msgspec.structs.replace(event, **changes)


def send_event(broker: dramatiq.Broker, event: JobEvent) -> None:
    """The event on the events queue, as the relay sends it (message id = event id)."""
    enqueue(
        broker,
        dramatiq.Message(
            queue_name=EVENTS_QUEUE,
            actor_name=event.event,
            args=(msgspec.to_builtins(event),),
            kwargs={},
            options={"schema_version": 1},
            message_id=event.id,
            message_timestamp=dramatiq.common.current_millis(),
        ),
    )


def firings(database_url: str, rule: str | None = None) -> list[dict[str, Any]]:
    if rule is None:
        return query(database_url, "SELECT * FROM rule_firings ORDER BY id")
    return query(database_url, "SELECT * FROM rule_firings WHERE rule = %s ORDER BY id", rule)


def follow_ups(database_url: str, rule: str | None = None) -> list[dict[str, Any]]:
    if rule is None:
        return query(database_url, "SELECT * FROM jobs WHERE options ? 'caused_by' ORDER BY created_at")
    return query(
        database_url,
        "SELECT * FROM jobs WHERE options ? 'caused_by' AND options->>'rule' = %s ORDER BY created_at",
        rule,
    )
