"""Peer (p): procrastinate, a PostgreSQL-only job queue, draining a full queue of no-op jobs.

Measured like (a) and (b): every job is deferred before the worker starts, then one
``procrastinate worker`` process (asyncio, 16 jobs at once) drains them. The clock runs
from the first job seen finished to the last (polled from ``procrastinate_jobs``'s status
counts), so the worker's start-up is not timed. Procrastinate keeps its job rows (its
default ``--delete-jobs never``), as our job store does.
"""

from __future__ import annotations

import time
from pathlib import Path

import procrastinate

from bench import peer_procrastinate_app as peer
from bench.bus import Drain, drain_record, status_counts, watch_drain, worker_groups
from bench.procinfo import CpuMeter
from bench.procs import BenchError, python, running, say
from bench.services import base_env, create_database, fresh

CONCURRENCY = 16
#: jobs per deferring statement: deferring is not timed, and one statement per job would take minutes
DEFER_BATCH = 1_000
#: each poll counts rows in PostgreSQL, which the worker also uses: not as often as a Redis hash
POLL_S = 0.1


def job_counts(database_url: str) -> dict[str, int]:
    return status_counts(database_url, "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1")


def not_done(database_url: str) -> int:
    counts = job_counts(database_url)
    return counts.get("todo", 0) + counts.get("doing", 0)


def procrastinate_drain(root: Path, messages: int, run: int = 1) -> Drain:
    with fresh(root, f"p-procrastinate-{run}", migrated=False) as services:
        url = create_database(services.database_url, "peer")
        connector = procrastinate.PsycopgConnector(conninfo=url)
        with peer.app.replace_connector(connector) as app, app.open():
            app.schema_manager.apply_schema()
            began = time.perf_counter()
            for start in range(0, messages, DEFER_BATCH):
                peer.noop.batch_defer(*({} for _ in range(min(DEFER_BATCH, messages - start))))
            enqueue_s = time.perf_counter() - began
        say(f"(p) {messages} procrastinate jobs deferred in {enqueue_s:.1f} s; starting its worker")
        args = python(
            "-m",
            "procrastinate",
            "--app",
            "bench.peer_procrastinate_app.app",
            # its INFO level logs two lines per job; ours and Dramatiq log none per message
            "--log-level",
            "warning",
            "worker",
            "--queues",
            peer.QUEUE,
            "--concurrency",
            str(CONCURRENCY),
        )
        env = {**base_env(), "PEER_DATABASE_URL": url}
        with running(f"p-procrastinate-worker-{run}", args, env) as worker:
            meter = CpuMeter(worker_groups(services, worker))
            window = watch_drain(lambda: not_done(url), messages, [worker], meter, interval=POLL_S)
            meter.stop()
        first, drained, end = window
        counts = job_counts(url)
        if counts.get("succeeded", 0) != messages:
            raise BenchError(f"(p) procrastinate jobs by status: {counts}; see {worker.log_path}")
        return drain_record("procrastinate", messages, drained, (first, end), enqueue_s, worker.started, meter)
