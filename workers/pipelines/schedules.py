"""When pipelines run without being asked: cron schedules (emitted by the ticker) and
triggers on upstream success (published by this pool).

``schedule_commands(catalog)`` is every ``schedule.set`` command the catalog implies:
one per pipeline with a ``schedule`` (a ``pipelines.run``), and one for the catalog's
``retention_schedule`` (a ``pipelines.retention``). ``python -m workers.pipelines.schedules``
prints them as JSON, ready for ``python -m ingress publish -``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec

from bus import db
from bus import schedule_store as store
from contracts import pipelines as commands
from contracts.schedules import ScheduleSet, ScheduleSpec
from pipelines_catalog.catalog import Catalog
from workers.pipelines import loading

log = logging.getLogger(__name__)
#: schedule names the catalog owns (a schedule.set replaces the one of the same name)
PREFIX = "pipelines."


def schedule_commands(catalog: Catalog) -> list[ScheduleSet]:
    found = []
    for pipeline in catalog.pipelines.values():
        if pipeline.schedule is not None:
            spec = ScheduleSpec(
                name=f"{PREFIX}run.{pipeline.id}",
                command=commands.Run(pipeline_id=pipeline.id),
                cron=pipeline.schedule.cron,
                timezone=pipeline.schedule.timezone,
            )
            found.append(ScheduleSet(schedule=spec))
    if catalog.retention_schedule is not None:
        spec = ScheduleSpec(
            name=f"{PREFIX}retention",
            command=commands.Retention(),
            cron=catalog.retention_schedule.cron,
            timezone=catalog.retention_schedule.timezone,
        )
        found.append(ScheduleSet(schedule=spec))
    return found


def register(catalog: Catalog) -> list[dict[str, Any]]:
    """Upsert the catalog's schedules (``schedule_commands``) into the schedule store, in one
    transaction, so they are live without a ``schedule.set``. Idempotent: a schedule whose
    cron, time zone and command already match is left as it is (its next slot, and an
    ``enabled``, ``misfire`` or ``alert`` changed over the API, are kept); a changed one
    takes the catalog's cron, time zone and command and keeps those other settings."""
    report = []
    with db.pool().connection() as conn, conn.transaction():
        for command in schedule_commands(catalog):
            spec = command.schedule
            wanted = {"cron": spec.cron, "timezone": spec.timezone, "command": msgspec.to_builtins(spec.command)}
            row = conn.execute(store.SQL["get_for_update"], {"name": spec.name}).fetchone()
            if row is None:
                status = "created"
                store.upsert(conn, spec)
            else:
                current = msgspec.to_builtins(store.to_spec(row))
                if all(current.get(k) == v for k, v in wanted.items()):
                    status = "unchanged"
                else:
                    status = "updated"
                    store.upsert(conn, msgspec.convert({**current, **wanted}, ScheduleSpec))
            report.append({"name": spec.name, "cron": spec.cron, "timezone": spec.timezone, "status": status})
    return report


def ready(catalog: Catalog, pipeline_id: str) -> bool:
    """trigger_rule all: each upstream pipeline succeeded since this one last started."""
    pipeline = catalog.pipelines[pipeline_id]
    if pipeline.trigger_rule == "any" or len(pipeline.triggers) == 1:
        return True
    with db.pool().connection() as conn:
        row = conn.execute(
            loading.SQL["triggers_ready"], {"triggers": list(pipeline.triggers), "pipeline_id": pipeline_id}
        ).fetchone()
    return bool(row) and row["ready"] == len(pipeline.triggers)


def publish_triggered(catalog: Catalog, upstream: str, run_id: str) -> list[str]:
    """Runs of the pipelines triggered by ``upstream``'s successful run ``run_id``.

    The idempotency key is (downstream, upstream run): a redelivered upstream message,
    or a retry of it, publishes nothing twice.
    """
    import dramatiq

    from bus.jobstore import shared
    from bus.submission import submit

    published = []
    for pipeline in catalog.downstream(upstream):
        if not ready(catalog, pipeline.id):
            log.info("%s: waiting for its other triggers before running", pipeline.id)
            continue
        command = commands.Run(pipeline_id=pipeline.id, triggered_by=run_id)
        job = submit(
            shared(), dramatiq.get_broker(), command, idempotency_key=f"pipelines.trigger:{pipeline.id}:{run_id}"
        )
        published.append(job.id)
    return published


def main() -> None:
    from bus import settings
    from pipelines_catalog.catalog import current

    found: list[Any] = [msgspec.to_builtins(s) for s in schedule_commands(current(settings.get().catalog_dir))]
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(found)).decode() + "\n")


if __name__ == "__main__":
    main()
