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

from contracts import pipelines as commands
from contracts.schedules import ScheduleSet, ScheduleSpec
from workers import db
from workers.pipelines import loading
from workers.pipelines.catalog import Catalog

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

    from workers.jobstore import shared
    from workers.submission import submit

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
    from workers import settings
    from workers.pipelines.catalog import current

    found: list[Any] = [msgspec.to_builtins(s) for s in schedule_commands(current(settings.get().catalog_dir))]
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(found)).decode() + "\n")


if __name__ == "__main__":
    main()
