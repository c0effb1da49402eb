"""The web process's accept path, one batch at a time, on a real PostgreSQL and Redis: the requests
of one turn of the event loop are inserted in one statement and their messages sent to the broker
in the same batch, before any of them is answered; a replayed key sends nothing again; with the
broker away the rows are still committed, for the sweeper.

A database of the module's own: no other module's sweeper sends these rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
import redis.asyncio as aioredis
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bus.async_jobstore import AsyncJobs
from bus.quarantine import QuarantiningRedisBroker
from bus.submission import Submission, prepare
from contracts import system
from devservers import free_port
from ingress.dispatch import Dispatcher
from tests.support import drop_database, fresh_database

QUEUE = "system"


@pytest.fixture(scope="module")
def database(postgres_server: str) -> Iterator[str]:
    url = fresh_database(postgres_server, prefix="accept")
    yield url
    drop_database(postgres_server, url)


def accept_all(database: str, broker_url: str, ns: str, subs: list[Submission]) -> list[tuple[Any, bool, bool]]:
    """Every submission inserted from one turn of the event loop, through a store whose batches
    send their messages with the dispatcher of a Redis broker at ``broker_url``."""

    async def run() -> list[tuple[Any, bool, bool]]:
        pool = AsyncConnectionPool(database, kwargs={"row_factory": dict_row, "autocommit": True}, open=False)
        await pool.open()
        mirror = aioredis.Redis.from_url(broker_url)
        broker = QuarantiningRedisBroker(url=broker_url, namespace=ns, middleware=[])
        store = AsyncJobs(pool, mirror, 60, namespace=ns)
        store.send_created = Dispatcher(broker, store, redis=mirror).send_many
        try:
            return await asyncio.gather(*(store.insert(s) for s in subs))
        finally:
            await store.flush_marks()
            await pool.close()
            await mirror.aclose()
            broker.close()

    return asyncio.run(run())


def queued_job_ids(client: redis.Redis, ns: str) -> list[str]:
    """The job (message) ids of the messages waiting on the queue, in queue order."""
    bodies = client.hgetall(f"{ns}:{QUEUE}.msgs")
    return [json.loads(bodies[rid])["message_id"] for rid in client.lrange(f"{ns}:{QUEUE}", 0, -1)]


def rows(database: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    with psycopg.connect(database, row_factory=dict_row) as conn:
        found = conn.execute("SELECT id, status, enqueued_at FROM jobs WHERE id = ANY(%s)", [ids]).fetchall()
    return {r["id"]: r for r in found}


def test_a_batch_sends_the_messages_of_the_jobs_it_created_once(database: str, redis_url: str) -> None:
    ns = "syaccept-" + uuid.uuid4().hex[:6]
    key = f"key-{ns}"
    fresh = [prepare(system.Noop(echo=f"fresh {i}")) for i in range(8)]
    # the same key twice in one batch: the first creates the job, the second replays it
    keyed = [prepare(system.Noop(echo="keyed"), idempotency_key=key) for _ in range(2)]
    answers = accept_all(database, redis_url, ns, fresh + keyed)

    assert [created for _, created, _ in answers] == [True] * 9 + [False]
    assert all(same for _, _, same in answers)
    assert answers[8][0].id == answers[9][0].id == keyed[0].job_id
    # the answered job is the row's: queued, no attempt yet, its command as sent
    job = answers[0][0]
    assert (job.status, job.attempts, job.command["echo"]) == ("queued", 0, "fresh 0")
    created_ids = [s.job_id for s in fresh] + [keyed[0].job_id]
    with redis.Redis.from_url(redis_url) as client:
        assert queued_job_ids(client, ns) == created_ids  # each once, in the order accepted
        # replayed in a later batch: answered from the row, nothing sent again
        again = accept_all(database, redis_url, ns, [prepare(system.Noop(echo="keyed"), idempotency_key=key)])
        assert again[0][:2] == (answers[8][0], False)
        assert queued_job_ids(client, ns) == created_ids
    recorded = rows(database, created_ids)
    assert all(r["status"] == "queued" and r["enqueued_at"] is not None for r in recorded.values())
    assert len(recorded) == 9


def test_with_the_broker_away_a_batch_is_still_committed_for_the_sweeper(database: str) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    subs = [prepare(system.Noop(echo=f"unsent {i}")) for i in range(5)]
    answers = accept_all(database, nowhere, "syaway-" + uuid.uuid4().hex[:6], subs)

    assert [created for _, created, _ in answers] == [True] * 5
    recorded = rows(database, [s.job_id for s in subs])
    # committed and not marked: the sweeper sends what has no enqueued_at
    assert len(recorded) == 5
    assert all(r["status"] == "queued" and r["enqueued_at"] is None for r in recorded.values())
