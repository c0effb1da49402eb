"""Scale case: our pool draining the same queue with a million finished jobs already in ``jobs``.

The rows are written in one ``INSERT ... SELECT generate_series`` each (jobs, then their
``succeeded`` events, as the trigger would have left them), spread over 30 days with
time-ordered ids of each row's time (PostgreSQL 18's ``uuidv7``), the layout of the ids
``contracts.job_id_for`` makes; then ``VACUUM ANALYZE`` and a ``CHECKPOINT``, so the
drain neither waits for autovacuum nor shares the disk with the fill's checkpoint. After
the drain the API's and the workers' job queries are explained on that table.

Before the fill and after it, the ingress's insert path (``accept_rate``) is timed on the same
servers: the enqueue that writes to ``jobs``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.bus import Drain, our_stack
from bench.procs import say
from bench.services import Services
from bus import db, settings
from bus.async_jobstore import AsyncJobs
from bus.jobstore import EVERY_JOB, SQL, JobFilter, encode_cursor, list_query, to_job
from bus.submission import Submission
from bus.submission import prepare as prepare_submission
from contracts import system

FILLED_ROWS = 1_000_000
#: the fill's time span: one job every 2.6 s over 30 days
SPAN_S = 30 * 86_400
#: as many ids as a worker's batch of receipts or finishes holds at most (2 x 8 threads)
BATCH = 16
#: commands accepted by the ingress's insert path per round, on the empty and on the filled table
ACCEPTED = 10_000
#: rounds of it on each table: the fastest counts (one round's rate varies by 5 to 10 % here)
ACCEPT_ROUNDS = 5
#: requests in flight at once, as many as the HTTP scenario's connections
IN_FLIGHT = 32

FILL_JOBS = """
INSERT INTO jobs (id, type, queue, status, attempts, command, options, progress, created_at, updated_at,
                  enqueued_at, started_at, finished_at)
SELECT id, 'system.noop', 'system', 'succeeded', 1, '{"type": "system.noop"}', '{}',
       '{"percent": 100.0}', t, t, t, t, t
  FROM (SELECT now() - make_interval(secs => i * %(step)s) AS t,
               uuidv7(-make_interval(secs => i * %(step)s))::text AS id
          FROM generate_series(1, %(rows)s) i) AS s
"""
FILL_EVENTS = """
INSERT INTO job_events (job_id, attempt, status, type, queue, occurred_at, published_at)
SELECT id, attempts, status, type, queue, finished_at, finished_at FROM jobs WHERE status = 'succeeded'
"""


def fill(database_url: str, rows: int = FILLED_ROWS) -> float:
    """``rows`` succeeded jobs with their events; returns the seconds it took."""
    began = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FILL_JOBS, {"step": SPAN_S / rows, "rows": rows})
        conn.execute(FILL_EVENTS)
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE job_events")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - began


def accept_rate(database_url: str, redis_url: str, commands: int = ACCEPTED, rounds: int = ACCEPT_ROUNDS) -> float:
    """The fastest of ``rounds`` rounds of ``accept_once``, each on a vacuumed table."""
    best = 0.0
    for _ in range(rounds):
        best = max(best, accept_once(redis_url, commands))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("VACUUM jobs")
    return best


def accept_once(redis_url: str, commands: int) -> float:
    """Commands/s through the ingress's own insert path (``AsyncJobs.insert``: the requests of a
    turn of the event loop in one statement and one durable commit), ``IN_FLIGHT`` at a time, as
    the web process writes them; the rows are deleted afterwards, so the drain finds only its
    own. This is the enqueue that writes to ``jobs``: ``contracts.publish`` only sends to the
    broker, and the worker's insert of a published job is part of the drain."""

    async def accept() -> float:
        pool = db.async_pool(autocommit=True)
        await pool.open()
        client_of_redis = aioredis.Redis.from_url(redis_url)
        config = settings.get()
        store = AsyncJobs(pool, client_of_redis, config.status_ttl_s, namespace=config.broker_namespace)
        subs = [prepare_submission(system.Noop()) for _ in range(commands)]
        began = time.perf_counter()

        async def client(share: list[Submission]) -> None:
            for sub in share:
                await store.insert(sub)

        await asyncio.gather(*(client(subs[i::IN_FLIGHT]) for i in range(IN_FLIGHT)))
        took = time.perf_counter() - began
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM jobs WHERE id = ANY(%(ids)s)", {"ids": [s.job_id for s in subs]})
        await pool.close()
        await client_of_redis.aclose()
        return commands / took

    return asyncio.run(accept())


@dataclass
class Plan:
    #: what asks it (an endpoint, a worker step)
    name: str
    text: str
    indexes: list[str] = field(default_factory=list)
    #: tables read whole
    seq_scans: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.seq_scans:
            return f"**no**: reads {', '.join(self.seq_scans)} whole"
        return f"yes: {', '.join(self.indexes)}" if self.indexes else "no table read"


_INDEX = re.compile(r"Index (?:Only )?Scan(?: Backward)? using (\w+)|Bitmap Index Scan on (\w+)")
_ARBITER = re.compile(r"Conflict Arbiter Indexes: ([\w, ]+)")
_SEQ = re.compile(r"Seq Scan on (\w+)")


def read_plan(name: str, text: str) -> Plan:
    indexes = [a or b for a, b in _INDEX.findall(text)]
    indexes += [i.strip() for found in _ARBITER.findall(text) for i in found.split(",")]
    return Plan(name, text, list(dict.fromkeys(indexes)), list(dict.fromkeys(_SEQ.findall(text))))


def queries(conn: psycopg.Connection[Any]) -> list[tuple[str, sql.Composable | str, dict[str, Any]]]:
    """Each query with parameters a real call would bind (existing ids, a real cursor)."""
    newest = conn.execute("SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 50").fetchall()
    ids = [r["id"] for r in newest]
    cursor = encode_cursor(to_job(newest[-1]))
    # the group commit's parameters (bus/groupcommit.py): each batch one JSON array of rows
    start = {
        "starts": Jsonb(
            [
                {
                    "id": f"bench-new-{i}",
                    "type": "system.noop",
                    "queue": "system",
                    "command": {"type": "system.noop"},
                    "options": {},
                    "idempotency_key": None,
                    "continues": None,
                }
                for i in range(BATCH)
            ]
        ),
        "lease_s": 60,
    }
    finish = {
        "finishes": Jsonb(
            [{"id": i, "attempt": 1, "status": "succeeded", "result": None, "error": None} for i in ids[:BATCH]]
        )
    }
    listings = [
        ("GET /v1/jobs (newest 50)", EVERY_JOB, None),
        ("GET /v1/jobs, next page (cursor)", EVERY_JOB, cursor),
        ("GET /v1/jobs?status=queued", JobFilter(status="queued"), None),
        ("GET /v1/jobs?status=succeeded", JobFilter(status="succeeded"), None),
        ("GET /v1/jobs?type=system.noop", JobFilter(type="system.noop"), None),
        ("GET /v1/jobs?queue=system", JobFilter(queue="system"), None),
    ]
    found: list[tuple[str, sql.Composable | str, dict[str, Any]]] = [
        (name, *list_query(where, limit=50, cursor=page)) for name, where, page in listings
    ]
    return [
        *found,
        ("GET /v1/jobs/{id} (`get`)", SQL["get"], {"id": ids[0]}),
        ("status mirror misses (`get_many`, 50 ids)", SQL["get_many"], {"ids": ids}),
        ("open job counts (`count_open`)", SQL["count_open"], {"statuses": ["queued", "running", "failed", "dead"]}),
        ("worker receipt (`start_many`, 16 new ids)", SQL["start_many"], start),
        ("worker finish (`finish_many`, 16 ids)", SQL["finish_many"], finish),
        ("sweeper (`unenqueued`)", SQL["unenqueued"], {"grace_s": 30, "limit": 500}),
    ]


def explain_all(database_url: str) -> list[Plan]:
    """EXPLAIN (no ANALYZE: the writes are planned, not made) of each query, with its real parameters."""
    plans: list[Plan] = []
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        for name, query, params in queries(conn):
            statement = sql.SQL("EXPLAIN ") + (sql.SQL(query) if isinstance(query, str) else query)  # type: ignore[arg-type]
            rows = conn.execute(statement, params).fetchall()
            plans.append(read_plan(name, "\n".join(r["QUERY PLAN"] for r in rows)))
    return plans


def filled_drain(root: Path, messages: int, run: int, plans: list[Plan]) -> Drain:
    """(b) on a ``jobs`` table of a million finished rows; the plans of its queries go to ``plans``."""

    def prepare(services: Services) -> None:
        nonlocal accepted
        empty = accept_rate(services.database_url, services.redis_url)
        say(f"(s) ingress insert path, empty table: {empty:,.0f} commands/s")
        say(f"(s) filling jobs with {FILLED_ROWS:,} succeeded rows")
        took = fill(services.database_url)
        say(f"(s) filled in {took:.0f} s")
        filled = accept_rate(services.database_url, services.redis_url)
        say(f"(s) ingress insert path, {FILLED_ROWS:,} rows: {filled:,.0f} commands/s")
        accepted = (empty, filled)
        notes.append(f"{FILLED_ROWS:,} succeeded jobs and their events written beforehand in {took:.0f} s")
        notes.append(
            f"ingress insert path (`AsyncJobs.insert`, {IN_FLIGHT} in flight, fastest of {ACCEPT_ROUNDS} rounds of "
            f"{ACCEPTED:,} commands): "
            f"{empty:,.0f} commands/s on the empty table, {filled:,.0f} with {FILLED_ROWS:,} rows"
        )

    def inspect(services: Services, drain: Drain) -> None:
        plans[:] = explain_all(services.database_url)

    notes: list[str] = []
    accepted: tuple[float, float] | None = None
    drain = our_stack(root, messages, run, tag="1m", prepare=prepare, inspect=inspect)
    drain.notes += notes
    drain.accepted = accepted
    return drain
