"""The schedule store: create, replace, change and delete schedules atomically.

A schedule row carries its next slot (``next_fire_at``); writing a schedule computes
it, so the ticker only ever reads rows that are due.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from bus import db, outbound, settings, slots
from bus.queries import load
from contracts import type_of
from contracts.cron import shortest_interval_s
from contracts.schedules import ScheduleSpec

SQL = load("schedules")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BadSchedule(ValueError):
    """A schedule its contract accepts but this deployment refuses (a 422 naming ``path``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} (at {path})")
        self.path = path
        self.message = message


def check_alert(spec: ScheduleSpec) -> None:
    """An alert's webhook may not point at our own network (bus/outbound.py). Checked when a
    schedule is written, and again by every delivery (the name may resolve otherwise later)."""
    if spec.alert is None:
        return
    try:
        outbound.check_destination(spec.alert.webhook_url)
    except outbound.Refused as err:
        raise BadSchedule("$.alert.webhook_url", f"webhook_url is refused: {err}") from None


def check_interval(spec: ScheduleSpec) -> None:
    """A cron firing more often than MIN_SCHEDULE_INTERVAL_S allows floods its pool: refused when the
    schedule is written (a change of the setting applies to the schedules written after it)."""
    least = settings.get().min_schedule_interval_s
    shortest = shortest_interval_s(spec.cron, least)
    if shortest is not None:
        raise BadSchedule(
            "$.cron",
            f"two slots of this cron are {shortest} s apart; this deployment allows no less than {least:g} s "
            "between slots (MIN_SCHEDULE_INTERVAL_S)",
        )


def params(spec: ScheduleSpec, at: dt.datetime | None = None) -> dict[str, Any]:
    check_alert(spec)
    check_interval(spec)
    return {
        "name": spec.name,
        "cron": spec.cron,
        "timezone": spec.timezone,
        "misfire": Jsonb(msgspec.to_builtins(spec.misfire)),
        "enabled": spec.enabled,
        "command": Jsonb(msgspec.to_builtins(spec.command)),
        "command_type": type_of(spec.command),
        "alert": None if spec.alert is None else Jsonb(msgspec.to_builtins(spec.alert)),
        "next_fire_at": slots.after(spec.cron, spec.timezone, at or now())[0] if spec.enabled else None,
    }


def to_spec(row: dict[str, Any]) -> ScheduleSpec:
    return msgspec.convert(
        {
            "name": row["name"],
            "command": row["command"],
            "cron": row["cron"],
            "timezone": row["timezone"],
            "misfire": row["misfire"],
            "enabled": row["enabled"],
            **({"alert": row["alert"]} if row["alert"] else {}),
        },
        ScheduleSpec,
    )


def upsert(conn: psycopg.Connection, spec: ScheduleSpec) -> dict[str, Any]:
    """Create or replace; the caller's transaction makes it atomic with its other writes."""
    row = conn.execute(SQL["upsert"], params(spec)).fetchone()
    assert row is not None
    return row


def set_schedule(spec: ScheduleSpec) -> dict[str, Any]:
    with db.pool().connection() as conn:
        return upsert(conn, spec)


def create(spec: ScheduleSpec) -> dict[str, Any] | None:
    """Create a new schedule; None when the name is taken (nothing is replaced)."""
    with db.pool().connection() as conn:
        return conn.execute(SQL["insert"], params(spec)).fetchone()


def patch(name: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Apply the given fields to the schedule ``name`` (validated as a whole). None: no such schedule."""
    with db.pool().connection() as conn, conn.transaction():
        row = conn.execute(SQL["get_for_update"], {"name": name}).fetchone()
        if row is None:
            return None
        current = msgspec.to_builtins(to_spec(row))
        spec = msgspec.convert({**current, **changes, "name": name}, ScheduleSpec)
        return upsert(conn, spec)


def delete(name: str, conn: psycopg.Connection | None = None) -> bool:
    if conn is not None:
        return conn.execute(SQL["delete"], {"name": name}).fetchone() is not None
    with db.pool().connection() as own:
        return own.execute(SQL["delete"], {"name": name}).fetchone() is not None


def get(name: str) -> dict[str, Any] | None:
    with db.pool().connection() as conn:
        return conn.execute(SQL["get"], {"name": name}).fetchone()


def page(after: str = "", limit: int = 100) -> list[dict[str, Any]]:
    with db.pool().connection() as conn:
        return conn.execute(SQL["list"], {"after": after, "limit": limit}).fetchall()


def view(row: dict[str, Any], upcoming: int = 5) -> dict[str, Any]:
    """A schedule as the API shows it, with its next fire times in UTC and in its zone."""
    tz = slots.zone(row["timezone"])
    times = slots.after(row["cron"], row["timezone"], now(), upcoming) if row["enabled"] else []
    return {
        "name": row["name"],
        "cron": row["cron"],
        "timezone": row["timezone"],
        "misfire": row["misfire"],
        "enabled": row["enabled"],
        "command": row["command"],
        "alert": row["alert"],
        "alert_state": row["alert_state"],
        "next_fire_times": [t.isoformat() for t in times],
        "next_fire_times_local": [t.astimezone(tz).isoformat() for t in times],
        "last_slot": row["last_slot"],
        "last_fired_at": row["last_fired_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
