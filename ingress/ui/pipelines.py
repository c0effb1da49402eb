"""Pipelines: each pipeline of the catalog as its DAG (drawn, and its nodes in run order), its latest
runs with per-node rows and durations, and the catalog's tables with their row counts and watermarks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import psycopg
from psycopg import sql
from starlette.requests import Request
from starlette.responses import Response

from ingress.errors import ApiError
from ingress.routes.pipelines import SQL, current_catalog, table_exists
from ingress.ui import dag, queries
from ingress.ui.web import error_page, page, render, state_of
from pipelines_catalog import catalog

RUNS_SHOWN = 10
#: a count that takes longer falls back to the planner's estimate (shown as such)
COUNT_TIMEOUT_MS = 1000


async def _row_count(conn: psycopg.AsyncConnection[Any], table: catalog.Table) -> dict[str, Any]:
    if not await table_exists(conn, table.qualified):
        return {"rows": None, "exact": True, "missing": True}
    try:
        async with conn.transaction():
            await conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(COUNT_TIMEOUT_MS)))
            query = sql.SQL("SELECT count(*) AS n FROM {}.{}").format(
                sql.Identifier(table.schema), sql.Identifier(table.name)
            )
            row = await (await conn.execute(query)).fetchone()
            return {"rows": row["n"] if row else 0, "exact": True, "missing": False}
    except psycopg.errors.QueryCanceled:
        row = await (await conn.execute(queries.ESTIMATE, {"name": table.qualified})).fetchone()
        return {"rows": row["estimate"] if row else None, "exact": False, "missing": False}


def _with_dependencies(cat: catalog.Catalog, prefixes: tuple[str, ...]) -> dict[str, catalog.Pipeline]:
    """The pipelines as the worker runs them: dependencies inferred from the tables each node reads.

    The compiler (sqlglot) is imported here, not at start: only this page needs it in the ingress.
    A catalog that does not compile is shown with its declared dependencies.
    """
    from pipelines_catalog import plan

    try:
        return plan.compile_catalog(cat, prefixes).pipelines
    except catalog.CatalogError:
        return dict(cat.pipelines)


@page
async def pipeline_list(request: Request) -> Response:
    state = state_of(request)
    try:
        cat = current_catalog(state)
    except ApiError as err:
        return error_page(request, 503, "Catalog invalid", str(err.detail))
    prefixes = tuple(p.strip() for p in state.settings.pipeline_modules.split(",") if p.strip())
    compiled = await anyio.to_thread.run_sync(_with_dependencies, cat, prefixes)
    pipelines = []
    async with state.pool.connection() as conn:
        for pipeline in compiled.values():
            params = {"pipeline_id": pipeline.id, "limit": RUNS_SHOWN, "before": None, "before_id": None}
            runs = await (await conn.execute(SQL["runs"], params)).fetchall()
            for run in runs:
                if run["finished_at"] and run["started_at"]:
                    run["duration_s"] = (run["finished_at"] - run["started_at"]).total_seconds()
            nodes = [(n.id, n.target, n.depends_on) for n in pipeline.nodes.values()]
            latest = {n["node"]: n["status"] for n in runs[0]["nodes"]} if runs else {}
            pipelines.append(
                {"pipeline": pipeline, "depths": dag.depths(nodes), "drawing": dag.layout(nodes, latest), "runs": runs}
            )
        names = sorted(cat.tables)
        marks = await (await conn.execute(SQL["watermarks"], {"tables": names})).fetchall()
        by_table = {m["table_name"]: m for m in marks}
        tables = []
        for name in names:
            table = cat.tables[name]
            count = await _row_count(conn, table)
            tables.append({"table": table, "watermark": by_table.get(name), **count})
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return render(request, "pipelines.html", pipelines=pipelines, tables=tables, version=cat.version, today=today)
