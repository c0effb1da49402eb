"""Loading rows into a catalog table: one transaction per load, the watermark advanced in it.

Used by pipeline nodes (SQL and Python), ingestion and initial data. A load locks
its table's watermark row first, so two loads of one table never interleave.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from bus.queries import load as load_queries
from pipelines_catalog import sqlbuild, staging
from pipelines_catalog.catalog import Table
from pipelines_catalog.sqlbuild import Statement

SQL = load_queries("pipelines")


def execute(conn: psycopg.Connection[Any], statement: Statement, params: dict[str, Any] | None = None) -> int:
    """Run one generated statement with exactly the parameters it names; returns its row count."""
    names = sqlbuild.placeholders(statement.tree)
    given = {**statement.params, **(params or {})}
    missing = names - given.keys()
    if missing:
        raise ValueError(f"no value for parameter(s) {', '.join(sorted(missing))}")
    cur = conn.execute(statement.postgres(), {k: given[k] for k in names})  # type: ignore[arg-type]
    return cur.rowcount


def begin(conn: psycopg.Connection[Any], table: Table) -> str | None:
    """Start a load of ``table`` in ``conn``'s transaction; returns its current watermark.

    Every table's load takes its row of ``pipeline_watermarks`` (a table without a watermark
    column has one too, its watermark always null): loads of one table never interleave,
    which the bulk ``MERGE`` of ``merge_staged`` relies on."""
    conn.execute("SET LOCAL TIME ZONE 'UTC'")
    row = conn.execute(SQL["watermark_lock"], {"table": table.qualified}).fetchone()
    assert row is not None
    if table.watermark is None:
        return None
    return row["watermark"] if isinstance(row, dict) else row[0]


def advance(conn: psycopg.Connection[Any], table: Table, *, run_date: dt.date | None, count_run: bool) -> str | None:
    """Set the watermark to the newest value of the watermark column (an index probe)."""
    if table.watermark is None:
        return None
    statement = sqlbuild.max_watermark(table)
    row = conn.cursor(row_factory=tuple_row).execute(statement.postgres(), {}).fetchone()
    watermark = row[0] if row else None
    data_date = dt.date.fromisoformat(watermark[:10]) if watermark else None
    conn.execute(
        SQL["watermark_advance"],
        {
            "table": table.qualified,
            "watermark": watermark,
            "data_date": data_date,
            "run_date": run_date,
            "count_run": count_run,
        },
    )
    return watermark


def stage_rows(
    conn: psycopg.Connection[Any], table: Table, rows: Iterable[tuple[Any, ...]], columns: list[str] | None = None
) -> str:
    """COPY rows (in ``columns`` order, default every column) into a new staging table; returns its batch id."""
    batch = staging.new_batch_id()
    conn.execute(staging.create(table, batch))
    with conn.cursor().copy(staging.copy(table, batch, columns)) as copy:
        for i, row in enumerate(rows):
            copy.write_row((i, *row))
    return batch


def merge_staged(
    conn: psycopg.Connection[Any], table: Table, batch: str, columns: list[str] | None = None, *, update: bool = True
) -> int:
    """Upsert a staged batch into ``table`` and drop the staging table; returns the rows written
    (new or changed: an identical row is neither rewritten nor counted). Without ``update`` rows
    whose key exists are left alone (initial data). The caller holds the table's load lock
    (``begin``): the MERGE is not safe against a concurrent load of the same keys.

    The staging table is analyzed first so the planner sizes the join (a hash join for a
    large batch, index probes for a small one). A batch that repeats a primary key makes
    the plain MERGE fail (a row matched twice, or a key inserted twice): then the last row
    of each key wins.
    """
    source = sqlbuild.table_ref(staging.SCHEMA, staging.table_name(batch))
    execute(conn, sqlbuild.analyze(source))
    try:
        with conn.transaction():  # a savepoint: the fallback starts from a clean state
            rows = execute(
                conn, sqlbuild.merge_from_staging(table, source, dedupe=False, columns=columns, update=update)
            )
    except (psycopg.errors.CardinalityViolation, psycopg.errors.UniqueViolation):
        rows = execute(conn, sqlbuild.merge_from_staging(table, source, dedupe=True, columns=columns, update=update))
    conn.execute(staging.drop(batch))
    return rows


def exists(conn: psycopg.Connection[Any], qualified: str) -> bool:
    """Whether the table ``schema.table`` exists (the name is a bound value, not SQL)."""
    row = conn.execute(staging.EXISTS, (qualified,)).fetchone()
    assert row is not None
    return bool(row["present"] if isinstance(row, dict) else row[0])


def staged_exists(conn: psycopg.Connection[Any], batch: str) -> bool:
    return exists(conn, staging.regclass_name(batch))


def lock_statement_timeout(conn: psycopg.Connection[Any], seconds: float) -> None:
    if seconds > 0:
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(f"{int(seconds * 1000)}ms")))
