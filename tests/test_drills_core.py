"""Fault drills: a 202 is never lost and every job ends in a true status, whatever dies meanwhile.

Each drill runs the real web, worker and ticker processes against a Postgres of this module's own
(an embedded server it may stop) and prints its figures on one line (``pytest -s``): accepted,
succeeded, lost, duplicated, stuck, and the seconds from the end of the fault until every job
had ended. Duplicated counts jobs that recorded a success twice: a success moved again (its
finished_at changed after it was first seen) or more success transitions counted than jobs.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from psycopg.rows import dict_row

from bus.migrate import migrate
from bus.submission import message_for
from bus.throughput import totals_key
from contracts import publish, system
from contracts.publish import broker_for
from devservers import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.drill_report import record as record_drill
from tests.support import (
    API_KEY,
    Proc,
    job_row,
    server_dir,
    start_ticker,
    start_web,
    start_worker,
    wait_for,
    wait_status,
)

#: the issue's bound: every accepted job has ended this long after the fault ended
RECOVERY_DEADLINE_S = 120
#: the test's own connections carry this name; the drill never terminates them
OBSERVER = "drill-observer"


@pytest.fixture(scope="module")
def drill_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of these drills' own: they terminate its connections and stop it."""
    with server_dir("drills") as path:
        server = EmbeddedPostgres(path / "pg")
        server.start()
        yield server
        server.stop()


@pytest.fixture()
def drill_env(drill_postgres: EmbeddedPostgres, base_env: dict[str, str]) -> dict[str, str]:
    """A fresh database on the drills' server and a broker namespace of the test's own."""
    name = f"drill_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(drill_postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = drill_postgres.url.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    return {
        **base_env,
        "DATABASE_URL": url,
        "BROKER_NAMESPACE": "drill-" + uuid.uuid4().hex[:6],
        "DB_TIMEOUT": "1",
        # a lease renewed every 2 s: a lost attempt is run again within seconds
        "LEASE_S": "6",
        "REDRIVE_AFTER_S": "3",
    }


def observe(database_url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(database_url, autocommit=True, row_factory=dict_row, application_name=OBSERVER)


def rows(database_url: str) -> list[dict[str, Any]]:
    with observe(database_url) as conn:
        return conn.execute("SELECT id, status, attempts, reclaims, result, finished_at FROM jobs").fetchall()


class SuccessWatch:
    """Polls the jobs table and remembers when each job was first seen succeeded: a second success
    would move its finished_at."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.first: dict[str, Any] = {}
        self.moved: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SuccessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.look()

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            try:
                self.look()
            except psycopg.OperationalError:
                continue  # the server is down for a moment (drill d)

    def look(self) -> None:
        for row in rows(self.database_url):
            if row["status"] != "succeeded":
                continue
            seen = self.first.setdefault(row["id"], row["finished_at"])
            if seen != row["finished_at"]:
                self.moved.add(row["id"])


def successes_counted(env: dict[str, str], queue: str = "system") -> int:
    """Success transitions the workers applied, as they count them in Redis (bus/throughput.py)."""
    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        return int(client.hget(totals_key(env["BROKER_NAMESPACE"], queue), "succeeded") or 0)
    finally:
        client.close()


def report(
    name: str, *, accepted: int, table: list[dict[str, Any]], watch: SuccessWatch, counted: int, **more: Any
) -> dict[str, int]:
    succeeded = sum(r["status"] == "succeeded" for r in table)
    figures = {
        "accepted": accepted,
        "succeeded": succeeded,
        "lost": accepted - succeeded,
        "duplicated": len(watch.moved) + max(0, counted - len(table)),
        "stuck": sum(r["status"] in ("queued", "running", "failed") for r in table),
    }
    recover = more.pop("seconds_to_recover", None)
    record_drill(
        name, **figures, recover_s=recover, **{k: round(v, 1) if isinstance(v, float) else v for k, v in more.items()}
    )
    return figures


def ended(database_url: str) -> int:
    with observe(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM jobs WHERE status IN ('succeeded', 'dead', 'cancelled')"
        ).fetchone()
    return row["n"] if row else 0


def all_ended(database_url: str, expected: int) -> list[dict[str, Any]] | None:
    try:
        table = rows(database_url)
    except psycopg.OperationalError:
        return None
    done = len(table) >= expected and all(r["status"] in ("succeeded", "dead", "cancelled") for r in table)
    return table if done else None


def test_a_terminating_every_postgres_connection_repeatedly_loses_and_doubles_nothing(
    drill_env: dict[str, str],
) -> None:
    env = drill_env
    commands = 300
    web, url = start_web(env, free_port(), name="web-drill-a")
    procs: list[Proc] = [
        web,
        start_worker(env, name="worker-drill-a", threads=8),
        start_ticker(env, name="ticker-drill-a"),
    ]
    accepted: set[str] = set()
    refusals = 0
    terminated = 0
    faulting = threading.Event()
    faulting.set()

    def terminate_connections() -> None:
        nonlocal terminated
        with observe(env["DATABASE_URL"]) as conn:
            while faulting.is_set():
                row = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> %s",
                    (OBSERVER,),
                ).fetchone()
                terminated += row["n"] if row else 0
                time.sleep(0.25)

    def submit(i: int, client: httpx.Client) -> None:
        nonlocal refusals
        body = (
            {"type": "system.sleep", "seconds": 0.2, "steps": 2} if i % 2 else {"type": "system.noop", "echo": f"{i}"}
        )
        # the same key on every try: a 503 whose insert committed after all is not accepted twice
        headers = {"Idempotency-Key": f"drill-a-{i}"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answer = client.post("/v1/commands", json=body, headers=headers)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code in (200, 202):
                accepted.add(answer.json()["id"])
                return
            assert answer is None or answer.status_code == 503, f"{answer.status_code}: {answer.text}"
            refusals += 1
            time.sleep(0.1)
        raise AssertionError(f"command {i} was refused for two minutes")

    try:
        with SuccessWatch(env["DATABASE_URL"]) as watch:
            killer = threading.Thread(target=terminate_connections, daemon=True)
            killer.start()
            with (
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as client,
                ThreadPoolExecutor(8) as pool,
            ):
                list(pool.map(lambda i: submit(i, client), range(commands)))
            # the fault goes on while the jobs run, so worker starts, finishes, progress and lease
            # writes all meet dropped connections, until a third of the jobs ended under it
            wait_for(
                lambda: terminated >= 50 and ended(env["DATABASE_URL"]) >= commands // 3,
                RECOVERY_DEADLINE_S,
                0.2,
                "a third of the jobs to end under the fault",
            )
            faulting.clear()
            killer.join(10)
            fault_ended = time.monotonic()
            table = wait_for(
                lambda: all_ended(env["DATABASE_URL"], len(accepted)),
                RECOVERY_DEADLINE_S,
                0.5,
                "every accepted job to end",
            )
            recovered_s = time.monotonic() - fault_ended
        counted = successes_counted(env)
        figures = report(
            "drill-a postgres connections terminated",
            accepted=len(accepted),
            table=table,
            watch=watch,
            counted=counted,
            seconds_to_recover=recovered_s,
            terminated=terminated,
            refused_503=refusals,
            rerun=sum(r["attempts"] > 1 for r in table),
            reclaimed=sum(r["reclaims"] for r in table),
            successes_counted=counted,
        )
        assert {r["id"] for r in table} >= accepted
        assert figures["lost"] == 0 and figures["stuck"] == 0 and figures["duplicated"] == 0
        assert all(r["status"] == "succeeded" for r in table), [r for r in table if r["status"] != "succeeded"]
    finally:
        faulting.clear()
        for proc in procs:
            proc.stop()


@pytest.fixture()
def empty_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Valkey of the test's own without persistence: restarted, it comes back empty."""
    server = EmbeddedRedis(tmp_path / "redis", persist=False)
    server.start()
    yield server
    server.stop()


def test_b_a_redis_restarted_empty_under_a_backlog_loses_no_job(
    drill_env: dict[str, str], empty_redis: EmbeddedRedis
) -> None:
    env = {**drill_env, "REDIS_URL": empty_redis.url}
    backlog = 150
    web, url = start_web(env, free_port(), name="web-drill-b")
    procs: list[Proc] = [web]
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as client:
            accepted = {
                client.post("/v1/commands", json={"type": "system.noop", "echo": f"{i}"}).json()["id"]
                for i in range(backlog)
            }
        assert len(accepted) == backlog
        broker = redis.Redis.from_url(empty_redis.url)
        queue_key = f"{env['BROKER_NAMESPACE']}:system.msgs"
        # no worker runs: the backlog waits in the broker, every row marked as sent
        wait_for(lambda: broker.hlen(queue_key) == backlog, 30, 0.1, "the backlog in the broker")
        wait_for(
            lambda: (
                all(r["status"] == "queued" for r in rows(env["DATABASE_URL"])) and _unsent(env["DATABASE_URL"]) == 0
            ),
            30,
            0.1,
            "every job marked as sent",
        )
        empty_redis.kill()
        empty_redis.start()
        assert broker.hlen(queue_key) == 0, "the restarted Redis still holds the queue"
        broker.close()

        restarted = time.monotonic()
        with SuccessWatch(env["DATABASE_URL"]) as watch:
            procs += [start_worker(env, name="worker-drill-b", threads=8), start_ticker(env, name="ticker-drill-b")]
            table = wait_for(
                lambda: all_ended(env["DATABASE_URL"], backlog), RECOVERY_DEADLINE_S, 0.5, "every queued job to end"
            )
            recovered_s = time.monotonic() - restarted
        counted = successes_counted(env)
        figures = report(
            "drill-b redis restarted empty",
            accepted=backlog,
            table=table,
            watch=watch,
            counted=counted,
            seconds_to_recover=recovered_s,
            redrive_after_s=float(env["REDRIVE_AFTER_S"]),
            successes_counted=counted,
        )
        assert figures["lost"] == 0 and figures["stuck"] == 0 and figures["duplicated"] == 0
        assert {r["id"] for r in table} == accepted
        # each ran once: the reconciler sent each lost message once
        assert all(r["attempts"] == 1 for r in table)
        assert sorted(r["result"]["echo"] for r in table) == sorted(str(i) for i in range(backlog))
        assert "had no message in the broker" in procs[-1].output()
    finally:
        for proc in procs:
            proc.stop()


def _unsent(database_url: str) -> int:
    with observe(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM jobs WHERE enqueued_at IS NULL").fetchone()
    return row["n"] if row else 0


def wait_running(database_url: str, job_id: str) -> None:
    """Until the job reports progress: it runs, and its worker lists it."""
    wait_for(
        lambda: (row := job_row(database_url, job_id)) and (row["progress"] or {}).get("percent", 0) > 0,
        30,
        0.05,
        "the job to be running",
    )


def test_c_a_duplicate_message_of_a_running_job_starts_no_second_run(drill_env: dict[str, str]) -> None:
    env = drill_env
    # two processes: the duplicate may reach the other one, or another thread of the same. Threads
    # enough that each duplicate has one free at once while the job runs, even when the second process
    # is still starting: with 2, a duplicate once queued behind the first one's take-over check, started
    # after the job had ended and was skipped as over (a CI run)
    procs = [start_worker(env, name="worker-drill-c1", threads=4), start_worker(env, name="worker-drill-c2", threads=4)]
    broker = broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
    try:
        # long enough that the duplicates find it running even when the second process is still
        # starting under a loaded machine (a 3 s job had ended first in one CI run, and the
        # duplicates were then skipped as over, which is drill c's last step, not its first)
        job_id = publish(system.Sleep(seconds=8, steps=16), broker=broker)
        wait_running(env["DATABASE_URL"], job_id)
        with SuccessWatch(env["DATABASE_URL"]) as watch:
            row = job_row(env["DATABASE_URL"], job_id)
            assert row is not None
            original = message_for(_job(row), row["options"])
            # a plain duplicate (a message sent twice), and one posing as the continuation of an
            # attempt that is not running
            broker.enqueue(original)
            broker.enqueue(original.copy(options={"continues": 7}))
            logs = lambda: "".join(p.output() for p in procs)  # noqa: E731
            wait_for(
                lambda: logs().count(f"skipping message {job_id}: its job is running under another attempt") >= 2,
                30,
                0.1,
                "both duplicates to be skipped",
            )
            done = wait_status(env["DATABASE_URL"], job_id, {"succeeded", "dead"}, 30)
            # and once it is over, a duplicate is skipped as over
            broker.enqueue(original)
            wait_for(lambda: f"skipping message {job_id}: its job is already over" in logs(), 30, 0.1, "the late one")
        counted = successes_counted(env)
        figures = report(
            "drill-c duplicate of a running job",
            accepted=1,
            table=[done],
            watch=watch,
            counted=counted,
            duplicates_sent=3,
            attempts=done["attempts"],
        )
        assert done["status"] == "succeeded" and done["attempts"] == 1 and done["result"] == {"slept_s": 8.0}
        assert figures["duplicated"] == 0 and counted == 1
        assert job_row(env["DATABASE_URL"], job_id) == done  # nothing moved it after its success
    finally:
        for proc in procs:
            proc.stop()


def _job(row: dict[str, Any]) -> Any:
    from bus.jobstore import to_job

    return to_job(row)


def test_d_a_finish_whose_write_fails_is_not_lost(drill_env: dict[str, str], drill_postgres: EmbeddedPostgres) -> None:
    # a lease longer than the outage: the outcome travelling with the message lands before any
    # reconciler could give the job to another attempt, so the handler runs once
    env = {**drill_env, "LEASE_S": "60"}
    worker = start_worker(env, name="worker-drill-d", threads=2)
    procs = [worker, start_ticker(env, name="ticker-drill-d")]
    try:
        job_id = publish(
            system.Sleep(seconds=3, steps=3), broker=broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
        )
        wait_running(env["DATABASE_URL"], job_id)
        with SuccessWatch(env["DATABASE_URL"]) as watch:
            stopped = time.monotonic()
            drill_postgres.stop()
            # the handler ends while Postgres is down: its finish cannot be written
            wait_for(lambda: "not recorded (job store unavailable" in worker.output(), 60, 0.1, "the finish to fail")
            down_s = time.monotonic() - stopped
            drill_postgres.start()
            restarted = time.monotonic()
            done = wait_status(env["DATABASE_URL"], job_id, {"succeeded", "dead"}, RECOVERY_DEADLINE_S)
            recovered_s = time.monotonic() - restarted
        counted = successes_counted(env)
        figures = report(
            "drill-d finish written while postgres is down",
            accepted=1,
            table=[done],
            watch=watch,
            counted=counted,
            postgres_down_s=down_s,
            seconds_to_recover=recovered_s,
            attempts=done["attempts"],
        )
        assert done["status"] == "succeeded" and done["result"] == {"slept_s": 3.0}
        assert done["attempts"] == 1, "the outcome was recorded, not the job run again"
        assert "the outcome of attempt 1 is recorded now" in worker.output()
        assert figures["duplicated"] == 0
    finally:
        if not drill_postgres.running():
            drill_postgres.start()
        for proc in procs:
            proc.stop()


def test_e_a_job_that_keeps_losing_its_worker_runs_again_then_ends_dead(drill_env: dict[str, str]) -> None:
    # MAX_RETRIES=1: the first lost attempt is run again, the second loss ends the job. The least
    # heartbeat timeout: the killed worker's message is requeued 2 s after its last beat, not 8 s
    env = {**drill_env, "LEASE_S": "3", "MAX_RETRIES": "1", "HEARTBEAT_TIMEOUT_MS": "2000"}
    ticker = start_ticker(env, name="ticker-drill-e")
    workers: list[Proc] = []
    try:
        job_id = publish(
            system.Sleep(seconds=120, steps=120), broker=broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
        )
        for attempt in (1, 2):
            worker = start_worker(env, name=f"worker-drill-e{attempt}", threads=2)
            workers.append(worker)
            begun = wait_for(
                lambda a=attempt: (row := job_row(env["DATABASE_URL"], job_id)) and row["attempts"] == a and row,
                60,
                0.1,
                f"attempt {attempt} to start",
            )
            # a progress write of this attempt (only the attempt that runs can write it): it is running,
            # and its worker lists it
            wait_for(
                lambda b=begun: (row := job_row(env["DATABASE_URL"], job_id)) and row["updated_at"] > b["updated_at"],
                30,
                0.1,
                f"attempt {attempt} to report progress",
            )
            worker.kill(signal.SIGKILL)
            killed = time.monotonic()
            if attempt == 1:
                # run again: by the next worker, once the reconciler has judged the attempt lost
                continue
            dead = wait_status(env["DATABASE_URL"], job_id, {"dead", "succeeded"}, 60)
            record_drill(
                "drill-e a job whose worker is killed on every attempt (MAX_RETRIES=1)",
                accepted=1, succeeded=0, lost=0, duplicated=0, stuck=0,
                recover_s=time.monotonic() - killed, ended=dead["status"],
            )  # fmt: skip
        assert dead["status"] == "dead" and dead["attempts"] == 2 and dead["reclaims"] == 2
        assert dead["error"]["type"] == "WorkerLost" and "more than MAX_RETRIES=1" in dead["error"]["message"]
        # the first loss was judged by the reconciler (lease over) or by the redelivered message taking
        # the job over (no live worker lists it: workers/lifecycle.py); the second ended it dead
        taken_over = any("has no live worker; this delivery runs it again" in w.output() for w in workers)
        assert taken_over or "1 queued again, 0 dead" in ticker.output()
        assert "0 queued again, 1 dead" in ticker.output()
    finally:
        for proc in [*workers, ticker]:
            proc.stop()


def test_f_a_queued_job_whose_only_message_was_dead_lettered_ends_dead(drill_env: dict[str, str]) -> None:
    """A job of a type no worker of its queue knows (a web process newer than its pool): Dramatiq
    dead-letters the message, and the job says so instead of waiting for ever."""
    env = drill_env
    job_id = str(uuid.uuid4())
    message = message_for(
        _job(
            {
                "id": job_id,
                "type": "system.retired",
                "queue": "system",
                "status": "queued",
                "attempts": 0,
                "command": {"type": "system.retired"},
                "created_at": dt.datetime.now(dt.UTC),
                "updated_at": dt.datetime.now(dt.UTC),
            }
        )
    )
    with observe(env["DATABASE_URL"]) as conn:
        conn.execute(
            "INSERT INTO jobs (id, type, queue, status, command, enqueued_at)"
            " VALUES (%s, 'system.retired', 'system', 'queued', '{\"type\": \"system.retired\"}', now())",
            (job_id,),
        )
    broker = broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
    broker.enqueue(message)
    procs = [start_worker(env, name="worker-drill-f"), start_ticker(env, name="ticker-drill-f")]
    try:
        client = redis.Redis.from_url(env["REDIS_URL"])
        wait_for(
            lambda: client.zcard(f"{env['BROKER_NAMESPACE']}:system.XQ") == 1, 30, 0.1, "the message dead-lettered"
        )
        client.close()
        dead = wait_status(env["DATABASE_URL"], job_id, {"dead"}, 30)
        assert dead["error"]["type"] == "DeadLettered" and dead["attempts"] == 0
    finally:
        for proc in procs:
            proc.stop()
