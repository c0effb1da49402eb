"""The catalog: tables and pipelines declared in YAML files under ``CATALOG_DIR``.

Every ``*.yaml`` / ``*.yml`` file below the directory may hold ``tables:``,
``pipelines:``, ``retention_schedule:`` and ``rules:`` (a list of rules, contracts/rules.py: the
rules pool writes them into the ``rules`` table). Files are read with ``yaml.safe_load``
and checked here for structure (types, keys, references, the DAG); the SQL of the
nodes is checked against the catalog by ``pipelines_catalog.nodesql`` in the pool.
Every problem names the file, the key and what is wrong.

This module imports neither sqlglot nor polars: the ingress loads the catalog too.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from contracts import cron
from contracts.base import Identifier, QualifiedTable, SqlName
from contracts.rules import RuleSpec
from pipelines_catalog import types
from pipelines_catalog.types import ColumnType

#: functions a column default may be, besides a literal value
DEFAULT_FUNCTIONS = ("now()", "current_date", "current_timestamp")
_SHORTHAND = re.compile(r"^(?P<type>.+?)(?:\s+(?P<null>not\s+null|null))?$", re.IGNORECASE)


class CatalogError(ValueError):
    """A problem in one catalog file, at one key."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")
        self.file, self.key, self.problem = file, key, problem


class _Spec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ColumnSpec(_Spec, kw_only=True):
    type: str
    nullable: bool = True
    default: str | int | float | bool | None = None
    description: str = ""


class RetentionSpec(_Spec, kw_only=True):
    value: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    unit: Literal["day", "month", "year"] = "month"
    column: SqlName


class TableSpec(_Spec, kw_only=True):
    type: Literal["master", "transaction", "report"]
    description: str = ""
    columns: dict[str, Any]
    primary_key: Annotated[list[SqlName], msgspec.Meta(min_length=1)]
    watermark: SqlName | None = None
    retention: RetentionSpec | None = None
    initial: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=100_000)] | None = None


class ScheduleSpec(_Spec, kw_only=True):
    cron: Annotated[str, msgspec.Meta(min_length=9, max_length=255)]
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"


class NodeSpec(_Spec, kw_only=True):
    target: QualifiedTable
    description: str = ""
    #: a SELECT whose rows fill ``target``
    sql: str | None = None
    #: or a Python function ``module.function(frames, params) -> polars.DataFrame``
    function: str | None = None
    #: the function's input: name -> SELECT, each loaded as a polars DataFrame
    load: dict[str, str] | None = None
    depends_on: list[Identifier] = msgspec.field(default_factory=list)
    #: incremental runs re-read this many days below the watermark (late-arriving rows)
    lookback_days: Annotated[int, msgspec.Meta(ge=0, le=3660)] = 0


class PipelineSpec(_Spec, kw_only=True):
    description: str = ""
    schedule: str | ScheduleSpec | None = None
    #: run after a successful run of these pipelines
    triggers: list[Identifier] = msgspec.field(default_factory=list)
    #: all: each trigger succeeded since this pipeline last ran; any: one did
    trigger_rule: Literal["all", "any"] = "all"
    nodes: dict[str, Any]


class FileSpec(_Spec, kw_only=True):
    tables: dict[str, Any] = msgspec.field(default_factory=dict)
    pipelines: dict[str, Any] = msgspec.field(default_factory=dict)
    retention_schedule: str | ScheduleSpec | None = None
    rules: list[Any] = msgspec.field(default_factory=list)


# ---- the resolved catalog -------------------------------------------------------------


class Column(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: ColumnType
    nullable: bool
    default: str | int | float | bool | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not None


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    value: int
    unit: Literal["day", "month", "year"]
    column: str


class Table(msgspec.Struct, frozen=True, kw_only=True):
    schema: str
    name: str
    type: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    watermark: str | None
    retention: Retention | None
    initial: list[dict[str, Any]] | None
    description: str
    file: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def backup_schema(self) -> str:
        return f"{self.schema}_bk"


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    cron: str
    timezone: str


class Node(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    target: str
    sql: str | None
    function: str | None
    load: dict[str, str]
    depends_on: tuple[str, ...]
    lookback_days: int
    description: str


class Pipeline(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    nodes: dict[str, Node]  # in run order: every node after the nodes it depends on
    schedule: Schedule | None
    triggers: tuple[str, ...]
    trigger_rule: str
    description: str
    file: str


class CatalogRule(msgspec.Struct, frozen=True, kw_only=True):
    spec: RuleSpec
    file: str


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    root: str
    version: str
    tables: dict[str, Table]
    pipelines: dict[str, Pipeline]
    retention_schedule: Schedule | None
    #: by name, in the order of the files
    rules: dict[str, CatalogRule] = {}

    def table(self, qualified: str) -> Table:
        try:
            return self.tables[qualified]
        except KeyError:
            raise KeyError(f"table {qualified!r} is not in the catalog") from None

    def pipeline(self, pipeline_id: str) -> Pipeline:
        try:
            return self.pipelines[pipeline_id]
        except KeyError:
            raise KeyError(f"pipeline {pipeline_id!r} is not in the catalog") from None

    def downstream(self, pipeline_id: str) -> list[Pipeline]:
        """Pipelines that declared ``pipeline_id`` as a trigger."""
        return [p for p in self.pipelines.values() if pipeline_id in p.triggers]


# ---- loading -----------------------------------------------------------------------


def _convert(obj: Any, kind: type, file: str, key: str) -> Any:
    try:
        return msgspec.convert(obj, kind, strict=False)
    except msgspec.ValidationError as err:
        message, _, where = str(err).partition(" - at `$")
        sub = where.rstrip("`")
        raise CatalogError(file, key + sub, message.replace("`", "'")) from None


def _column(name: str, raw: Any, file: str, key: str) -> Column:
    if isinstance(raw, str):  # shorthand: "varchar(64) not null"
        match = _SHORTHAND.match(raw.strip())
        assert match is not None
        spec = ColumnSpec(type=match["type"], nullable=(match["null"] or "null").lower() == "null")
    else:
        spec = _convert(raw, ColumnSpec, file, key)
    try:
        ctype = types.parse(spec.type)
    except types.UnknownType as err:
        raise CatalogError(file, f"{key}.type", str(err)) from None
    if isinstance(spec.default, str) and spec.default.lower() in DEFAULT_FUNCTIONS and not ctype.is_temporal:
        raise CatalogError(file, f"{key}.default", f"{spec.default} is only a default of date or timestamp columns")
    return Column(name=name, type=ctype, nullable=spec.nullable, default=spec.default)


def _sql_name(value: str, file: str, key: str) -> str:
    _convert(value, SqlName, file, key)
    return value


def _table(qualified: str, raw: Any, file: str) -> Table:
    key = f"tables.{qualified}"
    _convert(qualified, QualifiedTable, file, key)
    schema, name = qualified.split(".")
    if schema.endswith("_bk") or schema.startswith("pg_") or schema in ("information_schema", "public"):
        raise CatalogError(file, key, f"schema {schema!r} is reserved (backups go to <schema>_bk; public holds ours)")
    spec: TableSpec = _convert(raw, TableSpec, file, key)
    if not spec.columns:
        raise CatalogError(file, f"{key}.columns", "a table needs at least one column")
    columns = {}
    for col_name, col_raw in spec.columns.items():
        col_key = f"{key}.columns.{col_name}"
        columns[col_name] = _column(_sql_name(str(col_name), file, col_key), col_raw, file, col_key)
    for i, pk in enumerate(spec.primary_key):
        if pk not in columns:
            raise CatalogError(file, f"{key}.primary_key[{i}]", f"{pk!r} is not a column of the table")
        if columns[pk].nullable:
            columns[pk] = msgspec.structs.replace(columns[pk], nullable=False)  # Postgres makes them NOT NULL anyway
    if len(set(spec.primary_key)) != len(spec.primary_key):
        raise CatalogError(file, f"{key}.primary_key", "a column is listed twice")
    for field, column in (
        ("watermark", spec.watermark),
        ("retention.column", spec.retention and spec.retention.column),
    ):
        if column is None:
            continue
        if column not in columns:
            raise CatalogError(file, f"{key}.{field}", f"{column!r} is not a column of the table")
        if not columns[column].type.is_temporal:
            raise CatalogError(file, f"{key}.{field}", f"{column!r} must be a date or timestamp column")
    retention = None
    if spec.retention is not None:
        retention = Retention(value=spec.retention.value, unit=spec.retention.unit, column=spec.retention.column)
    return Table(
        schema=schema,
        name=name,
        type=spec.type,
        columns=columns,
        primary_key=tuple(spec.primary_key),
        watermark=spec.watermark,
        retention=retention,
        initial=spec.initial,
        description=spec.description,
        file=file,
    )


def _schedule(raw: str | ScheduleSpec | None, file: str, key: str) -> Schedule | None:
    if raw is None:
        return None
    spec = ScheduleSpec(cron=raw) if isinstance(raw, str) else raw
    expr = " ".join(spec.cron.split())
    try:
        cron.check(expr)  # the ticker's own dialect: the schedule it gets is one it accepts
    except ValueError as err:
        raise CatalogError(file, f"{key}.cron" if not isinstance(raw, str) else key, str(err)) from None
    try:
        cron.check_zone(spec.timezone)
    except ValueError as err:
        raise CatalogError(file, f"{key}.timezone", str(err)) from None
    return Schedule(cron=expr, timezone=spec.timezone)


def _ordered(nodes: dict[str, Node], file: str, key: str) -> dict[str, Node]:
    """Nodes in dependency order (Kahn); a cycle is a catalog error naming its nodes."""
    remaining = {n.id: set(n.depends_on) for n in nodes.values()}
    ordered: dict[str, Node] = {}
    while remaining:
        ready = [n for n, deps in remaining.items() if not deps - ordered.keys()]
        if not ready:
            cycle = " -> ".join(sorted(remaining))
            raise CatalogError(file, f"{key}.nodes", f"the nodes form a cycle: {cycle}")
        for node_id in ready:  # declaration order among the ready ones
            ordered[node_id] = nodes[node_id]
            del remaining[node_id]
    return ordered


def _pipeline(pipeline_id: str, raw: Any, file: str, tables: dict[str, Table]) -> Pipeline:
    key = f"pipelines.{pipeline_id}"
    _convert(pipeline_id, Identifier, file, key)
    spec: PipelineSpec = _convert(raw, PipelineSpec, file, key)
    if not spec.nodes:
        raise CatalogError(file, f"{key}.nodes", "a pipeline needs at least one node")
    nodes: dict[str, Node] = {}
    writers: dict[str, str] = {}
    for node_id, node_raw in spec.nodes.items():
        node_key = f"{key}.nodes.{node_id}"
        _convert(str(node_id), Identifier, file, node_key)
        node: NodeSpec = _convert(node_raw, NodeSpec, file, node_key)
        if node.target not in tables:
            raise CatalogError(file, f"{node_key}.target", f"table {node.target!r} is not in the catalog")
        if (node.sql is None) == (node.function is None):
            raise CatalogError(file, node_key, "a node has either sql (a SELECT) or function (with load), not both")
        if node.function is not None:
            if not node.load:
                raise CatalogError(file, f"{node_key}.load", "a function node needs load: name -> SELECT")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", node.function):
                raise CatalogError(file, f"{node_key}.function", "a dotted path: package.module.function")
        elif node.load:
            raise CatalogError(file, f"{node_key}.load", "load is for function nodes")
        if node.target in writers:
            raise CatalogError(
                file, f"{node_key}.target", f"node {writers[node.target]!r} already fills {node.target!r}"
            )
        writers[node.target] = str(node_id)
        nodes[str(node_id)] = Node(
            id=str(node_id),
            target=node.target,
            sql=node.sql,
            function=node.function,
            load=dict(node.load or {}),
            depends_on=tuple(node.depends_on),
            lookback_days=node.lookback_days,
            description=node.description,
        )
    for node in nodes.values():
        for i, dep in enumerate(node.depends_on):
            if dep not in nodes:
                raise CatalogError(file, f"{key}.nodes.{node.id}.depends_on[{i}]", f"no node {dep!r} in {pipeline_id}")
    return Pipeline(
        id=pipeline_id,
        nodes=_ordered(nodes, file, key),
        schedule=_schedule(spec.schedule, file, f"{key}.schedule"),
        triggers=tuple(spec.triggers),
        trigger_rule=spec.trigger_rule,
        description=spec.description,
        file=file,
    )


def with_inferred_dependencies(pipeline: Pipeline, reads: dict[str, set[str]]) -> Pipeline:
    """Add ``a -> b`` when node b reads the table node a fills (``reads``: node -> tables),
    and re-order. A cycle found this way is a catalog error too."""
    filled_by = {n.target: n.id for n in pipeline.nodes.values()}
    nodes = {}
    for node in pipeline.nodes.values():
        inferred = {filled_by[t] for t in reads.get(node.id, set()) if t in filled_by and filled_by[t] != node.id}
        deps = tuple(dict.fromkeys([*node.depends_on, *sorted(inferred)]))
        nodes[node.id] = msgspec.structs.replace(node, depends_on=deps)
    ordered = _ordered(nodes, pipeline.file, f"pipelines.{pipeline.id}")
    return msgspec.structs.replace(pipeline, nodes=ordered)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load(root: str | Path) -> Catalog:
    """Read and check every catalog file under ``root``. Raises ``CatalogError``."""
    base = Path(root)
    if not base.is_dir():
        raise CatalogError(str(base), "", "the catalog directory does not exist (CATALOG_DIR)")
    digest = hashlib.sha256()
    parsed: list[tuple[str, FileSpec]] = []
    for path in files(base):
        rel = str(path.relative_to(base))
        text = path.read_bytes()
        digest.update(rel.encode() + b"\0" + text + b"\0")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise CatalogError(rel, "", f"not valid YAML: {err}") from None
        if raw is None:
            continue
        parsed.append((rel, _convert(raw, FileSpec, rel, "")))
    tables: dict[str, Table] = {}
    for rel, spec in parsed:
        for qualified, raw in spec.tables.items():
            if str(qualified) in tables:
                other = tables[str(qualified)].file
                raise CatalogError(rel, f"tables.{qualified}", f"already declared in {other}")
            tables[str(qualified)] = _table(str(qualified), raw, rel)
    pipelines: dict[str, Pipeline] = {}
    retention_schedule = None
    for rel, spec in parsed:
        for pipeline_id, raw in spec.pipelines.items():
            if str(pipeline_id) in pipelines:
                other = pipelines[str(pipeline_id)].file
                raise CatalogError(rel, f"pipelines.{pipeline_id}", f"already declared in {other}")
            pipelines[str(pipeline_id)] = _pipeline(str(pipeline_id), raw, rel, tables)
        if spec.retention_schedule is not None:
            if retention_schedule is not None:
                raise CatalogError(rel, "retention_schedule", "declared in two files")
            retention_schedule = _schedule(spec.retention_schedule, rel, "retention_schedule")
    rules: dict[str, CatalogRule] = {}
    for rel, spec in parsed:
        for i, raw in enumerate(spec.rules):
            rule: RuleSpec = _convert(raw, RuleSpec, rel, f"rules[{i}]")
            if rule.name in rules:
                raise CatalogError(
                    rel, f"rules[{i}].name", f"rule {rule.name!r} is already declared in {rules[rule.name].file}"
                )
            rules[rule.name] = CatalogRule(spec=rule, file=rel)
    for pipeline in pipelines.values():
        for i, upstream in enumerate(pipeline.triggers):
            if upstream not in pipelines or upstream == pipeline.id:
                problem = "a pipeline cannot trigger itself" if upstream == pipeline.id else "no such pipeline"
                raise CatalogError(pipeline.file, f"pipelines.{pipeline.id}.triggers[{i}]", f"{upstream!r}: {problem}")
    return Catalog(
        root=str(base),
        version=digest.hexdigest()[:16],
        tables=tables,
        pipelines=pipelines,
        retention_schedule=retention_schedule,
        rules=rules,
    )


@functools.lru_cache(maxsize=4)
def _cached(root: str, stamp: tuple[tuple[str, int, int], ...]) -> Catalog:
    return load(root)


def current(root: str | Path) -> Catalog:
    """The catalog under ``root``, re-read when a file is added, removed or changed."""
    base = Path(root)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files(base)) if base.is_dir() else ()
    return _cached(str(base), stamp)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
