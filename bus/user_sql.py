"""The one check of SQL a user wrote (a pipeline node, a forecast's SQL source), parsed with sqlglot.

Accepted: exactly one read-only query (SELECT, UNION, VALUES, WITH ... SELECT). Refused: several
statements, DDL or DML anywhere inside (``WITH x AS (DELETE ...)``, ``SELECT ... INTO``, ``FOR
UPDATE``), server functions with side effects or access to the server, its files, settings or
other sessions (``pg_*``, ``lo_*``, ``dblink``, ``set_config``, ``current_setting``, ...), and
parameters other than the caller's. It is one of three fences: the query also runs in a READ ONLY
transaction, and, for the forecast source, as a role that may read only the exposed schemas
(workers/forecast/sources.py). The callers add their own rules (a node reads catalog tables only).
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

DIALECT = "postgres"
#: anything that writes, locks, changes the session or leaves the query
_FORBIDDEN = tuple(
    getattr(exp, name)
    for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Command", "Copy",
        "Set", "Into", "Lock", "Transaction", "Commit", "Rollback", "Grant", "Revoke", "Use", "Pragma",
        "Analyze", "LoadData", "Comment", "Kill", "Execute", "Describe", "Show",
    )
    if hasattr(exp, name)
)  # fmt: skip
#: functions that reach the server, its files, settings, sequences or other sessions
_DANGEROUS_FUNCTION = re.compile(
    r"^(pg_|lo_|dblink|set_config|current_setting|query_to_xml|table_to_xml|cursor_to_xml|database_to_xml"
    r"|schema_to_xml|nextval|setval|currval|lastval|txid_|xmlparse|format|read_|copy|system|inet_server"
    r"|inet_client|version$)",
    re.IGNORECASE,
)


class UnsafeQuery(ValueError):
    """What is wrong with the query: a phrase that reads after its name ("must be a SELECT query, not DELETE")."""


def function_name(node: exp.Func) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.sql_name()


def parse_read_only(text: str, *, parameters: tuple[str, ...] = (), table_functions: bool = True) -> exp.Query:
    """The query's tree, or UnsafeQuery. ``parameters``: the ``:name`` placeholders allowed;
    ``table_functions``: whether FROM may call one (``generate_series(...)``)."""
    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except (ParseError, SqlglotError) as err:
        raise UnsafeQuery(f"is not valid SQL: {str(err).splitlines()[0][:300]}") from None
    if len(statements) != 1:
        raise UnsafeQuery(f"must be exactly one statement; found {len(statements)} statements")
    (tree,) = statements
    if not isinstance(tree, exp.Query):
        raise UnsafeQuery(f"must be a SELECT query, not {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise UnsafeQuery(f"must only read: {node.key.upper()} is not allowed")
        if isinstance(node, exp.Func) and _DANGEROUS_FUNCTION.match(function_name(node) or ""):
            raise UnsafeQuery(f"function {function_name(node)}() is not allowed (it reaches the server)")
        if isinstance(node, exp.Placeholder) and node.name not in parameters:
            allowed = ", ".join(f":{p}" for p in parameters) or "none"
            raise UnsafeQuery(f"parameter {node.name or '?'!r} is unknown (allowed: {allowed})")
        if isinstance(node, (exp.Parameter, exp.SessionParameter)):
            raise UnsafeQuery("only named parameters (:name) may be used")
        if not table_functions and isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise UnsafeQuery("table functions are not allowed; read tables")
    return tree
