"""Running a pipeline: its nodes in dependency order, each in its own transaction.

A node's load and its target's watermark commit together. A failing node stops the
nodes that depend on it (recorded as ``skipped``); independent nodes still run, and
the run ends ``failed`` naming the node. The run's id is the job id: a retried or
redelivered message resumes the run, skipping the nodes that already succeeded
(their work is committed), so a rerun after a failure is safe.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg

from bus import db
from bus.errors import JobCancelled, redact
from bus.jobstore import unavailable
from contracts import pipelines as commands
from pipelines_catalog import plan
from pipelines_catalog.catalog import today
from pipelines_catalog.plan import Compiled, NodePlan
from workers.pipelines import loading

SQL = loading.SQL
MAX_ERROR = 1000


class NodeFailed(Exception):
    """A node's own error (bad data, a constraint, a bug in its function): retrying will not help."""


class Progress(msgspec.Struct):
    done: int
    total: int


class RunContext(msgspec.Struct, kw_only=True):
    run_id: str
    mode: str
    run_date: dt.date
    start: dt.date | None
    end: dt.date | None
    modules: tuple[str, ...]
    statement_timeout_s: float = 0.0


def _short(err: BaseException) -> str:
    text = redact(str(err).strip() or err.__class__.__name__).replace("\n", " ")
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR] + "…"


def import_function(path: str, modules: tuple[str, ...]) -> Callable[..., Any]:
    if not plan.allowed_function(path, modules):
        raise NodeFailed(f"function {path!r} is outside the allowed modules ({', '.join(modules)})")
    module_name, name = path.rsplit(".", 1)
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise NodeFailed(f"cannot import {path!r}: {_short(err)}") from None
    if not callable(function):
        raise NodeFailed(f"{path!r} is not a function")
    return function


def _run_sql_node(conn: psycopg.Connection[Any], node: NodePlan, ctx: RunContext) -> int:
    watermark = loading.begin(conn, node.target)
    loading.lock_statement_timeout(conn, ctx.statement_timeout_s)
    params = plan.window_params(ctx.mode, watermark=watermark, run_date=ctx.run_date, start=ctx.start, end=ctx.end)
    rows = 0
    for statement in plan.sql_statements(node, ctx.mode, watermark is not None):
        rows = loading.execute(conn, statement, params)  # the last statement is the load
    loading.advance(conn, node.target, run_date=ctx.run_date, count_run=ctx.mode == "incremental")
    return rows


def _run_function_node(conn: psycopg.Connection[Any], node: NodePlan, ctx: RunContext) -> int:
    import polars as pl  # only the pool imports polars, and only when a function node runs

    assert node.node.function is not None
    function = import_function(node.node.function, ctx.modules)
    watermark = loading.begin(conn, node.target)
    loading.lock_statement_timeout(conn, ctx.statement_timeout_s)
    params = plan.window_params(ctx.mode, watermark=watermark, run_date=ctx.run_date, start=ctx.start, end=ctx.end)
    frames: dict[str, pl.DataFrame] = {}
    for name in node.loads:
        statement = plan.load_statement(node, name, ctx.mode, watermark is not None)
        cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
        names = loading.sqlbuild.placeholders(statement.tree)
        cur.execute(statement.postgres(), {k: params[k] for k in names})
        columns = [d.name for d in cur.description or []]
        frames[name] = pl.DataFrame(cur.fetchall(), schema=columns, orient="row", infer_schema_length=None)
    public = {"mode": ctx.mode, "run_date": ctx.run_date, "start": ctx.start, "end": ctx.end, "watermark": watermark}
    try:
        result = function(frames, public)
    except Exception as err:
        raise NodeFailed(f"{node.node.function} raised {err.__class__.__name__}: {_short(err)}") from err
    if not isinstance(result, pl.DataFrame):
        raise NodeFailed(f"{node.node.function} returned {type(result).__name__}, not a polars DataFrame")
    target = node.target
    unknown = [c for c in result.columns if c not in target.columns]
    if unknown:
        raise NodeFailed(f"{node.node.function} returned column {unknown[0]!r}, not a column of {target.qualified}")
    missing = [c for c in (*target.primary_key, *([target.watermark] if target.watermark else [])) if c not in result]
    if missing:
        raise NodeFailed(f"{node.node.function} returned no {missing[0]!r} column ({target.qualified} needs it)")
    if ctx.mode == "rerun":
        if target.watermark is None:
            raise NodeFailed(f"{target.qualified} has no watermark column: a rerun window cannot be deleted")
        loading.execute(conn, loading.sqlbuild.delete_window(target), params)
    columns = list(result.columns)
    batch = loading.stage_rows(conn, target, result.iter_rows(), columns)
    rows = loading.merge_staged(conn, target, batch, columns)
    loading.advance(conn, target, run_date=ctx.run_date, count_run=ctx.mode == "incremental")
    return rows


def run_node(node: NodePlan, ctx: RunContext) -> int:
    """One node in one transaction: its load, and its target's watermark."""
    with db.pool().connection() as conn:
        try:
            if node.query is not None:
                return _run_sql_node(conn, node, ctx)
            return _run_function_node(conn, node, ctx)
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError, psycopg.errors.ProgrammingError) as err:
            raise NodeFailed(_short(err)) from err
        except psycopg.errors.QueryCanceled as err:
            raise NodeFailed(f"statement timeout: {_short(err)}") from err


class RunOutcome(msgspec.Struct):
    run_id: str
    pipeline_id: str
    status: str
    mode: str
    nodes: list[dict[str, Any]]
    failed_node: str | None = None
    error: str | None = None


def run(
    compiled: Compiled,
    command: commands.Run,
    ctx: RunContext,
    progress: Callable[[float, str], None],
) -> RunOutcome:
    pipeline = compiled.pipelines[command.pipeline_id]
    plans = compiled.nodes[command.pipeline_id]
    selected = list(pipeline.nodes)
    if command.nodes is not None:
        unknown = [n for n in command.nodes if n not in plans]
        if unknown:
            raise KeyError(f"pipeline {pipeline.id!r} has no node {unknown[0]!r}")
        selected = [n for n in selected if n in command.nodes]
    with db.pool().connection() as conn:
        conn.execute(
            SQL["run_start"],
            {
                "id": ctx.run_id,
                "pipeline_id": pipeline.id,
                "mode": ctx.mode,
                "run_date": ctx.run_date,
                "range_start": ctx.start,
                "range_end": (ctx.end or ctx.start) if ctx.start else None,
                "catalog_version": compiled.catalog.version,
                "triggered_by": command.triggered_by,
            },
        )
        done = {r["node_id"] for r in conn.execute(SQL["nodes_succeeded"], {"run_id": ctx.run_id}).fetchall()}
    results: list[dict[str, Any]] = []
    stopped: dict[str, str] = {}  # node -> the failed node that stopped it (itself when it failed)
    first_failure: tuple[str, str] | None = None
    for index, node_id in enumerate(selected):
        node = plans[node_id]
        blocker = next((stopped[d] for d in node.node.depends_on if d in stopped), None)
        if node_id in done:
            results.append({"node": node_id, "status": "succeeded", "resumed": True})
            continue
        if blocker is not None:
            stopped[node_id] = blocker
            _record(ctx.run_id, node, "skipped", None, None, f"not run: node {blocker!r} failed")
            results.append({"node": node_id, "status": "skipped", "because": blocker})
            continue
        try:
            progress(100.0 * index / len(selected), f"node {node_id} ({index + 1}/{len(selected)})")
        except JobCancelled:
            # between nodes: the finished ones stay committed, the run says where it stopped
            _finish(ctx.run_id, "failed", None, f"cancelled at the user's request before node {node_id!r}")
            raise
        started = time.perf_counter()
        try:
            rows = run_node(node, ctx)
        except NodeFailed as err:
            elapsed = int((time.perf_counter() - started) * 1000)
            stopped[node_id] = node_id
            first_failure = first_failure or (node_id, str(err))
            _record(ctx.run_id, node, "failed", None, elapsed, str(err))
            results.append({"node": node_id, "status": "failed", "error": str(err), "duration_ms": elapsed})
            continue
        except Exception as err:
            # the database or the network: record it, and let the job retry (resuming here)
            elapsed = int((time.perf_counter() - started) * 1000)
            message = _short(err)
            if not unavailable(err):
                _record(ctx.run_id, node, "failed", None, elapsed, message)
            _finish(ctx.run_id, "failed", node_id, f"node {node_id!r}: {message} (will retry)")
            raise
        elapsed = int((time.perf_counter() - started) * 1000)
        _record(ctx.run_id, node, "succeeded", rows, elapsed, None)
        results.append({"node": node_id, "status": "succeeded", "rows": rows, "duration_ms": elapsed})
    progress(100.0, "done")
    if first_failure is not None:
        failed_node, message = first_failure
        error = f"node {failed_node!r} failed: {message}"
        _finish(ctx.run_id, "failed", failed_node, error)
        return RunOutcome(ctx.run_id, pipeline.id, "failed", ctx.mode, results, failed_node, error)
    _finish(ctx.run_id, "succeeded", None, None)
    return RunOutcome(ctx.run_id, pipeline.id, "succeeded", ctx.mode, results)


def _record(run_id: str, node: NodePlan, status: str, rows: int | None, ms: int | None, error: str | None) -> None:
    with db.pool().connection() as conn:
        conn.execute(
            SQL["node_done"],
            {
                "run_id": run_id,
                "node_id": node.node.id,
                "target": node.target.qualified,
                "status": status,
                "rows": rows,
                "duration_ms": ms,
                "error": error,
            },
        )


def _finish(run_id: str, status: str, failed_node: str | None, error: str | None) -> None:
    with db.pool().connection() as conn:
        conn.execute(SQL["run_finish"], {"id": run_id, "status": status, "failed_node": failed_node, "error": error})


def context(command: commands.Run, run_id: str, modules: tuple[str, ...], timeout_s: float = 0.0) -> RunContext:
    return RunContext(
        run_id=run_id,
        mode=command.mode,
        run_date=command.run_date or today(),
        start=command.start,
        end=command.end or command.start,
        modules=modules,
        statement_timeout_s=timeout_s,
    )
