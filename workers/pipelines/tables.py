"""Table operations: setup (schemas, tables, initial data), retention with backup, ingestion."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from bus import db
from pipelines_catalog import sqlbuild
from pipelines_catalog.catalog import Catalog, CatalogError, Table
from pipelines_catalog.rows import RowError, RowSchema
from workers.pipelines import loading

SQL = loading.SQL


def describe(error: RowError) -> str:
    return f"row {error.row}" + (f" column {error.column!r}" if error.column else "") + f": {error.message}"


class BadRows(ValueError):
    def __init__(self, table: str, errors: list[RowError], where: str = "") -> None:
        shown = "; ".join(
            f"row {e.row}" + (f" column {e.column!r}" if e.column else "") + f": {e.message}" for e in errors[:20]
        )
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__(f"{where}{table}: {len(errors)} invalid value(s): {shown}{more}")
        self.errors = errors


def select(catalog: Catalog, names: list[str] | None, *, need_retention: bool = False) -> list[Table]:
    if names is None:
        tables = list(catalog.tables.values())
        return [t for t in tables if t.retention is not None] if need_retention else tables
    chosen = []
    for name in dict.fromkeys(names):
        table = catalog.table(name)  # KeyError names it
        if need_retention and table.retention is None:
            raise KeyError(f"table {name!r} has no retention in the catalog")
        chosen.append(table)
    return chosen


# ---- setup -------------------------------------------------------------------------


def setup(catalog: Catalog, tables: list[Table], *, initial_data: bool, drop: bool) -> dict[str, Any]:
    """Create what is missing, in one transaction (Postgres DDL is transactional): running it
    twice changes nothing. ``drop`` first drops the tables (their data and watermarks)."""
    initial: dict[str, list[tuple[Any, ...]]] = {}
    if initial_data:
        for table in tables:
            if table.initial:
                rows, errors = RowSchema(table).validate(table.initial)
                if errors:
                    first = errors[0]
                    key = f"tables.{table.qualified}.initial[{first.row}]" + (
                        f".{first.column}" if first.column else ""
                    )
                    raise CatalogError(table.file, key, first.message)
                initial[table.qualified] = rows
    created, existing, loaded = [], [], {}
    with db.pool().connection() as conn:
        for table in tables:
            if drop:
                conn.execute(sqlbuild.drop_table(table).postgres(), {})
                conn.execute(SQL["watermark_forget"], {"table": table.qualified})
            present = loading.exists(conn, table.qualified)
            conn.execute(sqlbuild.create_schema(table.schema).postgres(), {})
            conn.execute(sqlbuild.create_table(table).postgres(), {})
            index = sqlbuild.create_watermark_index(table)
            if index is not None:
                conn.execute(index.postgres(), {})
            (existing if present else created).append(table.qualified)
        for table in tables:
            rows = initial.get(table.qualified)
            if rows:
                loading.begin(conn, table)
                # staged like any ingest (omitted columns get their defaults); rows already there are
                # kept: initial data never overwrites what was loaded since
                batch = loading.stage_rows(conn, table, rows)
                loaded[table.qualified] = loading.merge_staged(conn, table, batch, update=False)
                loading.advance(conn, table, run_date=None, count_run=False)
    return {"created": created, "existing": existing, "dropped": drop, "initial_rows": loaded}


# ---- retention ---------------------------------------------------------------------


def retention(tables: list[Table], run_date: dt.date, *, dry_run: bool) -> dict[str, Any]:
    """Per table, one transaction: copy the expired rows into ``<schema>_bk.<table>`` and delete
    them. REPEATABLE READ makes both statements see the same rows, so a row that expires
    meanwhile is neither copied nor deleted; the counts must match or nothing commits."""
    report = []
    for table in tables:
        assert table.retention is not None
        cut = sqlbuild.cutoff(run_date, table.retention.value, table.retention.unit)
        params = {"swyd_cutoff": cut}
        entry: dict[str, Any] = {"table": table.qualified, "cutoff": cut.isoformat(), "column": table.retention.column}
        with db.pool().connection() as conn:
            if dry_run:
                row = conn.execute(sqlbuild.count_expired(table).postgres(), params).fetchone()
                entry["rows_expired"] = next(iter(row.values())) if row else 0
                entry["backup"] = f"{table.backup_schema}.{table.name}"
                report.append(entry)
                continue
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction():
                    conn.execute(sqlbuild.create_schema(table.backup_schema).postgres(), {})
                    conn.execute(sqlbuild.create_table(table, table.backup_schema).postgres(), {})
                    copied = loading.execute(conn, sqlbuild.backup_expired(table), params)
                    deleted = loading.execute(conn, sqlbuild.delete_expired(table), params)
                    if copied != deleted:
                        raise RuntimeError(
                            f"{table.qualified}: copied {copied} rows but deleted {deleted}; rolled back"
                        )
            finally:
                conn.isolation_level = None
        entry.update(rows_moved=deleted, backup=f"{table.backup_schema}.{table.name}")
        report.append(entry)
    return {"run_date": run_date.isoformat(), "dry_run": dry_run, "tables": report}


# ---- ingestion ---------------------------------------------------------------------


def ingest_rows(table: Table, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Inline rows (a command): checked, staged and upserted in one transaction."""
    tuples, errors = RowSchema(table).validate(rows)
    if errors:
        raise BadRows(table.qualified, errors)
    with db.pool().connection() as conn:
        loading.begin(conn, table)
        batch = loading.stage_rows(conn, table, tuples)
        written = loading.merge_staged(conn, table, batch)
        watermark = loading.advance(conn, table, run_date=None, count_run=False)
    return {"table": table.qualified, "rows": len(tuples), "written": written, "watermark": watermark}


def ingest_staged(table: Table, batch: str) -> dict[str, Any]:
    """A batch the ingest route validated and staged: upserted, and its staging table dropped,
    in one transaction. A batch already gone was loaded by an earlier delivery."""
    with db.pool().connection() as conn:
        if not loading.staged_exists(conn, batch):
            return {"table": table.qualified, "batch": batch, "written": 0, "note": "batch already loaded"}
        loading.begin(conn, table)
        written = loading.merge_staged(conn, table, batch)
        watermark = loading.advance(conn, table, run_date=None, count_run=False)
    return {"table": table.qualified, "batch": batch, "written": written, "watermark": watermark}
