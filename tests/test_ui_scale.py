"""The dashboard with 10,000 jobs in the table: every listing is paginated and every query indexed.

The seeded jobs are dated 2001, so they sit behind everything else the session's tests create, and
they are deleted afterwards. Plans are checked with EXPLAIN on the real database: a sequential
scan of `jobs` would read the whole table on every page view and every 5-second refresh.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from psycopg import sql

from bus.jobstore import JobFilter, list_query
from contracts import BY_TYPE, ROUTES
from tests.test_ui import browser, sign_in

SEEDED = 10_000
START = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
TYPES = sorted(BY_TYPE)
#: mostly finished work, as in a real table: about 1 in 20 dead, a few still queued
STATUSES = ["succeeded"] * 17 + ["dead", "cancelled", "queued"]
NEXT = re.compile(r'id="next" href="([^"]+)"')
ROW = re.compile(r'<tr data-job="([^"]+)">')


def seeded_status(n: int) -> str:
    return STATUSES[n % len(STATUSES)]


def seeded_type(n: int) -> str:
    return TYPES[(n // 3) % len(TYPES)]


@pytest.fixture(scope="module")
def seeded(stack: dict[str, str]) -> Iterator[str]:
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True) as conn:
        with conn.cursor().copy(
            "COPY jobs (id, type, queue, status, command, created_at, updated_at, enqueued_at) FROM STDIN"
        ) as copy:
            for n in range(SEEDED):
                created = START + dt.timedelta(minutes=n)
                type_ = seeded_type(n)
                copy.write_row(
                    (
                        f"scale-{n:05d}",
                        type_,
                        ROUTES[BY_TYPE[type_]].queue,
                        seeded_status(n),
                        "{}",
                        created,
                        created,
                        created,
                    )
                )
        conn.execute("ANALYZE jobs")
    yield stack["DATABASE_URL"]
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DELETE FROM jobs WHERE id LIKE 'scale-%'")


def plan(database_url: str, query: sql.Composable, params: dict[str, object]) -> str:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(sql.SQL("EXPLAIN ") + query, params).fetchall()
    return "\n".join(r[0] for r in rows)


FILTERS = [
    JobFilter(),
    JobFilter(status="dead"),
    JobFilter(type="forecast.forecast"),
    JobFilter(queue="forecast"),
    JobFilter(queue="gooddata", status="queued"),
    JobFilter(since=START + dt.timedelta(days=2), until=START + dt.timedelta(days=3)),
    JobFilter(status="succeeded", queue="metrics", since=START),
]


def named(where: JobFilter) -> str:
    return ",".join(f"{k}" for k in where.__struct_fields__ if getattr(where, k) is not None) or "none"


@pytest.mark.parametrize("where", FILTERS, ids=named)
def test_every_job_listing_is_an_index_scan(seeded: str, where: JobFilter) -> None:
    # the first page, and a page further on (the cursor of a job in the middle of the seeded range)
    middle = (START + dt.timedelta(minutes=SEEDED // 2)).isoformat()
    for cursor in (None, base64.urlsafe_b64encode(f"{middle}|scale-05000".encode()).decode()):
        query, params = list_query(where, limit=50, cursor=cursor)
        shown = plan(seeded, query, params)
        assert "Seq Scan on jobs" not in shown, shown
        assert "Index" in shown, shown


def test_the_overview_counts_do_not_read_finished_jobs(seeded: str) -> None:
    from bus.jobstore import OPEN, SQL

    shown = plan(seeded, sql.SQL(SQL["count_open"]), {"statuses": list(OPEN)})  # type: ignore[arg-type]
    assert "Seq Scan on jobs" not in shown, shown


def test_pages_walk_a_filtered_listing_to_its_end(seeded: str, stack: dict[str, str]) -> None:
    since, until = START, START + dt.timedelta(days=30)
    expected = {
        f"scale-{n:05d}"
        for n in range(SEEDED)
        if ROUTES[BY_TYPE[seeded_type(n)]].queue == "forecast" and START + dt.timedelta(minutes=n) < until
    }
    assert 50 < len(expected) < SEEDED  # more than one page, fewer than all
    seen: list[str] = []
    with browser(stack) as ui:
        sign_in(ui)
        url = "/ui/jobs?" + urlencode({"queue": "forecast", "since": since.isoformat(), "until": until.isoformat()})
        pages = 0
        while url:
            answer = ui.get(url.replace("&amp;", "&"))
            assert answer.status_code == 200
            seen += ROW.findall(answer.text)
            found = NEXT.search(answer.text)
            url = found.group(1) if found else ""
            pages += 1
    assert len(seen) == len(set(seen)), "a job was listed twice"
    assert set(seen) == expected
    assert pages == -(-len(expected) // 50)


def test_bad_filters_name_the_field(seeded: str, stack: dict[str, str], client: httpx.Client) -> None:
    with browser(stack) as ui:
        sign_in(ui)
        for query, field in (("queue=nope", "queue"), ("since=yesterday", "since"), ("status=lost", "status")):
            answer = ui.get(f"/ui/jobs?{query}")
            assert answer.status_code == 422, query
            assert f'id="error">{field}:' in answer.text
        backwards = ui.get(
            "/ui/jobs", params={"since": (START + dt.timedelta(days=1)).isoformat(), "until": "2001-01-01"}
        )
        assert backwards.status_code == 422 and "until:" in backwards.text
    api = client.get("/v1/jobs", params={"queue": "nope"})
    assert api.status_code == 422 and api.json()["detail"]["path"] == "queue"
    listed = client.get("/v1/jobs", params={"queue": "forecast", "until": "2001-01-02T00:00:00Z", "limit": 500})
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert items and all(i["queue"] == "forecast" and i["created_at"] < "2001-01-02" for i in items)


def test_the_models_list_skips_through_the_history_index(seeded: str) -> None:
    from ingress.ui import queries

    with psycopg.connect(seeded) as conn:
        # 50 models with 200 computations each, in a transaction that is rolled back
        conn.execute(
            "INSERT INTO metric_history (job_id, model_id, n, rows, metrics, computed_at)"
            " SELECT 'scale-h' || g, md5((g % 50)::text)::uuid, 10, 10, '{}', now() - g * interval '1 minute'"
            "   FROM generate_series(1, 10000) g"
        )
        conn.execute("ANALYZE metric_history")
        shown = "\n".join(r[0] for r in conn.execute("EXPLAIN " + queries.MODELS, {"limit": 200}).fetchall())
        listed = conn.execute(queries.MODELS, {"limit": 200}).fetchall()
        conn.rollback()
    assert "Seq Scan on metric_history" not in shown, shown
    assert len({row[0] for row in listed}) >= 50


def test_a_jobs_follow_ups_are_read_from_the_caused_by_index(seeded: str) -> None:
    from bus.jobstore import SQL

    with psycopg.connect(seeded) as conn:
        conn.execute("ANALYZE jobs")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + SQL["followed_by"], {"id": "scale-00001"}).fetchall())
    assert "jobs_caused_by_idx" in plan and "Seq Scan on jobs" not in plan, plan
