"""The SQL of a node, parsed with sqlglot and checked against the catalog before anything runs.

A node's SQL must pass the check of every user's query (bus/user_sql.py: one read-only query,
no DDL or DML inside, no server functions, parameters ``:run_date`` only) and read only catalog
tables and columns, written ``schema.table``, with no table functions. The checked query is
re-generated from its tree with every identifier quoted.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from bus.user_sql import DIALECT, UnsafeQuery, parse_read_only
from pipelines_catalog.catalog import Catalog, CatalogError, Table

#: parameters a node's SQL may use (``:run_date`` or ``%(run_date)s``)
NODE_PARAMETERS = ("run_date",)


class Checked(msgspec.Struct, frozen=True):
    """A node query that passed the checks."""

    query: Any  # sqlglot exp.Query, qualified and quoted
    reads: frozenset[str]  # catalog tables it reads
    columns: tuple[str, ...]  # its output columns, in order


def schema_of(catalog: Catalog) -> dict[str, dict[str, dict[str, str]]]:
    """The catalog as sqlglot's schema mapping: {schema: {table: {column: type}}}."""
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for table in catalog.tables.values():
        mapping.setdefault(table.schema, {})[table.name] = {c.name: c.type.sql for c in table.columns.values()}
    return mapping


def check(text: str, catalog: Catalog, *, file: str, key: str, schema: dict[str, Any] | None = None) -> Checked:
    """Parse and check one query. Raises ``CatalogError`` naming ``file`` and ``key``."""

    def fail(problem: str) -> CatalogError:
        return CatalogError(file, key, problem)

    try:
        tree = parse_read_only(text, parameters=NODE_PARAMETERS, table_functions=False)
    except UnsafeQuery as err:
        raise fail(str(err)) from None
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    reads: set[str] = set()
    for node in tree.find_all(exp.Table):
        if not node.db and node.name in ctes:
            continue
        name = f"{node.db}.{node.name}"
        if node.catalog or not node.db:
            raise fail(f"write tables as schema.table: {node.sql(DIALECT)!r}")
        if name not in catalog.tables:
            raise fail(f"table {name!r} is not in the catalog")
        reads.add(name)
    try:
        qualified = qualify(
            tree.copy(),
            schema=schema if schema is not None else schema_of(catalog),
            dialect=DIALECT,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
        )
    except OptimizeError as err:
        unknown = re.search(r"Column '([^']+)' could not be resolved", str(err))
        problem = f"unknown column {unknown[1]!r}" if unknown else str(err).split(". Line")[0]
        raise fail(problem) from None
    except SqlglotError as err:
        raise fail(f"cannot resolve the query's columns: {str(err).splitlines()[0]}") from None
    columns = tuple(qualified.named_selects)
    if not columns or any(not c for c in columns):
        raise fail("every output column needs a name (use AS)")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise fail(f"output column {duplicates[0]!r} appears twice")
    return Checked(query=qualified, reads=frozenset(reads), columns=columns)


def check_output(checked: Checked, target: Table, *, file: str, key: str) -> None:
    """The query's columns fill ``target``: every one is a column of it, the primary key
    and the watermark column are all there."""
    for column in checked.columns:
        if column not in target.columns:
            raise CatalogError(file, key, f"output column {column!r} is not a column of {target.qualified}")
    needed = [*target.primary_key, *([target.watermark] if target.watermark else [])]
    missing = [c for c in needed if c not in checked.columns]
    if missing:
        raise CatalogError(file, key, f"the output lacks {', '.join(map(repr, missing))} of {target.qualified}")
