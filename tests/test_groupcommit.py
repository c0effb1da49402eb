"""Group commit of job transitions: many threads, one statement per batch, same answers."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bus.groupcommit import Started
from bus.jobstore import JobStore
from contracts import JobStatus


def test_concurrent_starts_and_finishes_are_each_recorded_once(base_env: dict[str, str]) -> None:
    store = JobStore()
    ids = [str(uuid.uuid4()) for _ in range(40)]
    twice = ids[0]  # delivered twice at the same moment: the second delivery waits for the next batch

    def start(job_id: str) -> Started:
        return store.start(
            job_id=job_id, type="system.noop", queue="system", command={"type": "system.noop"}, options={}
        )

    with ThreadPoolExecutor(16) as pool:
        starts = list(pool.map(start, [*ids, twice]))
    assert [s.attempt for s in starts[1:-1]] == [1] * 39
    # one of the two deliveries runs attempt 1; the other finds the job running and runs nothing
    assert sorted([starts[0], starts[-1]], key=lambda s: s.attempt or 0) == [(None, "running"), (1, "running")]

    # a finish names its attempt: one that does not run the job writes nothing
    assert store.finish(twice, JobStatus.SUCCEEDED, attempt=2, result={"late": True}) is None
    with ThreadPoolExecutor(16) as pool:
        finished = list(pool.map(lambda i: store.finish(i, JobStatus.SUCCEEDED, attempt=1, result={"i": i}), ids))
    assert all(job is not None and job.status == "succeeded" and job.result == {"i": job.id} for job in finished)
    # a job already over is neither started nor finished again
    assert start(twice) == (None, "succeeded")
    assert store.finish(twice, JobStatus.DEAD, attempt=1) is None
    with psycopg.connect(base_env["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT status, count(*) FROM jobs WHERE id = ANY(%s) GROUP BY status", (ids,)).fetchall()
    assert rows == [("succeeded", 40)]


def test_only_the_attempt_a_continuation_names_can_take_its_running_job_over(base_env: dict[str, str]) -> None:
    store = JobStore()
    job_id = str(uuid.uuid4())

    def start(continues: int | None = None) -> Started:
        return store.start(
            job_id=job_id,
            type="system.noop",
            queue="system",
            command={"type": "system.noop"},
            options={},
            continues=continues,
        )

    assert start() == (1, "running")
    assert start() == (None, "running")  # a duplicate message
    assert start(continues=2) == (None, "running")  # a continuation of an attempt that does not run
    assert start(continues=1) == (2, "running")  # attempt 1's continuation: attempt 2 runs now
    assert start(continues=1) == (None, "running")  # that continuation delivered twice
    assert store.finish(job_id, JobStatus.SUCCEEDED, attempt=1) is None  # attempt 1 was superseded
    job = store.finish(job_id, JobStatus.SUCCEEDED, attempt=2, result={"done": True})
    assert job is not None and job.attempts == 2 and job.result == {"done": True}


def test_a_value_postgres_refuses_fails_only_its_own_transition_in_the_batch(base_env: dict[str, str]) -> None:
    store = JobStore()
    ids = [str(uuid.uuid4()) for _ in range(24)]
    bad = {ids[5], ids[17]}  # jsonb cannot hold a NUL: Postgres refuses the value, not the statement

    def start(job_id: str) -> Started | Exception:
        command = {"type": "system.noop", "echo": "nul \u0000" if job_id in bad else "fine"}
        try:
            return store.start(job_id=job_id, type="system.noop", queue="system", command=command, options={})
        except psycopg.DataError as err:
            return err

    with ThreadPoolExecutor(16) as pool:
        starts = dict(zip(ids, pool.map(start, ids), strict=True))
    assert {i for i, s in starts.items() if isinstance(s, psycopg.DataError)} == bad
    assert all(starts[i] == (1, "running") for i in ids if i not in bad)

    good = [i for i in ids if i not in bad]
    results = {i: {"echo": "nul \u0000" if i == good[3] else i} for i in good}

    def finish(job_id: str) -> object:
        try:
            return store.finish(job_id, JobStatus.SUCCEEDED, attempt=1, result=results[job_id])
        except psycopg.DataError as err:
            return err

    with ThreadPoolExecutor(16) as pool:
        finished = dict(zip(good, pool.map(finish, good), strict=True))
    assert isinstance(finished.pop(good[3]), psycopg.DataError)
    assert all(job is not None and job.status == "succeeded" for job in finished.values())
