"""The job store's asynchronous face, for the web process's event loop: the same SQL, row
builders and mirror as the synchronous store (bus/jobstore.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
import msgspec
import redis.asyncio as aioredis
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from bus import throughput
from bus.batcher import Batcher
from bus.db import refused_value
from bus.errors import UnstorableCommand
from bus.groupcommit import row_columns
from bus.jobstore import (
    FINAL,
    MIRRORED,
    OPEN,
    SQL,
    JobFilter,
    command_hash,
    decode,
    encode,
    list_query,
    mirror_key,
    page,
    row_params,
    to_job,
)
from bus.submission import Submission
from contracts import Job

log = logging.getLogger(__name__)


class AsyncJobs:
    def __init__(self, pool: AsyncConnectionPool, redis: aioredis.Redis, ttl_s: int, *, namespace: str) -> None:
        self.pool = pool
        self.redis = redis
        self.ttl_s = ttl_s
        #: BROKER_NAMESPACE: scopes the per-minute throughput counts (bus/throughput.py)
        self.namespace = namespace
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._inserts: Batcher[Submission, tuple[dict[str, Any], bool]] = Batcher(
            self._insert_batch, isolate=refused_value
        )
        #: sends the messages of the jobs one insert batch created, after its commit and before its
        #: callers are answered (the web process sets its dispatcher's ``send_many``; False leaves
        #: them to the sweeper). Insert and enqueue are one stage: the next batch gathers while
        #: both run, so under the bench's 32 connections a batch holds about 16 requests, where
        #: two stages taking turns held 6.6, and a request awaits one answer rather than two.
        #: Unset: ``insert`` only records, and the caller sends
        self.send_created: Callable[[list[dramatiq.Message]], Awaitable[bool]] | None = None

    async def _row(self, query: str | sql.Composed, params: dict[str, Any]) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def insert(self, sub: Submission) -> tuple[Job, bool, bool]:
        """(job, created, same_command). A replayed key returns the existing job.

        The requests of one turn of the event loop are written together (``_insert_batch``): one
        statement and one commit for all of them, each answered once that commit is durable."""
        try:
            row, created = await self._inserts.submit(sub)
        except Exception as err:
            if refused_value(err):  # alone by now: the batcher isolated it from the others
                raise UnstorableCommand(str(err).splitlines()[0]) from err
            raise
        same_command = created or row.get("command_hash") in (None, command_hash(sub.command))
        return to_job(row), created, same_command

    async def _insert_batch(self, batch: list[Submission]) -> list[tuple[dict[str, Any], bool]]:
        params = [
            row_params(job_id=s.job_id, type=s.type, queue=s.queue, command=s.command, options=s.options) for s in batch
        ]
        columns = row_columns(params, hashes=True)
        async with self.pool.connection() as conn:
            created = {r["id"]: r for r in await (await conn.execute(SQL["insert_accepted"], columns)).fetchall()}
            missing = list({p["id"] for p in params} - created.keys())
            found: dict[str, dict[str, Any]] = {}
            if missing:
                found = {r["id"]: r for r in await (await conn.execute(SQL["get_many"], {"ids": missing})).fetchall()}
        answers: list[tuple[dict[str, Any], bool]] = []
        sent: list[dramatiq.Message] = []
        for sub in batch:
            # the first of a batch's requests with one id created it; a second is a replay of it
            row = created.pop(sub.job_id, None)
            if row is not None:
                row = found[sub.job_id] = {**_sent_columns(sub), **row}
                sent.append(sub.message())
            answers.append((row, True) if row is not None else (found[sub.job_id], False))
        if sent and self.send_created is not None:
            await self.send_created(sent)
        return answers

    async def get(self, job_id: str) -> Job | None:
        try:
            raw = await self.redis.get(mirror_key(job_id))
            if raw is not None and (mirrored := decode(raw)).status in FINAL:
                return mirrored
        except aioredis.RedisError:
            pass  # the mirror is an optimisation; Postgres answers
        row = await self._row(SQL["get"], {"id": job_id})
        return None if row is None else to_job(row)

    async def followed_by(self, job_id: str) -> list[str]:
        """The ids of the follow-ups this job's events caused, oldest first: read from Postgres each
        time (jobs_caused_by_idx), as a finished job's mirror is written before its follow-ups exist."""
        async with self.pool.connection() as conn:
            return [r["id"] for r in await (await conn.execute(SQL["followed_by"], {"id": job_id})).fetchall()]

    async def mirror(self, job: Job, *, ended: bool = False) -> None:
        """Mirror the job; ``ended``: it has just ended here (a cancel), so it is counted too, in
        the same round trip, as a worker counts the jobs it finishes."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(mirror_key(job.id), encode(job), ex=self.ttl_s)
                if ended:
                    throughput.count(pipe, self.namespace, [job])
                await pipe.execute()
        except aioredis.RedisError as err:
            log.warning("status mirror unavailable for job %s: %s", job.id, err.__class__.__name__)

    async def forget(self, job_id: str) -> None:
        """A retried job moves again: drop its mirrored (dead) state."""
        try:
            await self.redis.delete(mirror_key(job_id))
        except aioredis.RedisError as err:
            log.warning("status mirror unavailable for job %s: %s", job_id, err.__class__.__name__)

    async def transition(self, name: str, job_id: str) -> Job | None:
        moved = await self.transition_row(name, job_id)
        return None if moved is None else moved[0]

    async def transition_row(self, name: str, job_id: str) -> tuple[Job, dict[str, Any]] | None:
        """The job after the transition, and its row (a retry re-sends the row's message options)."""
        row = await self._row(SQL[name], {"id": job_id})
        if row is None:
            return None
        job = to_job(row)
        if job.status in MIRRORED:
            await self.mirror(job, ended=True)
        else:
            await self.forget(job.id)
        return job, row

    async def retry_dead(self, where: JobFilter, limit: int) -> list[tuple[Job, dict[str, Any]]]:
        """Queue again the newest ``limit`` dead jobs the filter selects; each job and its row."""
        query, params = list_query(msgspec.structs.replace(where, status="dead"), limit=limit, cursor=None)
        async with self.pool.connection() as conn:
            ids = [r["id"] for r in await (await conn.execute(query, params)).fetchall()][:limit]
            rows = await (await conn.execute(SQL["retry_many"], {"ids": ids})).fetchall() if ids else []
        if rows:
            try:
                await self.redis.delete(*(mirror_key(r["id"]) for r in rows))  # they move again
            except aioredis.RedisError as err:
                log.warning("status mirror unavailable for %d retried jobs: %s", len(rows), err.__class__.__name__)
        return [(to_job(r), r) for r in rows]

    async def list(self, where: JobFilter, *, limit: int, cursor: str | None) -> tuple[list[Job], str | None]:
        query, params = list_query(where, limit=limit, cursor=cursor)
        async with self.pool.connection() as conn:
            return page(await (await conn.execute(query, params)).fetchall(), limit)

    async def open_counts(self) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            return await (await conn.execute(SQL["count_open"], {"statuses": list(OPEN)})).fetchall()

    # -- enqueued marks are batched: one UPDATE per burst of requests, not one per request.
    # A mark lost with the process only makes the sweeper send the message again.
    def enqueued(self, job_id: str) -> None:
        self._pending.add(job_id)
        self._wake.set()

    async def flush_marks(self) -> None:
        while self._pending:
            ids, self._pending = list(self._pending), set()
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(SQL["mark_enqueued"], {"ids": ids})
            except Exception as err:  # noqa: BLE001 - the sweeper covers what is not marked
                log.warning("could not mark %d jobs enqueued: %s", len(ids), err.__class__.__name__)
                return

    async def run_marker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.02)
            await self.flush_marks()


def _sent_columns(sub: Submission) -> dict[str, Any]:
    """The columns of a new job's row that ``insert_accepted`` does not return: what was sent."""
    return {
        "type": sub.type,
        "queue": sub.queue,
        "command": sub.command,
        "options": sub.options,
        "idempotency_key": sub.options.get("idempotency_key"),
    }


def jsonable(job: Job) -> dict[str, Any]:
    return msgspec.to_builtins(job)
