"""Which failures are retried: errors that recur on every attempt are permanent (bus.errors.permanent),
judged on the errors real Postgres, the datetime module and real HTTP clients raise."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import requests

from bus.errors import PermanentError, permanent
from devservers import free_port


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except BaseException as err:  # noqa: BLE001 - the error is what the test looks at
        return err
    raise AssertionError("nothing was raised")


@pytest.mark.parametrize(
    ("statement", "sqlstate"),
    [
        ("SELECT * FROM no_such_table", "42P01"),  # undefined table
        ("SELEC 1", "42601"),  # syntax error
        ("SELECT 1 / 0", "22012"),  # division by zero
        ("SELECT 'many'::integer", "22P02"),  # invalid text representation
        ("SELECT date '2020-01-01' + 2147483647", "22008"),  # date out of range
        ("SELECT count(*) FROM pg_class FOR UPDATE", "0A000"),  # feature not supported
    ],
)
def test_sql_errors_that_recur_are_permanent(database_url: str, statement: str, sqlstate: str) -> None:
    with psycopg.connect(database_url) as conn:
        err = raised(lambda: conn.execute(statement))
    assert isinstance(err, psycopg.Error) and err.sqlstate == sqlstate
    assert permanent(err)


def test_sql_errors_of_a_moment_are_retried(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '50ms'")
        cancelled = raised(lambda: conn.execute("SELECT pg_sleep(1)"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        terminated = raised(lambda: conn.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
    refused = raised(lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout=2))
    assert isinstance(cancelled, psycopg.errors.QueryCanceled)
    assert isinstance(terminated, psycopg.OperationalError)
    assert isinstance(refused, psycopg.OperationalError)
    assert not any(permanent(e) for e in (cancelled, terminated, refused))


def test_date_arithmetic_out_of_the_calendar_is_permanent() -> None:
    overflow = raised(lambda: dt.date(9999, 12, 31) + dt.timedelta(days=1))
    assert isinstance(overflow, OverflowError) and permanent(overflow)
    for action in (
        lambda: dt.date(2021, 2, 29),
        lambda: dt.date(10_000, 1, 1),
        lambda: dt.datetime(2024, 13, 1),
        lambda: dt.datetime.fromisoformat("2024-1-1x"),
        lambda: dt.datetime.strptime("yesterday", "%Y-%m-%d"),
    ):
        err = raised(action)
        assert isinstance(err, ValueError) and permanent(err), err
    # a ValueError that is not about dates says nothing about a retry
    assert not permanent(raised(lambda: int("x")))
    assert permanent(PermanentError("bad input"))


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(int(self.path.strip("/")))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def remote_api() -> Iterator[str]:
    """An HTTP server answering ``GET /<status>`` with that status."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize(
    ("status", "recurs"), [(400, True), (404, True), (422, True), (408, False), (429, False), (503, False)]
)
def test_http_4xx_from_a_remote_api_is_permanent_except_timeouts_and_throttling(
    remote_api: str, status: int, recurs: bool
) -> None:
    errors = [
        raised(lambda: requests.get(f"{remote_api}/{status}", timeout=5).raise_for_status()),
        raised(lambda: httpx.get(f"{remote_api}/{status}", timeout=5).raise_for_status()),
        raised(lambda: urllib.request.urlopen(f"{remote_api}/{status}", timeout=5)),
    ]
    assert isinstance(errors[2], urllib.error.HTTPError)
    assert [permanent(e) for e in errors] == [recurs] * 3
