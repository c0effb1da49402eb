"""Staging tables: where a batch of rows lands (by COPY) before it is upserted.

Shared by the ingress (``PUT /v1/tables/{schema}.{table}/rows`` stages a batch while
the body streams in) and the pool (inline rows, Python nodes). These two statements
are composed with ``psycopg.sql`` instead of sqlglot, which has no ``COPY ... FROM
STDIN`` and stays out of the web process: every identifier is a quoted
``sql.Identifier`` of a checked catalog name, every type comes from the closed list
of ``pipelines_catalog.types``.
"""

from __future__ import annotations

import uuid

from psycopg import sql

from pipelines_catalog.catalog import Table

SCHEMA = "pipelines_staging"  # created by migration 0003
#: ordinal of a row in its batch: the last row of a repeated primary key wins
ORDINAL = "_row"


def new_batch_id() -> str:
    return uuid.uuid4().hex


def table_name(batch: str) -> str:
    return f"b_{batch}"


def identifier(batch: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, table_name(batch))


def create(table: Table, batch: str) -> sql.Composed:
    """An unlogged table with the target's columns and types, no constraints (the upsert applies them)."""
    columns = [sql.SQL("{} bigint").format(sql.Identifier(ORDINAL))]
    columns += [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type.sql)) for c in table.columns.values()]
    return sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(identifier(batch), sql.SQL(", ").join(columns))


def copy(table: Table, batch: str, columns: list[str] | None = None, *, csv: bool = False) -> sql.Composed:
    """COPY in the text format, or as CSV whose unquoted ``null`` is NULL (``RowSchema.copy_csv``)."""
    names = [ORDINAL, *(columns or table.columns)]
    options = sql.SQL(" (FORMAT csv, NULL 'null')" if csv else "")
    return sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        identifier(batch), sql.SQL(", ").join(sql.Identifier(n) for n in names), options
    )


def drop(batch: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {}").format(identifier(batch))


def rename(batch: str, to: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} RENAME TO {}").format(identifier(batch), sql.Identifier(table_name(to)))


EXISTS = "SELECT to_regclass(%s) IS NOT NULL AS present"


def regclass_name(batch: str) -> str:
    return f"{SCHEMA}.{table_name(batch)}"
