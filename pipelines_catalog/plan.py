"""Compiling the catalog: every node's SQL checked and its statements built, once per
catalog version (the version is a hash of the files, so an edit recompiles)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import msgspec
from sqlglot import exp

from pipelines_catalog import nodesql, sqlbuild
from pipelines_catalog.catalog import Catalog, CatalogError, Node, Pipeline, Table, with_inferred_dependencies
from pipelines_catalog.nodesql import Checked
from pipelines_catalog.sqlbuild import Statement


class NodePlan(msgspec.Struct, frozen=True):
    node: Node
    target: Table
    query: Checked | None  # SQL node
    loads: dict[str, Checked]  # function node

    @property
    def kind(self) -> str:
        return "sql" if self.query is not None else "function"


class Compiled(msgspec.Struct, frozen=True):
    catalog: Catalog
    pipelines: dict[str, Pipeline]  # with dependencies inferred from the tables nodes read
    nodes: dict[str, dict[str, NodePlan]]  # pipeline id -> node id -> plan


def allowed_function(path: str, prefixes: tuple[str, ...]) -> bool:
    module = path.rsplit(".", 1)[0]
    return any(module == p or module.startswith(p + ".") for p in prefixes) and not path.rsplit(".", 1)[1].startswith(
        "_"
    )


def _compile_pipeline(catalog: Catalog, pipeline: Pipeline, schema: dict[str, Any], prefixes: tuple[str, ...]):
    plans: dict[str, NodePlan] = {}
    reads: dict[str, set[str]] = {}
    for node in pipeline.nodes.values():
        key = f"pipelines.{pipeline.id}.nodes.{node.id}"
        target = catalog.tables[node.target]
        if node.sql is not None:
            checked = nodesql.check(node.sql, catalog, file=pipeline.file, key=f"{key}.sql", schema=schema)
            nodesql.check_output(checked, target, file=pipeline.file, key=f"{key}.sql")
            plans[node.id] = NodePlan(node=node, target=target, query=checked, loads={})
            reads[node.id] = set(checked.reads)
        else:
            assert node.function is not None
            if not allowed_function(node.function, prefixes):
                allowed = ", ".join(prefixes) or "(none: PIPELINE_MODULES is empty)"
                raise CatalogError(
                    pipeline.file, f"{key}.function", f"{node.function!r} is outside the allowed modules: {allowed}"
                )
            loads = {
                name: nodesql.check(text, catalog, file=pipeline.file, key=f"{key}.load.{name}", schema=schema)
                for name, text in node.load.items()
            }
            plans[node.id] = NodePlan(node=node, target=target, query=None, loads=loads)
            reads[node.id] = {t for c in loads.values() for t in c.reads}
    inferred = with_inferred_dependencies(pipeline, reads)
    ordered = {n: msgspec.structs.replace(plans[n], node=inferred.nodes[n]) for n in inferred.nodes}
    return inferred, ordered


def _compile(catalog: Catalog, prefixes: tuple[str, ...]) -> Compiled:
    schema = nodesql.schema_of(catalog)
    pipelines, nodes = {}, {}
    for pipeline in catalog.pipelines.values():
        pipelines[pipeline.id], nodes[pipeline.id] = _compile_pipeline(catalog, pipeline, schema, prefixes)
    return Compiled(catalog=catalog, pipelines=pipelines, nodes=nodes)


_cache: dict[tuple[str, str, tuple[str, ...]], Compiled] = {}
_lock = threading.Lock()


def compile_catalog(catalog: Catalog, prefixes: tuple[str, ...]) -> Compiled:
    """Check every node of every pipeline, once per catalog version. Raises ``CatalogError``."""
    key = (catalog.root, catalog.version, prefixes)
    found = _cache.get(key)
    if found is None:
        found = _compile(catalog, prefixes)
        with _lock:
            if len(_cache) >= 8:
                _cache.clear()
            _cache[key] = found
    return found


# ---- statements of a node ------------------------------------------------------------


def window_params(
    mode: str, *, watermark: str | None, run_date: dt.date, start: dt.date | None, end: dt.date | None
) -> dict[str, Any]:
    if mode == "rerun":
        assert start is not None
        return {"swyd_start": start, "swyd_end": (end or start) + dt.timedelta(days=1), "run_date": run_date}
    params: dict[str, Any] = {"swyd_until": run_date + dt.timedelta(days=1), "run_date": run_date}
    if watermark is not None:
        params["swyd_watermark"] = watermark
    return params


def windowed(plan: NodePlan, query: Checked, mode: str, has_watermark: bool) -> exp.Expression | None:
    """The filter on the query's output: rows after the watermark (incremental) or in the window (rerun).
    None when the target has no watermark column (an incremental run then upserts every row)."""
    target = plan.target
    if target.watermark is None or target.watermark not in query.columns:
        return None
    if mode == "rerun":
        return sqlbuild.window(target, lower="swyd_start", upper="swyd_end")
    lower = "swyd_watermark" if has_watermark else None
    return sqlbuild.window(target, lower=lower, upper="swyd_until", lookback_days=plan.node.lookback_days)


def sql_statements(plan: NodePlan, mode: str, has_watermark: bool) -> list[Statement]:
    """What a SQL node runs, in one transaction: [DELETE window (rerun),] upsert."""
    assert plan.query is not None
    if mode == "rerun" and plan.target.watermark is None:
        raise ValueError(f"{plan.target.qualified} has no watermark column: a rerun window cannot be deleted")
    where = windowed(plan, plan.query, mode, has_watermark)
    load = sqlbuild.upsert(plan.target, list(plan.query.columns), plan.query.query.copy(), where)
    return [sqlbuild.delete_window(plan.target), load] if mode == "rerun" else [load]


def load_statement(plan: NodePlan, name: str, mode: str, has_watermark: bool) -> Statement:
    """A function node's input ``name``, filtered to the run's window when it has the watermark column."""
    query = plan.loads[name]
    where = windowed(plan, query, mode, has_watermark)
    if where is None:
        return Statement(query.query.copy())
    outer = (
        exp.select(*(sqlbuild.col(c, sqlbuild.SRC) for c in query.columns))
        .from_(exp.Subquery(this=query.query.copy(), alias=exp.TableAlias(this=sqlbuild.ident(sqlbuild.SRC))))
        .where(where)
    )
    return Statement(outer)


def describe(plan: NodePlan, mode: str, params: dict[str, Any]) -> dict[str, Any]:
    """The plan of one node as the ``plan`` command reports it."""
    has_watermark = "swyd_watermark" in params
    if plan.query is not None:
        statements = (
            sql_statements(plan, mode, has_watermark) if not (mode == "rerun" and plan.target.watermark is None) else []
        )
    else:
        statements = [load_statement(plan, name, mode, has_watermark) for name in plan.loads]
    return {
        "node": plan.node.id,
        "kind": plan.kind,
        "target": plan.target.qualified,
        "depends_on": list(plan.node.depends_on),
        "function": plan.node.function,
        "sql": [s.tree.sql(dialect="postgres", pretty=True) for s in statements],
        "params": {k: v for k, v in params.items() if any(k in sqlbuild.placeholders(s.tree) for s in statements)},
    }
