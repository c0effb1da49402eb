"""Every statement the pool runs on catalog tables, built as a sqlglot expression tree.

Identifiers are quoted ``Identifier`` nodes made from checked catalog names; values are
``Placeholder`` nodes bound at execution. The same tree renders for Postgres (psycopg's
``%(name)s``) and for DuckDB (``$name``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec
from sqlglot import exp

from pipelines_catalog.catalog import Column, Table

PG = "postgres"
#: alias of the node's query inside the generated INSERT
SRC = "src"
#: alias of the target table in ON CONFLICT ... WHERE
TGT = "tgt"


class Statement(msgspec.Struct, frozen=True):
    tree: Any  # sqlglot expression
    params: dict[str, Any] = {}

    def postgres(self) -> str:
        """The SQL for psycopg: placeholders ``%(name)s``, any other ``%`` doubled."""
        text = self.tree.sql(dialect=PG)
        names = "|".join(re.escape(p) for p in sorted(placeholders(self.tree)))
        keep = re.compile(rf"%(?!\((?:{names})\)s)") if names else re.compile("%")
        return keep.sub("%%", text)

    def duckdb(self) -> str:
        return to_duckdb(self.tree).sql(dialect="duckdb")


def placeholders(tree: exp.Expression) -> set[str]:
    return {p.name for p in tree.find_all(exp.Placeholder)}


def to_duckdb(tree: exp.Expression) -> exp.Expression:
    """DuckDB spells a few things differently: VARCHAR(n) has no length there."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.VARCHAR:
            return exp.DataType.build("TEXT")
        return node

    return tree.copy().transform(fix)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def table_ref(schema: str, name: str, alias: str | None = None) -> exp.Table:
    ref = exp.Table(this=ident(name), db=ident(schema))
    if alias:
        ref.set("alias", exp.TableAlias(this=ident(alias)))
    return ref


def target_ref(table: Table, schema: str | None = None, alias: str | None = None) -> exp.Table:
    return table_ref(schema or table.schema, table.name, alias)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def param(name: str) -> exp.Placeholder:
    return exp.Placeholder(this=name)


def cast(expression: exp.Expression, type_sql: str) -> exp.Cast:
    return exp.Cast(this=expression, to=exp.DataType.build(type_sql, dialect=PG))


# ---- DDL ---------------------------------------------------------------------------


def _default(column: Column) -> exp.Expression | None:
    value = column.default
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in ("now()", "current_timestamp"):
        return exp.CurrentTimestamp()
    if isinstance(value, str) and value.lower() == "current_date":
        return exp.CurrentDate()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return cast(exp.Literal.number(value), column.type.sql)
    return cast(exp.Literal.string(str(value)), column.type.sql)


def column_def(column: Column, *, constraints: bool = True) -> exp.ColumnDef:
    kinds: list[exp.Expression] = []
    if constraints and not column.nullable:
        kinds.append(exp.NotNullColumnConstraint())
    default = _default(column) if constraints else None
    if default is not None:
        kinds.append(exp.DefaultColumnConstraint(this=default))
    return exp.ColumnDef(
        this=ident(column.name),
        kind=exp.DataType.build(column.type.sql, dialect=PG),
        constraints=[exp.ColumnConstraint(kind=k) for k in kinds] or None,
    )


def create_schema(schema: str) -> Statement:
    return Statement(exp.Create(this=exp.Table(this=ident(schema)), kind="SCHEMA", exists=True))


def create_table(table: Table, schema: str | None = None) -> Statement:
    defs: list[exp.Expression] = [column_def(c) for c in table.columns.values()]
    defs.append(exp.PrimaryKey(expressions=[ident(c) for c in table.primary_key]))
    create = exp.Create(this=exp.Schema(this=target_ref(table, schema), expressions=defs), kind="TABLE", exists=True)
    return Statement(create)


def drop_table(table: Table) -> Statement:
    return Statement(exp.Drop(this=target_ref(table), kind="TABLE", exists=True))


def create_watermark_index(table: Table) -> Statement | None:
    """Incremental loads and retention filter on these columns; MAX() of them is an index probe."""
    if table.watermark is None:
        return None
    index = exp.Index(
        this=ident(f"{table.name}_{table.watermark}_idx"[:63]),
        table=target_ref(table),
        params=exp.IndexParameters(columns=[exp.Ordered(this=col(table.watermark), nulls_first=False)]),
    )
    return Statement(exp.Create(this=index, kind="INDEX", exists=True))


# ---- loads -------------------------------------------------------------------------


def on_conflict(table: Table, columns: list[str], *, only_changed: bool = True, update: bool = True) -> exp.OnConflict:
    """Upsert by primary key. With ``only_changed`` an identical row is not rewritten (no dead
    tuple, no WAL) and not counted."""
    keys = [exp.Ordered(this=col(c), nulls_first=False) for c in table.primary_key]
    updated = [c for c in columns if c not in table.primary_key] if update else []
    if not updated:
        return exp.OnConflict(action=exp.Var(this="DO NOTHING"), conflict_keys=keys)
    changed = exp.or_(*(exp.NullSafeNEQ(this=col(c, TGT), expression=col(c, "excluded")) for c in updated))
    return exp.OnConflict(
        action=exp.Var(this="DO UPDATE"),
        conflict_keys=keys,
        expressions=[exp.EQ(this=col(c), expression=col(c, "excluded")) for c in updated],
        where=exp.Where(this=changed) if only_changed else None,
    )


def upsert(
    table: Table,
    columns: list[str],
    source: exp.Query,
    where: exp.Expression | None = None,
    select: list[exp.Expression] | None = None,
    params: dict[str, Any] | None = None,
    update: bool = True,
) -> Statement:
    """``INSERT INTO target (columns) SELECT columns FROM (source) AS src [WHERE ...] ON CONFLICT ...``"""
    outer = exp.select(*(select or [col(c, SRC) for c in columns])).from_(
        exp.Subquery(this=source, alias=exp.TableAlias(this=ident(SRC)))
    )
    if where is not None:
        outer = outer.where(where)
    insert = exp.Insert(
        this=exp.Schema(this=target_ref(table, alias=TGT), expressions=[ident(c) for c in columns]),
        expression=outer,
        conflict=on_conflict(table, columns, update=update),
    )
    return Statement(insert, params or {})


def window(table: Table, *, lower: str | None, upper: str | None, lookback_days: int = 0) -> exp.Expression | None:
    """The rows of the date window on the target's watermark column, as seen in the query's output.

    ``lower`` / ``upper`` name parameters; lower is exclusive for incremental runs
    (``> watermark``) and inclusive for reruns, upper always exclusive.
    """
    assert table.watermark is not None
    wm = col(table.watermark, SRC)
    wm_type = table.columns[table.watermark].type.sql
    parts: list[exp.Expression] = []
    if lower == "swyd_watermark":
        bound: exp.Expression = cast(param(lower), wm_type)
        if lookback_days:
            days = exp.Interval(this=exp.Literal.string(str(lookback_days)), unit=exp.var("DAY"))
            bound = exp.Sub(this=bound, expression=days)
        parts.append(exp.GT(this=wm, expression=bound))
    elif lower is not None:
        parts.append(exp.GTE(this=wm, expression=cast(param(lower), "date")))
    if upper is not None:
        parts.append(exp.LT(this=wm, expression=cast(param(upper), "date")))
    return exp.and_(*parts) if parts else None


def delete_window(table: Table) -> Statement:
    """Rerun: the target's rows of the window ``swyd_start`` <= watermark column < ``swyd_end``."""
    assert table.watermark is not None
    wm = col(table.watermark)
    condition = exp.and_(
        exp.GTE(this=wm, expression=cast(param("swyd_start"), "date")),
        exp.LT(this=wm, expression=cast(param("swyd_end"), "date")),
    )
    return Statement(exp.Delete(this=target_ref(table), where=exp.Where(this=condition)))


def max_watermark(table: Table) -> Statement:
    assert table.watermark is not None
    query = exp.select(cast(exp.Max(this=col(table.watermark)), "text")).from_(target_ref(table))
    return Statement(query)


def from_staging(
    table: Table, staging: exp.Table, *, dedupe: bool, columns: list[str] | None = None, update: bool = True
) -> Statement:
    """Upsert a staged batch (``columns``: default every column of the table). A column with a
    default takes it where the row had no value; with ``dedupe`` the last row of each primary
    key wins (a batch may repeat a key)."""
    names = columns or list(table.columns)
    select: list[exp.Expression] = []
    for name in names:
        column = table.columns[name]
        default = _default(column)
        value: exp.Expression = col(column.name, SRC)
        if default is not None:
            value = exp.Coalesce(this=value, expressions=[default])
        select.append(exp.alias_(value, column.name, quoted=True))
    source = exp.select(exp.Star()).from_(staging)
    if dedupe:
        keys = [col(c) for c in table.primary_key]
        source = source.distinct(*keys).order_by(*keys, exp.Ordered(this=col("_row"), desc=True))
    return upsert(table, names, source, select=select, update=update)


def merge_from_staging(
    table: Table, staging: exp.Table, *, dedupe: bool, columns: list[str] | None = None, update: bool = True
) -> Statement:
    """The bulk form of ``from_staging``: ``MERGE INTO target USING (staged rows) ON primary key``.

    Same result and row count as the upsert (only new or changed rows are written and
    counted; without ``update`` existing keys are left alone), but Postgres joins the
    batch to the table once (a hash join for a large batch, index probes for a small one)
    instead of a speculative insertion per row. MERGE is not safe against a concurrent
    insert of the same key: the caller holds the table's load lock (``loading.begin``).
    A batch that repeats a key fails (cardinality or unique violation) without ``dedupe``.
    """
    names = columns or list(table.columns)
    select: list[exp.Expression] = []
    for name in names:
        column = table.columns[name]
        default = _default(column)
        value: exp.Expression = col(column.name)
        if default is not None:
            value = exp.Coalesce(this=value, expressions=[default])
        select.append(exp.alias_(value, column.name, quoted=True))
    source = exp.select(*select).from_(staging)
    if dedupe:
        keys = [col(c) for c in table.primary_key]
        source = source.distinct(*keys).order_by(*keys, exp.Ordered(this=col("_row"), desc=True))
    on = exp.and_(*(exp.EQ(this=col(c, TGT), expression=col(c, SRC)) for c in table.primary_key))
    whens: list[exp.Expression] = []
    updated = [c for c in names if c not in table.primary_key] if update else []
    if updated:
        changed = exp.or_(*(exp.NullSafeNEQ(this=col(c, TGT), expression=col(c, SRC)) for c in updated))
        whens.append(
            exp.When(
                matched=True,
                source=False,
                condition=exp.Paren(this=changed),
                then=exp.Update(expressions=[exp.EQ(this=col(c), expression=col(c, SRC)) for c in updated]),
            )
        )
    whens.append(
        exp.When(
            matched=False,
            source=False,
            then=exp.Insert(
                this=exp.Tuple(expressions=[col(c) for c in names]),
                expression=exp.Tuple(expressions=[col(c, SRC) for c in names]),
            ),
        )
    )
    merge = exp.Merge(
        this=target_ref(table, alias=TGT),
        using=exp.Subquery(this=source, alias=exp.TableAlias(this=ident(SRC))),
        on=on,
        whens=exp.Whens(expressions=whens),
    )
    return Statement(merge)


def analyze(relation: exp.Table) -> Statement:
    """Fresh statistics for a just-filled staging table, so the planner sizes the MERGE's join."""
    return Statement(exp.Analyze(tables=[relation]))


# ---- retention ---------------------------------------------------------------------


def expired(table: Table) -> exp.Expression:
    assert table.retention is not None
    return exp.LT(this=col(table.retention.column), expression=cast(param("swyd_cutoff"), "date"))


def count_expired(table: Table) -> Statement:
    query = exp.select(exp.Count(this=exp.Star())).from_(target_ref(table)).where(expired(table))
    return Statement(query)


def backup_expired(table: Table) -> Statement:
    """Copy the expired rows into ``<schema>_bk.<table>`` (a row backed up before is replaced)."""
    names = list(table.columns)
    source = exp.select(*(col(c) for c in names)).from_(target_ref(table)).where(expired(table))
    insert = exp.Insert(
        this=exp.Schema(this=target_ref(table, table.backup_schema, alias=TGT), expressions=[ident(c) for c in names]),
        expression=source,
        conflict=on_conflict(table, names, only_changed=False),  # every moved row counts
    )
    return Statement(insert)


def delete_expired(table: Table) -> Statement:
    return Statement(exp.Delete(this=target_ref(table), where=exp.Where(this=expired(table))))


def cutoff(run_date: dt.date, value: int, unit: str) -> dt.date:
    """First day kept: ``value`` units before ``run_date``; months and years count from the
    start of the month (rows of a month expire together, as the original did)."""
    if unit == "day":
        return run_date - dt.timedelta(days=value)
    months = value * (12 if unit == "year" else 1)
    index = run_date.year * 12 + run_date.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)
