"""The ``pipelines`` pool: catalog-driven tables and SQL pipelines on Postgres.

Every command reads the catalog (``CATALOG_DIR``) and checks all of it, node SQL
included, before it touches a table: a catalog error fails the job at once
(``dead``, the message naming file, key and problem) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from bus import db, settings
from bus.errors import PermanentError
from contracts import pipelines
from pipelines_catalog import catalog, plan
from pipelines_catalog.catalog import CatalogError
from pipelines_catalog.plan import Compiled
from workers.actors import JobContext, handles
from workers.pipelines import loading, runner, schedules, tables
from workers.worker_broker import setup

setup()

T = TypeVar("T")


def modules() -> tuple[str, ...]:
    return tuple(p.strip() for p in settings.get().pipeline_modules.split(",") if p.strip())


def compiled() -> Compiled:
    try:
        return plan.compile_catalog(catalog.current(settings.get().catalog_dir), modules())
    except CatalogError as err:
        raise PermanentError(f"catalog: {err}") from None


def permanent(call: Callable[[], T]) -> T:
    """Bad input (an unknown table, invalid rows, a catalog problem) fails the job at once."""
    try:
        return call()
    except (KeyError, ValueError, CatalogError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise PermanentError(str(message)) from None


@handles(pipelines.Setup)
def setup_tables(command: pipelines.Setup, job: JobContext) -> dict[str, Any]:
    cat = compiled().catalog
    chosen = permanent(lambda: tables.select(cat, command.tables))
    result = permanent(
        lambda: tables.setup(cat, chosen, initial_data=command.initial_data, drop=command.drop_before_create)
    )
    # the catalog's cron schedules go live with its tables (idempotent: unchanged ones are kept as they are)
    return {**result, "schedules": permanent(lambda: schedules.register(cat))}


@handles(pipelines.Run)
def run(command: pipelines.Run, job: JobContext) -> dict[str, Any]:
    plans = compiled()
    permanent(lambda: plans.catalog.pipeline(command.pipeline_id))
    ctx = runner.context(command, job.id, modules(), settings.get().pipeline_statement_timeout_s)
    outcome = permanent(lambda: runner.run(plans, command, ctx, job.progress))
    if outcome.status == "failed":
        skipped = [n["node"] for n in outcome.nodes if n["status"] == "skipped"]
        tail = f"; not run: {', '.join(skipped)}" if skipped else ""
        raise PermanentError(f"pipeline {command.pipeline_id!r}: {outcome.error}{tail}")
    triggered = schedules.publish_triggered(plans.catalog, command.pipeline_id, job.id)
    return {**msgspec.to_builtins(outcome), "triggered_jobs": triggered}


@handles(pipelines.Retention)
def retention(command: pipelines.Retention, job: JobContext) -> dict[str, Any]:
    cat = compiled().catalog
    chosen = permanent(lambda: tables.select(cat, command.tables, need_retention=True))
    return tables.retention(chosen, command.run_date or catalog.today(), dry_run=command.dry_run)


@handles(pipelines.Ingest)
def ingest(command: pipelines.Ingest, job: JobContext) -> dict[str, Any]:
    table = permanent(lambda: compiled().catalog.table(command.table))
    if command.staged is not None:
        return tables.ingest_staged(table, command.staged)
    assert command.rows is not None
    return permanent(lambda: tables.ingest_rows(table, command.rows or []))


@handles(pipelines.Plan)
def plan_pipeline(command: pipelines.Plan, job: JobContext) -> dict[str, Any]:
    plans = compiled()
    permanent(lambda: plans.catalog.pipeline(command.pipeline_id))
    pipeline = plans.pipelines[command.pipeline_id]
    targets = [n.target for n in pipeline.nodes.values()]
    with db.pool().connection() as conn:
        rows = conn.execute(loading.SQL["watermarks"], {"tables": targets}).fetchall()
    marks = {r["table_name"]: r["watermark"] for r in rows}
    run_date = command.run_date or catalog.today()
    start = (command.start or run_date) if command.mode == "rerun" else None
    nodes = []
    for node in plans.nodes[pipeline.id].values():
        params = plan.window_params(
            command.mode, watermark=marks.get(node.target.qualified), run_date=run_date, start=start, end=command.end
        )
        nodes.append(plan.describe(node, command.mode, params))
    return {
        "pipeline_id": pipeline.id,
        "mode": command.mode,
        "catalog_version": plans.catalog.version,
        "order": list(pipeline.nodes),
        "nodes": nodes,
    }
