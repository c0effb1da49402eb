"""Group commit of job transitions: many threads, one statement per batch, same answers."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bus.jobstore import JobStore
from contracts import JobStatus


def test_concurrent_starts_and_finishes_are_each_recorded_once(base_env: dict[str, str]) -> None:
    store = JobStore()
    ids = [str(uuid.uuid4()) for _ in range(40)]
    twice = ids[0]  # delivered twice at the same moment: the second delivery waits for the next batch

    def start(job_id: str) -> int | None:
        return store.start(
            job_id=job_id, type="system.noop", queue="system", command={"type": "system.noop"}, options={}
        )

    with ThreadPoolExecutor(16) as pool:
        attempts = list(pool.map(start, [*ids, twice]))
    assert attempts[1:-1] == [1] * 39
    assert sorted([attempts[0], attempts[-1]]) == [1, 2]

    with ThreadPoolExecutor(16) as pool:
        finished = list(pool.map(lambda i: store.finish(i, JobStatus.SUCCEEDED, result={"i": i}), ids))
    assert all(job is not None and job.status == "succeeded" and job.result == {"i": job.id} for job in finished)
    # a job already over is neither started nor finished again
    assert start(twice) is None
    assert store.finish(twice, JobStatus.DEAD) is None
    with psycopg.connect(base_env["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT status, count(*) FROM jobs WHERE id = ANY(%s) GROUP BY status", (ids,)).fetchall()
    assert rows == [("succeeded", 40)]
