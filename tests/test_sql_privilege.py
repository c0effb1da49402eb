"""Users' SQL (the forecast pool's SQL source) runs with least privilege, whatever DATABASE_URL's
role is (the tests' is a superuser): the reader role reads the exposed schemas only, so no file,
password hash, webhook URL or other job's command reaches a job record; no admin function runs;
and the whole query has one deadline however it spreads its rows over fetches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import Proc, start_worker, wait_status

DEADLINE_S = 3


@pytest.fixture(scope="module")
def reader_worker(stack: dict[str, str]) -> Iterator[Proc]:
    worker = start_worker({**stack, "FORECAST_SQL_TIMEOUT_S": str(DEADLINE_S)}, pool="forecast", threads=2)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def secrets(stack: dict[str, str], client_module: httpx.Client) -> dict[str, str]:
    """A schedule with a secret webhook URL and a job with a secret in its command."""
    hook = "https://hooks.example.com/services/T000/B000/SECRET-HOOK-5f1c"
    made = client_module.post(
        "/v1/schedules",
        json={
            "name": "privilege-probe",
            "cron": "0 0 1 1 *",
            "command": {"type": "metrics.compute", "model_id": "6d6a8224-de68-4603-b2db-63e01d34f020"},
            "alert": {"metric": "accuracy", "below": 0.5, "webhook_url": hook},
        },
    )
    assert made.status_code in (200, 201), made.text
    job = client_module.post("/v1/commands", json={"type": "system.noop", "echo": "SECRET-ECHO-77ab"}).json()
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        data_directory = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    return {"hook": "SECRET-HOOK-5f1c", "echo": "SECRET-ECHO-77ab", "job": job["id"], "data_directory": data_directory}


@pytest.fixture(scope="module")
def client_module(stack: dict[str, str]) -> Iterator[httpx.Client]:
    from tests.support import API_KEY

    with httpx.Client(base_url=stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as c:
        yield c


def forecast(client: httpx.Client, stack: dict[str, str], query: str) -> dict[str, Any]:
    accepted = client.post(
        "/v1/commands",
        json={
            "type": "forecast.forecast",
            "source": {"kind": "sql", "query": query, "freq": "D"},
            "prediction_length": 7,
        },
    )
    assert accepted.status_code == 202, accepted.text
    return wait_status(stack["DATABASE_URL"], accepted.json()["id"], {"succeeded", "dead"}, timeout=180)


#: queries the check lets through (they call no server function): the role refuses them
READS_REFUSED_BY_THE_ROLE = [
    "SELECT id, created_at, 1 FROM jobs",
    "SELECT command::text, now(), 1 FROM public.jobs",
    "SELECT name, now(), (alert->>'webhook_url')::int FROM schedules",
    "SELECT usename, now(), passwd::int FROM pg_shadow",
    "SELECT rolname, now(), rolpassword::int FROM pg_authid",
    "SELECT 'x', now(), (SELECT count(*) FROM alert_deliveries)",
]
#: queries the check refuses before they run
CALLS_REFUSED_BY_THE_CHECK = [
    "SELECT 'x', now(), pg_read_file('/etc/passwd')::int",
    "SELECT 'x', now(), length(pg_catalog.pg_read_file('/etc/passwd'))",
    "SELECT f, now(), 1 FROM pg_ls_dir('/') AS f",
    "SELECT 'x', now(), pg_terminate_backend(pid)::int FROM pg_stat_activity",
    "SELECT 'x', now(), current_setting('data_directory')::int",
    "SELECT 'x', now(), set_config('role', 'postgres', false)::int",
    "SELECT 'x', now(), lo_import('/etc/passwd')::int",
]


@pytest.mark.parametrize("query", READS_REFUSED_BY_THE_ROLE + CALLS_REFUSED_BY_THE_CHECK)
def test_no_secret_and_no_admin_function_reaches_a_job(
    client_module: httpx.Client, stack: dict[str, str], reader_worker: Proc, secrets: dict[str, str], query: str
) -> None:
    row = forecast(client_module, stack, query)
    assert row["status"] == "dead" and row["attempts"] == 1, row
    message = row["error"]["message"]
    assert ("permission denied" in message) or ("is not allowed" in message), message
    record = str(row)
    for secret in ("hook", "echo", "data_directory"):
        assert secrets[secret] not in record, f"{secret} leaked through {query!r}"
    assert "root:" not in record


def test_the_server_settings_the_role_may_not_see_stay_hidden(
    client_module: httpx.Client, stack: dict[str, str], reader_worker: Proc, secrets: dict[str, str]
) -> None:
    row = forecast(client_module, stack, "SELECT name, now(), length(setting) FROM pg_settings WHERE name LIKE 'data%'")
    assert secrets["data_directory"] not in str(row)
    with psycopg.connect(stack["DATABASE_URL"]) as conn:  # every backend survived the probes
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()[0]


def test_the_exposed_schemas_are_readable(
    client_module: httpx.Client, stack: dict[str, str], reader_worker: Proc
) -> None:
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS demo")
        conn.execute("CREATE TABLE IF NOT EXISTS demo.priv_sales (day date PRIMARY KEY, amount numeric)")
        conn.execute(
            "INSERT INTO demo.priv_sales SELECT d::date, 100 + extract(isodow FROM d) * 5"
            " FROM generate_series('2024-01-01'::date, '2024-02-29', '1 day') d ON CONFLICT DO NOTHING"
        )
    row = forecast(client_module, stack, "SELECT 'shop', day, amount FROM demo.priv_sales")
    assert row["status"] == "succeeded", row["error"]


def test_one_deadline_for_the_whole_query_however_many_fetches(
    client_module: httpx.Client, stack: dict[str, str], reader_worker: Proc
) -> None:
    # each row costs a little (a subquery over 2,000 numbers): every fetch of 10,000 rows stays well
    # under the deadline, the whole result does not; a per-statement timeout would restart each fetch
    query = (  # the subquery names g: Postgres runs it for every row, not once
        "SELECT 'x', '2000-01-01'::date + g, (SELECT count(*) FROM generate_series(1, 2000 + g % 2))"
        " FROM generate_series(1, 400000) AS g"
    )
    row = forecast(client_module, stack, query)
    assert row["status"] == "dead", row
    assert f"ran longer than FORECAST_SQL_TIMEOUT_S={DEADLINE_S}" in row["error"]["message"], row["error"]
    took = (row["finished_at"] - row["started_at"]).total_seconds()
    print(f"a {DEADLINE_S} s deadline ended the query after {took:.1f} s")
    # the promise: the deadline plus 10 s at most
    assert took < DEADLINE_S + 10, f"ran {took:.0f} s against a {DEADLINE_S} s deadline"
    assert isinstance(row["finished_at"], dt.datetime)
