"""The pipelines pool end to end: commands over HTTP through the bus to a real worker,
on the session's Postgres. The worker and a web process of this module read a catalog
made of the example catalog (catalog/) plus tests/pipelines_catalog/tests.yaml."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg.rows import dict_row

from devservers import free_port
from pipelines_catalog.catalog import load
from tests.support import API_KEY, ROOT, Proc, start_web, start_worker, stop_all, wait_for, wait_status
from workers.pipelines.schedules import schedule_commands

D = dt.date
INGEST_LIMIT = 300_000


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalog")
    for source in (ROOT / "catalog").glob("*.yaml"):
        shutil.copy(source, path / source.name)
    shutil.copy(ROOT / "tests" / "pipelines_catalog" / "tests.yaml", path / "tests.yaml")
    return path


@pytest.fixture(scope="module")
def env(stack: dict[str, str], catalog_dir: Path) -> dict[str, str]:
    return {
        **stack,
        "CATALOG_DIR": str(catalog_dir),
        "PIPELINE_MODULES": "catalog,tests.pipelines_functions",
        "INGEST_MAX_BODY_BYTES": str(INGEST_LIMIT),
    }


@pytest.fixture(scope="module")
def api(env: dict[str, str]) -> Iterator[httpx.Client]:
    """A web process and a pipelines worker reading the test catalog."""
    web, url = start_web(env, free_port(), name="web-pipelines")
    worker = start_worker(env, pool="pipelines")
    procs: list[Proc] = [web, worker]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as client:
        yield client
    stop_all(procs)


def submit(api: httpx.Client, command: dict[str, Any], **headers: str) -> str:
    response = api.post("/v1/commands", json=command, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def run_job(api: httpx.Client, db: str, command: dict[str, Any], expect: str = "succeeded") -> dict[str, Any]:
    job = wait_status(db, submit(api, command), {"succeeded", "dead"}, timeout=90)
    assert job["status"] == expect, job["error"] or job["result"]
    return job


def query(db: str, text: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
        cur = conn.execute(text, params)
        return cur.fetchall() if cur.description else []


def snapshot(db: str, table: str) -> list[dict[str, Any]]:
    schema, name = table.split(".")
    return query(db, f'SELECT * FROM "{schema}"."{name}" ORDER BY 1, 2')


@pytest.fixture(scope="module")
def tables(api: httpx.Client, env: dict[str, str]) -> Iterator[str]:
    db = env["DATABASE_URL"]
    run_job(api, db, {"type": "pipelines.setup", "initial_data": True})
    yield db
    # setup registered the catalog's schedules: they must not fire later in the session
    query(db, "DELETE FROM schedules WHERE name IN ('pipelines.run.daily_sales', 'pipelines.retention')")


# ---- setup -------------------------------------------------------------------------


def test_setup_creates_the_catalog_and_twice_is_a_no_op(api: httpx.Client, tables: str) -> None:
    db = tables
    articles = snapshot(db, "retail.articles")
    assert [a["article_code"] for a in articles] == ["A-100", "A-200", "B-100"]
    second = run_job(api, db, {"type": "pipelines.setup", "initial_data": True})["result"]
    assert second["created"] == [] and "retail.sales" in second["existing"]
    assert snapshot(db, "retail.articles") == articles  # initial data never overwrites rows already there
    refused = api.post("/v1/commands", json={"type": "pipelines.setup", "drop_before_create": True})
    assert refused.status_code == 422 and "confirm_drop" in refused.json()["detail"]["message"]


def test_setup_registers_the_catalogs_schedules_and_twice_keeps_them(
    api: httpx.Client, tables: str, client: httpx.Client
) -> None:
    db = tables
    names = ("pipelines.run.daily_sales", "pipelines.retention")
    rows = {r["name"]: r for r in query(db, "SELECT * FROM schedules WHERE name = ANY(%s)", (list(names),))}
    assert set(rows) == set(names)
    daily = rows["pipelines.run.daily_sales"]
    assert (daily["cron"], daily["timezone"], daily["enabled"]) == ("15 2 * * *", "UTC", True)
    assert daily["command"]["type"] == "pipelines.run" and daily["command"]["pipeline_id"] == "daily_sales"
    assert daily["next_fire_at"] is not None
    assert rows["pipelines.retention"]["command"]["type"] == "pipelines.retention"
    assert rows["pipelines.retention"]["cron"] == "0 3 * * *"

    # paused over the API: a second setup reports the schedules unchanged and keeps them as they are
    assert client.patch("/v1/schedules/pipelines.run.daily_sales", json={"enabled": False}).status_code == 200
    try:
        second = run_job(api, db, {"type": "pipelines.setup", "tables": ["retail.articles"]})["result"]
        assert {s["name"]: s["status"] for s in second["schedules"]} == dict.fromkeys(names, "unchanged")
        again = query(db, "SELECT * FROM schedules WHERE name = ANY(%s)", (list(names),))
        assert {r["name"]: r["enabled"] for r in again} == {names[0]: False, names[1]: True}
        retention = next(r for r in again if r["name"] == names[1])
        assert retention["next_fire_at"] == rows[names[1]]["next_fire_at"]
        assert retention["updated_at"] == rows[names[1]]["updated_at"]
        # a changed cron (edited here in the store, as if the catalog had changed) is put back by setup
        query(db, "UPDATE schedules SET cron = '0 4 * * *' WHERE name = %s", (names[1],))
        third = run_job(api, db, {"type": "pipelines.setup", "tables": ["retail.articles"]})["result"]
        assert {s["name"]: s["status"] for s in third["schedules"]}[names[1]] == "updated"
        assert query(db, "SELECT cron FROM schedules WHERE name = %s", (names[1],))[0]["cron"] == "0 3 * * *"
    finally:
        client.patch("/v1/schedules/pipelines.run.daily_sales", json={"enabled": True})


def test_setup_of_an_unknown_table_is_refused_at_once(api: httpx.Client, tables: str) -> None:
    job = run_job(api, tables, {"type": "pipelines.setup", "tables": ["retail.nope"]}, expect="dead")
    assert "retail.nope" in job["error"]["message"]


# ---- ingestion ---------------------------------------------------------------------


def put_rows(
    api: httpx.Client, table: str, rows: Any = None, *, content: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    if content is None:
        return api.put(f"/v1/tables/{table}/rows", json=rows, headers=headers)
    return api.put(
        f"/v1/tables/{table}/rows", content=content, headers={"Content-Type": "application/json", **(headers or {})}
    )


def staged_tables(db: str) -> int:
    return query(db, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'pipelines_staging'")[0]["n"]


def test_ingest_valid_rows_are_upserted_and_the_last_of_a_repeated_key_wins(api: httpx.Client, tables: str) -> None:
    db = tables
    rows = [
        {"article_code": "C-100", "name": "Milk 1 l", "category": "dairy", "price": "1.10"},
        {"article_code": "C-200", "name": "Butter", "category": "dairy", "price": 2.5},
        {"article_code": "C-100", "name": "Milk 1 l (organic)", "category": "dairy", "price": 1.3},
    ]
    response = put_rows(api, "retail.articles", rows)
    assert response.status_code == 202, response.text
    assert response.json()["rows"] == 3
    wait_status(db, response.json()["id"], {"succeeded"})
    got = {r["article_code"]: r for r in query(db, "SELECT * FROM retail.articles WHERE category = 'dairy'")}
    assert got["C-100"]["name"] == "Milk 1 l (organic)" and str(got["C-200"]["price"]) == "2.50"
    assert got["C-100"]["updated_at"] is not None  # omitted: the column's default
    assert staged_tables(db) == 0  # the staged batch is dropped with the upsert


def test_ingest_invalid_rows_lists_every_error_and_loads_nothing(api: httpx.Client, tables: str) -> None:
    db = tables
    before, staged = snapshot(db, "retail.sales"), staged_tables(db)
    rows = [
        {"sale_id": 1, "article_code": "A-100", "sold_on": "2024-01-01", "quantity": 1, "amount": 2.4},
        {"sale_id": "two", "article_code": "A-100", "sold_on": "2024-13-01", "quantity": 1, "amount": 2.4},
        {"sale_id": 3, "sold_on": "2024-01-02", "quantity": 2**40, "amount": 1, "colour": "red"},
        "not a row",
    ]
    response = put_rows(api, "retail.sales", rows)
    assert response.status_code == 422, response.text
    errors = {(e["row"], e["column"]) for e in response.json()["detail"]["errors"]}
    assert errors == {(1, "sale_id"), (1, "sold_on"), (2, "article_code"), (2, "quantity"), (2, "colour"), (3, None)}
    assert snapshot(db, "retail.sales") == before and staged_tables(db) == staged
    assert put_rows(api, "retail.sales", []).status_code == 422
    assert put_rows(api, "retail.sales", {"sale_id": 1}).status_code == 400
    assert put_rows(api, "retail.sales", content=b"[{").status_code == 400
    assert put_rows(api, "retail.nope", rows).status_code == 404


ALL_TYPES = """
tables:
  t_copy.all_types:
    type: master
    columns:
      k: bigint not null
      t: text
      v: varchar(12)
      s: smallint
      i: integer
      n: numeric(12,2)
      r: real
      d: double precision
      b: boolean
      day: date
      ts: timestamp
      tz: timestamptz
      j: jsonb
      u: uuid
      dflt: {type: text, nullable: false, default: "'x'"}
    primary_key: [k]
"""
NASTY = [
    "",
    "null",
    "NULL",
    "\\N",
    "a,b",
    "é ü 中",
    "],[",
    "]],[",
    ",[",
    'say "hi"',
    "back\\slash",
    "tab\tnl\ncr\r",
    "\\.",
]


def test_ingest_copies_csv_blocks_and_escaped_rows_identically(
    tables: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every batch that can go as one CSV block stages exactly what the row-by-row text COPY stages."""
    import asyncio

    from ingress.routes.pipelines import _Stage
    from pipelines_catalog import staging
    from pipelines_catalog.rows import RowSchema

    path = tmp_path_factory.mktemp("all_types")
    (path / "t.yaml").write_text(ALL_TYPES)
    table = load(path).tables["t_copy.all_types"]
    schema = RowSchema(table)
    base = {
        "t": "plain", "v": "v", "s": -32768, "i": 2**31 - 1, "n": "12.30", "r": 0.1, "d": -0.0, "b": True,
        "day": "0001-01-01", "ts": "2024-02-29T10:00:00.123456", "tz": "2024-01-01T10:00:00+05:30",
        "j": 1, "u": "6f1c4a3e-0c1d-4a5e-9b7e-2d3c4b5a6f70", "dflt": "given",
    }  # fmt: skip
    variants: list[dict[str, Any]] = [base, {}, {k: None for k in base if k != "dflt"}]
    variants += [{**base, "t": text, "v": text[:12]} for text in NASTY]
    variants += [{**base, "n": n} for n in (1, 2.5, "1E+5", "-0", "NaN", "-1e-2")]
    variants += [{**base, "d": d, "r": d} for d in (1e30, 1e-30, 123456789.125)]
    variants += [{**base, "j": j} for j in ("[1,2]", [[1], [2]], {"a": [1, 2]}, None, True, "x", {"": {}})]
    variants += [{**base, "tz": "2024-01-01T00:00:00Z", "ts": "2024-01-01T00:00:00", "b": False}]
    rows = [{"k": i, **v} for i, v in enumerate(variants)]
    decoded, errors = schema.decode_batch(msgspec.json.encode(rows), 0)
    assert not errors
    assert schema.copy_csv(decoded, 0) is None  # escapes in the batch: row by row
    kinds = {schema.copy_csv([row], i) is None for i, row in enumerate(decoded)}
    assert kinds == {True, False}  # both formats are exercised

    async def stage(batches: list[tuple[list[tuple[Any, ...]], int]], text_only: bool) -> list[dict[str, Any]]:
        batch = staging.new_batch_id()
        async with await psycopg.AsyncConnection.connect(tables) as conn, conn.transaction():
            await conn.execute(staging.create(table, batch))
            async with _Stage(conn, table, batch, schema) as writer:
                writer.csv_ok = not text_only
                for part, first in batches:
                    await writer.write(part, first)
            conn.row_factory = dict_row
            cur = await conn.execute(psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1").format(staging.identifier(batch)))
            staged = await cur.fetchall()
            await conn.execute(staging.drop(batch))
        return staged

    text = asyncio.run(stage([(decoded, 0)], True))
    assert len(text) == len(rows) and [r["_row"] for r in text] == list(range(len(rows)))
    one_by_one = [([row], i) for i, row in enumerate(decoded)]
    assert repr(asyncio.run(stage(one_by_one, False))) == repr(text)  # repr: NaN != NaN
    clean = [(decoded[i : i + 2], i) for i in range(0, len(decoded), 2)]
    assert repr(asyncio.run(stage(clean, False))) == repr(text)


def test_ingest_oversized_bodies_are_refused_declared_or_streamed(api: httpx.Client, tables: str) -> None:
    db = tables
    staged = staged_tables(db)
    row = {"sale_id": 1, "article_code": "A-100", "sold_on": "2024-01-01", "quantity": 1, "amount": 1}
    body = json.dumps([{**row, "sale_id": i} for i in range(5000)]).encode()
    assert len(body) > INGEST_LIMIT
    declared = put_rows(api, "retail.sales", content=body)
    assert declared.status_code == 413 and declared.json()["detail"] == {"limit_bytes": INGEST_LIMIT}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(body), 16_384):
            yield body[i : i + 16_384]

    streamed = put_rows(api, "retail.sales", content=chunks())
    assert streamed.status_code == 413
    assert staged_tables(db) == staged
    assert query(db, "SELECT count(*) AS n FROM retail.sales WHERE sale_id >= 1000")[0]["n"] == 0
    # MAX_BODY_BYTES (1 MiB) stays the limit of commands, this route has its own
    small = put_rows(api, "retail.sales", [{**row, "sale_id": 10_000 + i} for i in range(2000)])
    assert small.status_code == 202, small.text


def test_ingest_with_an_idempotency_key_replays(api: httpx.Client, tables: str) -> None:
    rows = [{"article_code": "D-100", "name": "Eggs", "category": "dairy"}]
    first = put_rows(api, "retail.articles", rows, headers={"Idempotency-Key": "eggs-1"})
    again = put_rows(api, "retail.articles", rows, headers={"Idempotency-Key": "eggs-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = put_rows(api, "retail.articles", [{**rows[0], "name": "Duck eggs"}], headers={"Idempotency-Key": "eggs-1"})
    assert other.status_code == 409
    wait_status(tables, first.json()["id"], {"succeeded"})
    assert wait_for(lambda: staged_tables(tables) == 0, 10, what="staged batches dropped")


# ---- injection ---------------------------------------------------------------------


def test_injection_through_table_names_columns_and_values_does_nothing(api: httpx.Client, tables: str) -> None:
    db = tables
    for name in (
        "retail.sales;DROP TABLE retail.articles",
        'retail.sales"',
        "retail.sales%27--",
        "pg_catalog.pg_class",
    ):
        response = api.put(f"/v1/tables/{name}/rows", json=[{"sale_id": 1}])
        assert response.status_code in (404, 422), (name, response.status_code)
    evil_column = put_rows(api, "retail.articles", [{"article_code": "E-1", 'name"); DROP TABLE retail.sales; --': 1}])
    assert evil_column.status_code == 422
    evil = "x'); DROP TABLE retail.sales; --"
    values = put_rows(
        api, "retail.articles", [{"article_code": evil, "name": "Robert'); DROP TABLE x;--", "category": "%s %(x)s"}]
    )
    assert values.status_code == 202
    wait_status(db, values.json()["id"], {"succeeded"})
    stored = query(db, "SELECT name, category FROM retail.articles WHERE article_code = %s", (evil,))
    assert stored == [{"name": "Robert'); DROP TABLE x;--", "category": "%s %(x)s"}]
    inline = {
        "type": "pipelines.ingest",
        "table": "retail.articles",
        "rows": [{"article_code": "E-2", "name": evil, "category": evil}],
    }
    run_job(api, db, inline)
    assert query(db, "SELECT name FROM retail.articles WHERE article_code = 'E-2'") == [{"name": evil}]
    bad_command = api.post("/v1/commands", json={"type": "pipelines.run", "pipeline_id": "x'; DROP TABLE y; --"})
    assert bad_command.status_code == 422
    bad_table = api.post("/v1/commands", json={"type": "pipelines.retention", "tables": ['retail.sales"; --']})
    assert bad_table.status_code == 422
    assert query(db, "SELECT to_regclass('retail.sales') IS NOT NULL AS ok")[0]["ok"]


# ---- runs ----------------------------------------------------------------------------


def load_events(db: str, rows: list[tuple[int, dt.date, int]]) -> None:
    with psycopg.connect(db) as conn:
        conn.cursor().executemany(
            "INSERT INTO t_src.events (event_id, day, value) VALUES (%s, %s, %s)"
            " ON CONFLICT (event_id) DO UPDATE SET day = EXCLUDED.day, value = EXCLUDED.value",
            rows,
        )


def daily(db: str) -> dict[dt.date, tuple[int, int]]:
    return {r["day"]: (r["events"], r["total"]) for r in snapshot(db, "t_mart.daily")}


def test_incremental_loads_late_rows_within_the_lookback_and_advances_the_watermark(
    api: httpx.Client, tables: str
) -> None:
    db = tables
    load_events(db, [(i, D(2024, 3, i), 10) for i in range(1, 6)])
    run = {"type": "pipelines.run", "pipeline_id": "t_events", "run_date": "2024-03-05"}
    first = run_job(api, db, run)["result"]
    assert first["status"] == "succeeded" and first["nodes"][0]["rows"] == 5
    assert daily(db) == {D(2024, 3, i): (1, 10) for i in range(1, 6)}
    mark = query(db, "SELECT * FROM pipeline_watermarks WHERE table_name = 't_mart.daily'")[0]
    assert (mark["watermark"], mark["run_date"], mark["run_count"]) == ("2024-03-05", D(2024, 3, 5), 1)

    # late rows: day 4 is within the 2-day lookback, day 1 is not; day 6 is new, day 7 is after run_date
    load_events(
        db, [(100, D(2024, 3, 4), 5), (101, D(2024, 3, 1), 5), (102, D(2024, 3, 6), 7), (103, D(2024, 3, 7), 1)]
    )
    run_job(api, db, {**run, "run_date": "2024-03-06"})
    got = daily(db)
    assert got[D(2024, 3, 4)] == (2, 15) and got[D(2024, 3, 6)] == (1, 7)
    assert got[D(2024, 3, 1)] == (1, 10)  # below watermark - lookback: a rerun picks it up
    assert D(2024, 3, 7) not in got
    again = run_job(api, db, {**run, "run_date": "2024-03-06"})["result"]
    assert again["nodes"][0]["rows"] == 0  # nothing changed: nothing rewritten
    mark = query(db, "SELECT * FROM pipeline_watermarks WHERE table_name = 't_mart.daily'")[0]
    assert (mark["watermark"], mark["run_count"]) == ("2024-03-06", 2)


def test_rerun_of_a_range_twice_gives_identical_tables(api: httpx.Client, tables: str) -> None:
    db = tables
    run_job(api, db, {"type": "pipelines.run", "pipeline_id": "t_events", "run_date": "2024-03-06"})
    with psycopg.connect(db) as conn:  # a stale row inside the window: the rerun must delete it
        conn.execute(
            "INSERT INTO t_mart.daily VALUES ('2024-03-02', 99, 99) ON CONFLICT (day) DO UPDATE SET total = 99"
        )
    rerun = {
        "type": "pipelines.run",
        "pipeline_id": "t_events",
        "mode": "rerun",
        "start": "2024-03-01",
        "end": "2024-03-07",
    }
    run_job(api, db, rerun)
    once = snapshot(db, "t_mart.daily")
    run_job(api, db, rerun)
    assert snapshot(db, "t_mart.daily") == once
    got = daily(db)
    assert got[D(2024, 3, 1)] == (2, 15) and got[D(2024, 3, 2)] == (1, 10) and got[D(2024, 3, 7)] == (1, 1)
    runs = api.get("/v1/pipelines/t_events/runs", params={"limit": 2}).json()["items"]
    assert (
        runs[0]["mode"] == "rerun" and runs[0]["range_start"] == "2024-03-01" and runs[0]["range_end"] == "2024-03-07"
    )
    assert runs[0]["nodes"][0]["node"] == "daily" and runs[0]["nodes"][0]["status"] == "succeeded"


def test_a_polars_node_loads_transforms_and_saves(api: httpx.Client, tables: str) -> None:
    db = tables
    run_job(
        api,
        db,
        {
            "type": "pipelines.run",
            "pipeline_id": "t_polars",
            "mode": "rerun",
            "start": "2024-03-01",
            "end": "2024-03-31",
        },
    )
    assert {r["day"]: r["total"] for r in snapshot(db, "t_mart.doubled")} == {
        d: t * 2 for d, (_, t) in daily(db).items()
    }


def test_a_failing_node_stops_its_dependents_and_fails_the_run_naming_it(api: httpx.Client, tables: str) -> None:
    db = tables
    job = run_job(
        api, db, {"type": "pipelines.run", "pipeline_id": "t_failing", "run_date": "2024-03-06"}, expect="dead"
    )
    assert "node 'bad' failed" in job["error"]["message"] and "division by zero" in job["error"]["message"]
    assert "after_bad" in job["error"]["message"]
    assert job["attempts"] == 1  # bad data: not retried
    run = api.get("/v1/pipelines/t_failing/runs").json()["items"][0]
    assert run["status"] == "failed" and run["failed_node"] == "bad" and run["id"] == job["id"]
    nodes = {n["node"]: n["status"] for n in run["nodes"]}
    assert nodes == {"bad": "failed", "independent": "succeeded", "after_bad": "skipped"}
    assert len(snapshot(db, "t_mart.independent")) > 0  # finished nodes stay committed
    assert snapshot(db, "t_mart.after_bad") == []


def test_plan_shows_each_nodes_sql_without_running_it(api: httpx.Client, tables: str) -> None:
    db = tables
    before = snapshot(db, "mart.category_sales")
    result = run_job(api, db, {"type": "pipelines.plan", "pipeline_id": "daily_sales"})["result"]
    assert result["order"] == ["daily_sales", "category_sales"]
    first = result["nodes"][0]
    assert first["target"] == "mart.daily_sales" and "ON CONFLICT" in first["sql"][0]
    assert 'FROM "retail"."sales" AS "s"' in first["sql"][0]
    assert result["nodes"][1]["depends_on"] == ["daily_sales"]
    assert snapshot(db, "mart.category_sales") == before


# ---- retention -----------------------------------------------------------------------


def test_retention_moves_exactly_the_expired_rows_and_a_failure_midway_loses_nothing(
    api: httpx.Client, tables: str
) -> None:
    db = tables
    run_job(
        api,
        db,
        {
            "type": "pipelines.run",
            "pipeline_id": "t_events",
            "mode": "rerun",
            "start": "2024-03-01",
            "end": "2024-03-07",
        },
    )
    before = daily(db)
    command = {"type": "pipelines.retention", "tables": ["t_mart.daily"], "run_date": "2024-03-14"}  # keep >= 03-04
    dry = run_job(api, db, {**command, "dry_run": True})["result"]["tables"][0]
    assert dry["rows_expired"] == 3 and dry["cutoff"] == "2024-03-04"
    assert daily(db) == before

    with psycopg.connect(db, autocommit=True) as conn:  # the backup table refuses inserts: the move must roll back
        conn.execute("CREATE SCHEMA IF NOT EXISTS t_mart_bk")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS t_mart_bk.daily"
            " (day date PRIMARY KEY, events bigint NOT NULL, total bigint NOT NULL)"
        )
        conn.execute(
            "CREATE OR REPLACE FUNCTION t_mart_bk.refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'backup disk full'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON t_mart_bk.daily FOR EACH ROW EXECUTE FUNCTION t_mart_bk.refuse()"
        )
    failed = run_job(api, db, command, expect="dead")
    assert "backup disk full" in failed["error"]["message"]
    assert daily(db) == before and snapshot(db, "t_mart_bk.daily") == []

    query(db, "DROP TRIGGER refuse ON t_mart_bk.daily")
    moved = run_job(api, db, command)["result"]["tables"][0]
    assert moved["rows_moved"] == 3 and moved["backup"] == "t_mart_bk.daily"
    assert daily(db) == {d: v for d, v in before.items() if d >= D(2024, 3, 4)}
    assert {r["day"]: (r["events"], r["total"]) for r in snapshot(db, "t_mart_bk.daily")} == {
        d: v for d, v in before.items() if d < D(2024, 3, 4)
    }
    assert run_job(api, db, command)["result"]["tables"][0]["rows_moved"] == 0


def test_retention_of_a_table_without_one_is_refused(api: httpx.Client, tables: str) -> None:
    job = run_job(api, tables, {"type": "pipelines.retention", "tables": ["t_mart.doubled"]}, expect="dead")
    assert "has no retention" in job["error"]["message"]


# ---- the example catalog, end to end ---------------------------------------------------


def test_example_catalog_end_to_end_ingest_run_trigger_retention_and_schedule(
    api: httpx.Client, tables: str, client: httpx.Client, catalog_dir: Path
) -> None:
    db = tables
    sales = [
        {"sale_id": 500 + i, "article_code": code, "sold_on": day, "quantity": q, "amount": q * price}
        for i, (code, day, q, price) in enumerate(
            [
                ("A-100", "2022-01-10", 3, 2.4),
                ("A-200", "2024-05-01", 1, 2.9),
                ("B-100", "2024-05-01", 2, 4.1),
                ("A-100", "2024-05-02", 5, 2.4),
                ("A-200", "2024-05-02", 2, 2.9),
                ("B-100", "2024-05-02", 1, 4.1),
                ("C-200", "2024-05-02", 1, 2.5),
            ]
        )
    ]
    ingest = put_rows(api, "retail.sales", sales)
    assert ingest.status_code == 202, ingest.text
    wait_status(db, ingest.json()["id"], {"succeeded"})

    job = run_job(api, db, {"type": "pipelines.run", "pipeline_id": "daily_sales", "run_date": "2024-05-02"})
    result = job["result"]
    assert [n["node"] for n in result["nodes"]] == ["daily_sales", "category_sales"]
    categories = {(r["sold_on"], r["category"]): float(r["amount"]) for r in snapshot(db, "mart.category_sales")}
    assert categories[(D(2024, 5, 2), "fruit")] == pytest.approx(5 * 2.4 + 2 * 2.9)
    assert categories[(D(2024, 5, 2), "dairy")] == pytest.approx(2.5)

    # top_articles declared daily_sales as its trigger: one run, keyed by the upstream job
    [triggered] = result["triggered_jobs"]
    wait_status(db, triggered, {"succeeded"}, timeout=60)
    runs = api.get("/v1/pipelines/top_articles/runs").json()["items"]
    assert runs[0]["triggered_by"] == job["id"]
    top = [(r["sold_on"], r["rank"], r["article_code"]) for r in snapshot(db, "mart.top_articles")]
    assert (D(2024, 5, 2), 1, "A-100") in top and len([t for t in top if t[0] == D(2024, 5, 2)]) == 3

    moved = run_job(api, db, {"type": "pipelines.retention", "tables": ["retail.sales"], "run_date": "2024-05-02"})
    assert moved["result"]["tables"][0]["rows_moved"] == 1  # 2022-01-10 is older than 24 months
    assert [r["sale_id"] for r in snapshot(db, "retail_bk.sales")] == [500]

    # the catalog's schedules, set on the ticker (every second here instead of 02:15), run it
    commands = {s.schedule.name: msgspec.to_builtins(s.schedule) for s in schedule_commands(load(catalog_dir))}
    assert set(commands) == {"pipelines.run.daily_sales", "pipelines.retention"}
    spec = {**commands["pipelines.run.daily_sales"], "name": "pipelines-test-every-second", "cron": "* * * * * *"}
    assert client.post("/v1/schedules", json=spec).status_code in (200, 201), spec
    try:
        wait_for(
            lambda: query(
                db,
                "SELECT id FROM pipeline_runs WHERE pipeline_id = 'daily_sales' AND status = 'succeeded' AND id <> %s",
                (job["id"],),
            ),
            60,
            what="a scheduled daily_sales run",
        )
    finally:
        client.delete("/v1/schedules/pipelines-test-every-second")
