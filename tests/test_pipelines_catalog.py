"""The catalog and the SQL the pipelines pool generates, without a server: validation
errors name file, key and problem; node SQL is checked before anything runs; the
generated statements also run on DuckDB."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines_catalog import plan, sqlbuild
from pipelines_catalog.catalog import CatalogError, load
from pipelines_catalog.rows import RowSchema
from workers.pipelines.schedules import schedule_commands

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("catalog", "tests.pipelines_functions")

TABLES = """
tables:
  src.events:
    type: transaction
    columns:
      event_id: bigint not null
      day: date not null
      value: integer not null
      note: varchar(20)
    primary_key: [event_id]
    watermark: day
    retention: {value: 3, unit: day, column: day}
  mart.daily:
    type: report
    columns: {day: date not null, total: bigint not null}
    primary_key: [day]
    watermark: day
"""


def catalog_with(tmp_path: Path, pipelines: str = "", tables: str = TABLES) -> Any:
    (tmp_path / "tables.yaml").write_text(textwrap.dedent(tables))
    if pipelines:
        (tmp_path / "pipelines.yaml").write_text(textwrap.dedent(pipelines))
    return load(tmp_path)


def node(sql: str, target: str = "mart.daily") -> str:
    return f"""
pipelines:
  p:
    nodes:
      n:
        target: {target}
        sql: "{sql}"
"""


def compile_error(tmp_path: Path, pipelines: str) -> CatalogError:
    with pytest.raises(CatalogError) as err:
        plan.compile_catalog(catalog_with(tmp_path, pipelines), MODULES)
    return err.value


def test_the_example_catalog_compiles_with_its_dag_and_schedules() -> None:
    catalog = load(ROOT / "catalog")
    compiled = plan.compile_catalog(catalog, MODULES)
    assert list(compiled.pipelines["daily_sales"].nodes) == ["daily_sales", "category_sales"]
    assert compiled.pipelines["daily_sales"].nodes["category_sales"].depends_on == ("daily_sales",)
    assert catalog.pipelines["top_articles"].triggers == ("daily_sales",)
    assert plan.compile_catalog(catalog, MODULES) is compiled  # cached per catalog version
    schedules = {s.schedule.name: s.schedule for s in schedule_commands(catalog)}
    run = schedules["pipelines.run.daily_sales"]
    assert (run.cron, run.timezone, run.command.pipeline_id) == ("15 2 * * *", "UTC", "daily_sales")  # type: ignore[union-attr]
    assert schedules["pipelines.retention"].command.tables is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tables", "key", "problem"),
    [
        (
            TABLES.replace("bigint not null\n      day", "bigintt not null\n      day"),
            "columns.event_id.type",
            "not a supported type",
        ),
        (TABLES.replace("primary_key: [event_id]", "primary_key: [evt]"), "primary_key[0]", "not a column"),
        (
            TABLES.replace("watermark: day\n    retention", "watermark: value\n    retention"),
            "watermark",
            "date or timestamp",
        ),
        (TABLES.replace("type: transaction", "type: fact"), "src.events.type", "Invalid enum value 'fact'"),
        (TABLES.replace("src.events:", 'src.events"; DROP TABLE x; --:'), "tables.src.events", "matching regex"),
        (TABLES.replace("note: varchar(20)", '"no te": text'), "columns.no te", "matching regex"),
        (TABLES.replace("note: varchar(20)", "note: text; drop table x"), "columns.note.type", "not a supported type"),
        (TABLES.replace("unit: day", "unit: week"), "retention.unit", "Invalid enum value 'week'"),
        (TABLES + "    colour: red\n", "mart.daily", "unknown field 'colour'"),
    ],
)
def test_table_errors_name_the_file_the_key_and_the_problem(
    tmp_path: Path, tables: str, key: str, problem: str
) -> None:
    with pytest.raises(CatalogError) as err:
        catalog_with(tmp_path, tables=tables)
    assert err.value.file == "tables.yaml"
    assert key in err.value.key and problem in err.value.problem, str(err.value)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").write_text("tables: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(CatalogError, match=r"evil\.yaml: not valid YAML"):
        load(tmp_path)


def test_a_cycle_is_a_validation_error(tmp_path: Path) -> None:
    pipelines = """
    pipelines:
      p:
        nodes:
          a: {target: mart.daily, sql: "SELECT day, count(*) AS total FROM src.events GROUP BY day", depends_on: [b]}
          b: {target: src.events, sql: "SELECT event_id, day, value FROM src.events", depends_on: [a]}
    """
    with pytest.raises(CatalogError, match=r"pipelines.yaml: pipelines.p.nodes: the nodes form a cycle: a -> b"):
        catalog_with(tmp_path, pipelines)


def test_a_cycle_through_the_tables_nodes_read_is_found_too(tmp_path: Path) -> None:
    pipelines = """
    pipelines:
      p:
        nodes:
          a: {target: mart.daily, sql: "SELECT day, count(*) AS total FROM src.events GROUP BY day"}
          b: {target: src.events, sql: "SELECT 1 AS event_id, day, 1 AS value FROM mart.daily"}
    """
    assert "cycle" in str(compile_error(tmp_path, pipelines))


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT day, count(*) AS total FROM src.nope GROUP BY day", "table 'src.nope' is not in the catalog"),
        ("SELECT day, sum(valu) AS total FROM src.events GROUP BY day", "unknown column 'valu'"),
        (
            "SELECT day, count(*) AS total, 1 AS extra FROM src.events GROUP BY day",
            "'extra' is not a column of mart.daily",
        ),
        ("SELECT count(*) AS total FROM src.events", "lacks 'day'"),
        ("SELECT day, 1 AS total FROM src.events; DROP TABLE src.events", "found 2 statements"),
        ("DELETE FROM src.events", "a SELECT query, not DELETE"),
        ("DROP TABLE src.events", "a SELECT query, not DROP"),
        ("INSERT INTO mart.daily SELECT day, 1 FROM src.events", "a SELECT query, not INSERT"),
        (
            "WITH gone AS (DELETE FROM src.events RETURNING day) SELECT day, 1 AS total FROM gone",
            "DELETE is not allowed",
        ),
        ("SELECT day, 1 AS total INTO mart.copy FROM src.events", "INTO is not allowed"),
        ("SELECT day, 1 AS total FROM src.events FOR UPDATE", "LOCK is not allowed"),
        ("SELECT day, pg_sleep(10) AS total FROM src.events", "pg_sleep() is not allowed"),
        (
            "SELECT day, 1 AS total FROM src.events WHERE set_config('role', 'x', false) = 'x'",
            "set_config() is not allowed",
        ),
        ("SELECT current_date AS day, count(*) AS total FROM pg_catalog.pg_authid", "not in the catalog"),
        ("SELECT day, 1 AS total FROM events", "write tables as schema.table"),
        ("SELECT day, 1 AS total FROM src.events WHERE day > :since", "parameter 'since' is unknown"),
        ("SELECT day, 1 AS total FROM generate_series(1, 3) AS day", "table functions are not allowed"),
        ("SELECT day, 1 AS total FROM src.events WHERE note = 'x''; DROP TABLE src.events; --'", None),
        ("SELEC day FROM src.events", "not valid SQL"),
    ],
)
def test_node_sql_is_checked_against_the_catalog_before_anything_runs(
    tmp_path: Path, sql: str, problem: str | None
) -> None:
    pipelines = node(sql.replace('"', '\\"'))
    if problem is None:  # a quote inside a string literal is data, and stays data
        compiled = plan.compile_catalog(catalog_with(tmp_path, pipelines), MODULES)
        [statement] = plan.sql_statements(compiled.nodes["p"]["n"], "incremental", False)
        assert "'x''; DROP TABLE src.events; --'" in statement.postgres()
        return
    err = compile_error(tmp_path, pipelines)
    assert err.file == "pipelines.yaml" and err.key == "pipelines.p.nodes.n.sql"
    assert problem in err.problem, err.problem


def test_a_function_node_must_be_inside_the_allowed_modules(tmp_path: Path) -> None:
    pipelines = """
    pipelines:
      p:
        nodes:
          n:
            target: mart.daily
            function: os.system
            load: {events: "SELECT day, value FROM src.events"}
    """
    err = compile_error(tmp_path, pipelines)
    assert err.key == "pipelines.p.nodes.n.function" and "outside the allowed modules" in err.problem


def test_rows_are_checked_against_the_column_types() -> None:
    table = load(ROOT / "catalog").tables["retail.sales"]
    rows, errors = RowSchema(table).validate(
        [
            {"sale_id": 1, "article_code": "A", "sold_on": "2024-01-01", "quantity": 1, "amount": "1.50"},
            {"sale_id": 2, "article_code": "A" * 65, "sold_on": "01/02/2024", "quantity": 1.5, "amount": "x"},
            {"sale_id": None, "article_code": "A", "sold_on": "2024-01-01", "quantity": 1, "amount": 1},
        ]
    )
    assert rows == []
    assert {(e.row, e.column) for e in errors} == {
        (1, "article_code"),
        (1, "sold_on"),
        (1, "quantity"),
        (1, "amount"),
        (2, "sale_id"),
    }
    rows, errors = RowSchema(table).validate(
        [{"sale_id": 1, "article_code": "A", "sold_on": "2024-01-01", "quantity": 1, "amount": "1.50"}]
    )
    assert not errors and rows[0][:3] == (1, "A", dt.date(2024, 1, 1)) and rows[0][5] is None


def test_the_generated_sql_transpiles_to_duckdb_and_runs_a_pipeline_there(tmp_path: Path) -> None:
    """The example pipeline's statements, rendered for DuckDB, run there: incremental then rerun."""
    catalog = load(ROOT / "catalog")
    compiled = plan.compile_catalog(catalog, MODULES)
    db = duckdb.connect()
    for table in catalog.tables.values():
        db.execute(sqlbuild.create_schema(table.schema).duckdb())
        db.execute(sqlbuild.create_table(table).duckdb())
    db.execute(
        "INSERT INTO retail.articles (article_code, name, category) VALUES"
        " ('A', 'Apples', 'fruit'), ('B', 'Bread', 'bakery'), ('P', 'Pears', 'fruit')"
    )
    sales = [(1, "A", "2024-05-01", 2, 4.0), (2, "B", "2024-05-01", 1, 3.0), (3, "P", "2024-05-02", 1, 2.5)]
    db.executemany(
        "INSERT INTO retail.sales (sale_id, article_code, sold_on, quantity, amount) VALUES (?, ?, ?, ?, ?)", sales
    )

    def run(mode: str, **window: Any) -> None:
        for node_plan in compiled.nodes["daily_sales"].values():
            row = db.execute(sqlbuild.max_watermark(node_plan.target).duckdb()).fetchone()
            mark = row[0] if row else None
            params = plan.window_params(mode, watermark=mark, run_date=dt.date(2024, 5, 2), **window)
            for statement in plan.sql_statements(node_plan, mode, mark is not None):
                names = sqlbuild.placeholders(statement.tree)
                db.execute(statement.duckdb(), {k: params[k] for k in names})

    run("incremental", start=None, end=None)
    expected = [
        (dt.date(2024, 5, 1), "bakery", 3.0),
        (dt.date(2024, 5, 1), "fruit", 4.0),
        (dt.date(2024, 5, 2), "fruit", 2.5),
    ]
    got = db.execute(
        "SELECT sold_on, category, CAST(amount AS DOUBLE) FROM mart.category_sales ORDER BY 1, 2"
    ).fetchall()
    assert got == expected
    db.execute("UPDATE retail.sales SET amount = 5 WHERE sale_id = 1")
    run("rerun", start=dt.date(2024, 5, 1), end=dt.date(2024, 5, 1))
    run("rerun", start=dt.date(2024, 5, 1), end=dt.date(2024, 5, 1))
    got = db.execute(
        "SELECT sold_on, category, CAST(amount AS DOUBLE) FROM mart.category_sales ORDER BY 1, 2"
    ).fetchall()
    assert got == [expected[0], (dt.date(2024, 5, 1), "fruit", 5.0), expected[2]]


def test_retention_cutoffs_count_whole_months() -> None:
    assert sqlbuild.cutoff(dt.date(2024, 5, 17), 24, "month") == dt.date(2022, 5, 1)
    assert sqlbuild.cutoff(dt.date(2024, 1, 31), 1, "month") == dt.date(2023, 12, 1)
    assert sqlbuild.cutoff(dt.date(2024, 3, 14), 10, "day") == dt.date(2024, 3, 4)
    assert sqlbuild.cutoff(dt.date(2024, 3, 14), 2, "year") == dt.date(2022, 3, 1)


def test_percent_signs_in_node_sql_are_kept_for_psycopg(tmp_path: Path) -> None:
    pipelines = node(
        "SELECT day, count(*) AS total FROM src.events WHERE note LIKE '%x%' AND value % 2 = 0 GROUP BY day"
    )
    compiled = plan.compile_catalog(catalog_with(tmp_path, pipelines), MODULES)
    [statement] = plan.sql_statements(compiled.nodes["p"]["n"], "incremental", True)
    text = statement.postgres()
    assert "'%%x%%'" in text and "%% 2" in text and "%(swyd_watermark)s" in text


def test_the_bulk_merge_from_staging_writes_only_new_or_changed_rows_and_dedupes_on_request() -> None:
    """The MERGE that loads a staged batch, rendered for DuckDB and run there."""
    table = load(ROOT / "catalog").tables["retail.articles"]
    db = duckdb.connect()
    db.execute(sqlbuild.create_schema(table.schema).duckdb())
    db.execute(sqlbuild.create_table(table).duckdb())
    db.execute("CREATE SCHEMA pipelines_staging")
    source = sqlbuild.table_ref("pipelines_staging", "b_1")
    names = ["article_code", "name", "category"]

    def stage(*rows: tuple[str, str, str]) -> None:
        db.execute("DROP TABLE IF EXISTS pipelines_staging.b_1")
        db.execute("CREATE TABLE pipelines_staging.b_1 (_row BIGINT, article_code TEXT, name TEXT, category TEXT)")
        db.executemany("INSERT INTO pipelines_staging.b_1 VALUES (?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])

    def merge(**options: Any) -> int:
        statement = sqlbuild.merge_from_staging(table, source, columns=names, **{"dedupe": False, **options})
        row = db.execute(statement.duckdb()).fetchone()
        return row[0] if row else 0

    def articles() -> list[tuple[Any, ...]]:
        return db.execute("SELECT article_code, name, category FROM retail.articles ORDER BY 1").fetchall()

    stage(("A", "Apples", "fruit"), ("B", "Bread", "bakery"))
    assert merge() == 2
    assert merge() == 0  # identical rows are neither rewritten nor counted
    assert db.execute("SELECT count(*) FROM retail.articles WHERE updated_at IS NULL").fetchone() == (0,)  # default
    stage(("A", "Apples", "fruit"), ("B", "Brot", "bakery"), ("C", "Cheese", "dairy"))
    assert merge(update=False) == 1  # initial data: only the new key
    assert articles() == [("A", "Apples", "fruit"), ("B", "Bread", "bakery"), ("C", "Cheese", "dairy")]
    assert merge() == 1
    stage(("D", "Dates", "fruit"), ("D", "Dates", "dried fruit"), ("A", "Apples", "fruit"))
    assert merge(dedupe=True) == 1  # the last row of a repeated key wins
    assert articles()[-1] == ("D", "Dates", "dried fruit")
    assert sqlbuild.analyze(source).postgres() == 'ANALYZE "pipelines_staging"."b_1"'
