"""The SQL of a node, parsed with sqlglot and checked against the catalog before anything runs.

A node's SQL must be exactly one read-only query (SELECT, UNION, VALUES, WITH ...
SELECT) over catalog tables, written ``schema.table``. Rejected: several
statements, DDL or DML anywhere inside (``WITH x AS (DELETE ...)``, ``SELECT ... INTO``,
``FOR UPDATE``), tables or columns the catalog does not declare, table functions,
server functions with side effects or access to the server (``pg_*``, ``dblink``,
``set_config``, ``lo_*``...), and parameters other than ``:run_date``. The checked
query is re-generated from its tree with every identifier quoted.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from pipelines_catalog.catalog import Catalog, CatalogError, Table

DIALECT = "postgres"
#: parameters a node's SQL may use (``:run_date`` or ``%(run_date)s``)
NODE_PARAMETERS = ("run_date",)
_FORBIDDEN = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
    exp.Copy,
    exp.Set,
    exp.Into,
    exp.Lock,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Grant,
    exp.Revoke,
    exp.Use,
    exp.Pragma,
    exp.Analyze,
    exp.LoadData,
    exp.Comment,
    exp.Kill,
    exp.Execute,
    exp.Describe,
    exp.Show,
)
_DANGEROUS_FUNCTION = re.compile(
    r"^(pg_|lo_|dblink|set_config|current_setting|query_to_xml|table_to_xml|cursor_to_xml|database_to_xml"
    r"|schema_to_xml|nextval|setval|currval|lastval|txid_|xmlparse|format|read_|copy|system)",
    re.IGNORECASE,
)


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


def _function_name(node: exp.Func) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.sql_name()


def check(text: str, catalog: Catalog, *, file: str, key: str, schema: dict[str, Any] | None = None) -> Checked:
    """Parse and check one query. Raises ``CatalogError`` naming ``file`` and ``key``."""

    def fail(problem: str) -> CatalogError:
        return CatalogError(file, key, problem)

    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except (ParseError, SqlglotError) as err:
        raise fail(f"not valid SQL: {str(err).splitlines()[0]}") from None
    if len(statements) != 1:
        raise fail(f"one SELECT per node; found {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise fail(f"a node is a SELECT query, not {tree.key.upper()}")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    reads: set[str] = set()
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise fail(f"{node.key.upper()} is not allowed in a node's SELECT (it must only read)")
        if isinstance(node, exp.Func) and _DANGEROUS_FUNCTION.match(_function_name(node) or ""):
            raise fail(f"function {_function_name(node)}() is not allowed in a node's SELECT")
        if isinstance(node, exp.Placeholder) and node.name not in NODE_PARAMETERS:
            allowed = ", ".join(f":{p}" for p in NODE_PARAMETERS)
            raise fail(f"parameter {node.name or '?'!r} is unknown; a node may use {allowed}")
        if isinstance(node, (exp.Parameter, exp.SessionParameter)):
            raise fail("only named parameters (:run_date) may be used")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise fail("table functions are not allowed; read catalog tables")
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
