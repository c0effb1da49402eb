"""Fault drills at the edge, on real processes: unstorable values, batch isolation, cancelling
running and retrying jobs, job retention.

The module runs its own web process, system worker and ticker on a namespace of its own, with
a long retry backoff (a failed job waits 8 to 16 s for its retry, so a test can cancel it then).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from dramatiq.brokers.redis import RedisBroker
from psycopg.rows import dict_row
from starlette.routing import Mount, Route

from bus.broker_adapter import depths
from devservers import free_port
from tests.drill_report import record
from tests.support import Proc, auth, job_row, start_ticker, start_web, start_worker, wait_for, wait_status

#: one in ten of the poisoned drill's commands is bad
REQUESTS = 200


@pytest.fixture(scope="module")
def edge(base_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    env = {
        **base_env,
        "BROKER_NAMESPACE": "syedge-" + uuid.uuid4().hex[:6],
        "MIN_BACKOFF_MS": "8000",
        "MAX_BACKOFF_MS": "16000",
        # this module's own ticker keeps every job; the retention drill starts one that does not
        "JOB_RETENTION_DAYS": "0",
    }
    web, url = start_web(env, free_port(), name="web-edge")
    procs: dict[str, Proc] = {
        "web": web,
        "worker": start_worker(env, name="worker-edge", threads=8),
        "ticker": start_ticker(env, name="ticker-edge"),
    }
    yield {"env": env, "url": url, "procs": procs}
    for proc in procs.values():
        proc.stop()


def _this_run(proc: Proc) -> str:
    """The process's output since it started (its log file keeps earlier runs)."""
    return proc.output().rsplit("\n=== ", 1)[-1]


@pytest.fixture()
def api(edge: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=edge["url"], headers=auth(), timeout=20) as client:
        yield client


def _bad_commands(tag: str) -> list[tuple[dict[str, Any], str]]:
    """Commands with a value the job store cannot keep, and the field each 422 must name."""
    series = {"series_id": tag, "start": "0001-01-01T00:00:00+01:00", "freq": "D", "values": list(range(10))}
    rerun = {"type": "pipelines.run", "pipeline_id": "daily_sales", "mode": "rerun", "start": "2024-01-01"}
    metrics = {"type": "metrics.compute", "model_id": str(uuid.uuid4())}
    return [
        ({"type": "system.noop", "echo": f"{tag} nul \u0000 inside"}, "$.echo"),
        ({"type": "pipelines.ingest", "table": "a.b", "rows": [{"sale_id": 1, "no\u0000te": tag}]}, "$.rows[0]"),
        ({**metrics, "window": {"since": "0001-01-01T01:00+02:00"}}, "$.window.since"),
        ({**rerun, "end": "9999-12-31"}, "$.end"),
        # an offset that moves the start out of Python's years: once an OverflowError, a 500
        ({"type": "forecast.anomalies", "source": {"kind": "inline", "series": [series]}}, "$.source.series[0].start"),
    ]  # fmt: skip


async def _post_all(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    headers = {**auth(), "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/v1/commands", content=body) for body in bodies))


def test_a_poisoned_batch_fails_only_the_bad_requests(edge: dict[str, Any]) -> None:
    import msgspec

    tag = uuid.uuid4().hex[:8]
    bad = _bad_commands(tag)
    plan: list[tuple[dict[str, Any], str | None]] = []
    for i in range(REQUESTS):
        if i % 10 == 5:
            plan.append(bad[(i // 10) % len(bad)])
        else:
            plan.append(({"type": "system.noop", "echo": f"{tag}-{i}"}, None))
    responses = asyncio.run(_post_all(edge["url"], [msgspec.json.encode(command) for command, _ in plan]))

    server_errors = [r for r in responses if r.status_code >= 500]
    refused = [(r, path) for r, (_, path) in zip(responses, plan, strict=True) if path is not None]
    good = [r for r, (_, path) in zip(responses, plan, strict=True) if path is None]
    for response, path in refused:
        assert response.status_code == 422, response.text
        assert response.json()["detail"]["path"] == path, response.text
    assert [r.status_code for r in good] == [202] * len(good)
    ids = [r.json()["id"] for r in good]

    def succeeded() -> int:
        with psycopg.connect(edge["env"]["DATABASE_URL"]) as conn:
            row = conn.execute("SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status = 'succeeded'", (ids,))
            return row.fetchone()[0]  # type: ignore[index]

    wait_for(lambda: succeeded() == len(ids), 120, 0.5, f"the {len(ids)} accepted jobs to succeed")
    with psycopg.connect(edge["env"]["DATABASE_URL"]) as conn:
        # nothing of a refused command was stored
        stored = conn.execute("SELECT count(*) FROM jobs WHERE command::text LIKE %s", (f"%{tag}%",)).fetchone()
    assert stored is not None and stored[0] == len(ids)
    done = succeeded()
    record(
        "unstorable values among 200 concurrent commands",
        accepted=len(ids), succeeded=done, lost=len(ids) - done, duplicated=0, stuck=len(ids) - done,
        requests=len(responses), server_errors=len(server_errors), refused_422=len(refused),
    )  # fmt: skip
    assert not server_errors
    assert "unhandled error" not in _this_run(edge["procs"]["web"])


def test_one_unstorable_row_fails_only_its_own_request_in_the_batch(edge: dict[str, Any]) -> None:
    """What slips past the contracts (here: a command built by hand, bypassing them) still fails
    only its own request: the batched insert is split until the bad row is alone."""
    from bus import db
    from bus.async_jobstore import AsyncJobs
    from bus.errors import UnstorableCommand
    from bus.redis_client import async_client
    from bus.submission import Submission

    env = edge["env"]

    async def drill() -> tuple[list[Any], list[int]]:
        pool = db.async_pool(autocommit=True)
        await pool.open()
        redis = async_client(env["REDIS_URL"])
        store = AsyncJobs(pool, redis, 60, namespace=env["BROKER_NAMESPACE"])
        sizes: list[int] = []
        write = store._inserts.write

        async def counted(batch: list[dict[str, Any]]) -> list[Any]:
            sizes.append(len(batch))
            return await write(batch)

        store._inserts.write = counted
        subs = [
            Submission(
                job_id=str(uuid.uuid4()),
                type="system.noop",
                queue="system",
                command={"type": "system.noop", "echo": "bad \u0000" if i in (3, 17, 40) else f"good {i}"},
                options={"schema_version": 1},
            )
            for i in range(50)
        ]
        try:
            return await asyncio.gather(*(store.insert(s) for s in subs), return_exceptions=True), sizes
        finally:
            await pool.close()
            await redis.aclose()

    answers, sizes = asyncio.run(drill())
    assert sizes[0] == 50, "the 50 inserts were written as one batch first"
    failed = [i for i, a in enumerate(answers) if isinstance(a, BaseException)]
    assert failed == [3, 17, 40]
    assert all(isinstance(answers[i], UnstorableCommand) for i in failed)
    assert all(a[1] is True for i, a in enumerate(answers) if i not in failed)  # created
    print(f"\nisolation: 50 inserts, 3 refused, written in {len(sizes)} statements: {sizes}")


def test_nul_in_a_path_or_query_parameter_is_a_4xx_on_every_route(edge: dict[str, Any], api: httpx.Client) -> None:
    from ingress.app import create_app

    probes: list[tuple[str, str, str | None]] = []  # method, url, the parameter the answer must name
    for route in create_app().routes:
        if isinstance(route, Mount):
            probes.append(("GET", route.path + "/%00", None))
            continue
        assert isinstance(route, Route)
        names = re.findall(r"{([a-z_]+)(?::[a-z]+)?}", route.path)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            clean = re.sub(r"{[^}]+}", "x", route.path)
            probes.append((method, clean + "?cursor=%00", "cursor"))
            probes.append((method, clean + "?after=ok&since=%01", "since"))
            for name in names:
                url = route.path
                for other in names:
                    url = re.sub(r"{" + other + r"(:[a-z]+)?}", "a%00b" if other == name else "x", url)
                probes.append((method, url, name))
    answered: dict[int, int] = {}
    for method, url, name in probes:
        response = api.request(method, url)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert 400 <= response.status_code < 500, f"{method} {url}: {response.status_code} {response.text[:200]}"
        if name is not None:
            assert response.status_code == 422 and response.json()["detail"]["path"] == name, f"{method} {url}"
    print(f"\nNUL probes: {len(probes)} requests on {len(create_app().routes)} routes, answers {answered}")
    assert len(probes) > 100
    assert "unhandled error" not in _this_run(edge["procs"]["web"])


def test_rows_with_a_nul_are_refused_naming_row_and_column(api: httpx.Client) -> None:
    rows = [
        {"sale_id": 1, "article_code": "A-1", "sold_on": "2024-05-02", "quantity": 2, "amount": 4.8},
        {"sale_id": 2, "article_code": "A-\u00002", "sold_on": "2024-05-02", "quantity": 2, "amount": 4.8},
    ]
    response = api.put("/v1/tables/retail.sales/rows", json=rows)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_rows"
    assert [(e["row"], e["column"]) for e in body["detail"]["errors"]] == [(1, "article_code")]
    assert "NUL" in body["detail"]["errors"][0]["message"]


def _redis_broker(edge: dict[str, Any]) -> RedisBroker:
    return RedisBroker(url=edge["env"]["REDIS_URL"], namespace=edge["env"]["BROKER_NAMESPACE"], middleware=[])


def _running_sleep(api: httpx.Client, seconds: float = 60, steps: int = 120) -> str:
    job_id = api.post("/v1/commands", json={"type": "system.sleep", "seconds": seconds, "steps": steps}).json()["id"]

    def reporting() -> bool:
        job = api.get(f"/v1/jobs/{job_id}").json()
        return job["status"] == "running" and (job.get("progress") or {}).get("percent", 0) > 0

    wait_for(reporting, 30, 0.1, "the sleep to report progress")
    return job_id


def test_a_running_job_is_cancelled_at_its_next_progress_report(edge: dict[str, Any], api: httpx.Client) -> None:
    job_id = _running_sleep(api)
    asked = api.post(f"/v1/jobs/{job_id}/cancel")
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "running" and asked.json()["cancel_requested_at"]
    again = api.post(f"/v1/jobs/{job_id}/cancel")  # asking twice changes nothing
    assert again.status_code == 202 and again.json()["cancel_requested_at"] == asked.json()["cancel_requested_at"]

    # seconds, not the minute the sleep would take
    row = wait_status(edge["env"]["DATABASE_URL"], job_id, {"cancelled", "succeeded", "dead", "failed"}, timeout=10)
    assert row["status"] == "cancelled" and row["attempts"] == 1
    assert row["error"]["type"] == "JobCancelled" and row["finished_at"] is not None
    assert row["progress"]["percent"] < 50
    # neither retried (a delayed message) nor dead-lettered
    _ready, delayed, dead = depths(_redis_broker(edge), ("system",))["system"]
    assert (delayed, dead) == (0, 0)
    finished = api.post(f"/v1/jobs/{job_id}/cancel")
    assert finished.status_code == 409 and finished.json()["detail"]["status"] == "cancelled"


def test_a_cancel_requested_before_a_worker_crash_ends_the_redelivered_job(
    edge: dict[str, Any], api: httpx.Client
) -> None:
    """The request is in Postgres, not in the worker: the redelivery stops at its first report."""
    procs = edge["procs"]
    job_id = _running_sleep(api)
    procs["worker"].kill(signal.SIGKILL)
    procs["worker"].stop()
    assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 202  # still running, as far as anyone knows
    procs["worker"] = start_worker(edge["env"], name="worker-edge-2", threads=8)
    # the ticker requeues the dead worker's message after HEARTBEAT_TIMEOUT_MS (8 s)
    row = wait_status(edge["env"]["DATABASE_URL"], job_id, {"cancelled", "succeeded", "dead"}, timeout=60)
    assert row["status"] == "cancelled" and row["attempts"] == 2 and row["error"]["type"] == "JobCancelled"


def test_a_retrying_job_is_cancelled_at_once_and_its_retry_skipped(edge: dict[str, Any], api: httpx.Client) -> None:
    job_id = api.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 3}).json()["id"]
    # the first attempt fails; its retry waits 8 to 16 s (MIN_BACKOFF_MS)
    wait_status(edge["env"]["DATABASE_URL"], job_id, {"failed"}, timeout=30)
    cancelled = api.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    worker = edge["procs"]["worker"]
    wait_for(lambda: f"skipping message {job_id}" in worker.output(), 40, 0.2, "the retry to be skipped")
    row = job_row(edge["env"]["DATABASE_URL"], job_id)
    assert row is not None and row["status"] == "cancelled" and row["attempts"] == 1


# --- job retention ---------------------------------------------------------------------------


def _seed(conn: psycopg.Connection, prefix: str, count: int, status: str, finished_days_ago: float | None) -> None:
    """``count`` jobs created 60 days ago, finished ``finished_days_ago`` (None: still open)."""
    conn.execute(
        """
        INSERT INTO jobs (id, type, queue, status, attempts, command, created_at, updated_at, finished_at)
        SELECT %(prefix)s || n, 'system.noop', 'system', %(status)s, 1, '{"type": "system.noop"}',
               now() - interval '60 days', now() - interval '60 days',
               now() - make_interval(secs => %(days)s::float8 * 86400)
          FROM generate_series(1, %(count)s) AS n
        """,
        {"prefix": prefix, "status": status, "days": finished_days_ago, "count": count},
    )


def _count(conn: psycopg.Connection, prefix: str) -> int:
    row = conn.execute("SELECT count(*) FROM jobs WHERE id LIKE %s", (prefix + "%",)).fetchone()
    assert row is not None
    return row[0]


def test_retention_deletes_only_old_finished_jobs_with_their_artifacts(edge: dict[str, Any], tmp_path: Path) -> None:
    from bus.artifacts import LocalStore

    url = edge["env"]["DATABASE_URL"]
    tag = "ret-" + uuid.uuid4().hex[:6] + "-"
    old, kept = tag + "old-", tag + "kept-"
    store = LocalStore(tmp_path / "artifacts")
    with psycopg.connect(url, autocommit=True) as conn:
        for status in ("succeeded", "dead", "cancelled"):
            _seed(conn, f"{old}{status}-", 900, status, 31)  # 2,700: three batches
            _seed(conn, f"{kept}{status}-", 20, status, 29)  # inside the retention
        for status in ("queued", "running", "failed"):
            _seed(conn, f"{kept}{status}-", 20, status, None)  # open, however old
        # an old job's artifact (file and row) and forecast rows go with it
        job_id = f"{old}succeeded-1"
        store.put(f"jobs/{job_id}/export.csv", b"a,b\n1,2\n", "text/csv")
        conn.execute(
            "INSERT INTO artifacts (job_id, store_url, key, file_name, content_type, size_bytes, sha256)"
            " VALUES (%s, %s, %s, 'export.csv', 'text/csv', 8, 'x')",
            (job_id, store.url, f"jobs/{job_id}/export.csv"),
        )
        conn.execute(
            "INSERT INTO forecast_series (job_id, series_id, kind, backend, model, points)"
            " VALUES (%s, 's', 'forecast', 'local', 'AutoETS', 10)",
            (job_id,),
        )
        conn.execute("ANALYZE jobs")
        from workers.job_retention import SQL

        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN " + SQL["expired"], {"before": before, "limit": 1000}).fetchall()
        )
    assert "jobs_finished_idx" in plan, plan
    assert "Seq Scan" not in plan, plan

    ticker = start_ticker({**edge["env"], "JOB_RETENTION_DAYS": "30"}, name="ticker-retention")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            wait_for(lambda: _count(conn, old) == 0, 60, 0.2, "the old finished jobs to be deleted")
            assert _count(conn, kept) == 6 * 20
            left = conn.execute("SELECT count(*) FROM artifacts WHERE job_id LIKE %s", (tag + "%",)).fetchone()
            series = conn.execute("SELECT count(*) FROM forecast_series WHERE job_id LIKE %s", (tag + "%",)).fetchone()
            assert left == (0,) and series == (0,)
            # this module's own jobs, a few minutes old, are untouched
            recent = conn.execute("SELECT count(*) FROM jobs WHERE created_at > now() - interval '1 day'").fetchone()
            assert recent is not None and recent[0] >= REQUESTS * 9 // 10
        assert not store.exists(f"jobs/{job_id}/export.csv")
        assert not (tmp_path / "artifacts" / "jobs" / job_id).exists()
        logged = re.findall(r"job retention: deleted (\d+) jobs", _this_run(ticker))
        assert sum(int(n) for n in logged) == 3 * 900, logged
    finally:
        ticker.stop()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute("DELETE FROM jobs WHERE id LIKE %s", (tag + "%",))
