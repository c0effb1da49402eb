"""Peer (q): Celery, prefork workers on the Redis broker with the database result backend.

Measured like (a) and (b): every task is sent before the workers start, then two
``celery worker`` processes, each a prefork pool of 8 child processes (2 x 8, the shape
of our pool), drain them. The clock runs from the first result row seen in SUCCESS to
the last (polled from ``celery_taskmeta``), so start-up is not timed.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from bench import peer_celery_app as peer
from bench.bus import Drain, drain_record, status_counts, watch_drain, worker_groups
from bench.procinfo import CpuMeter
from bench.procs import BenchError, Proc, python, say
from bench.services import base_env, create_database, fresh

WORKERS = 2
CONCURRENCY = 8
#: each poll counts rows in PostgreSQL, which the workers also use: not as often as a Redis hash
POLL_S = 0.1


def result_counts(database_url: str) -> dict[str, int]:
    return status_counts(database_url, "SELECT status, count(*) FROM celery_taskmeta GROUP BY 1")


def not_done(database_url: str, total: int) -> int:
    return total - result_counts(database_url).get("SUCCESS", 0)


def worker_args(number: int) -> list[str]:
    return python(
        "-m",
        "celery",
        "-A",
        "bench.peer_celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(CONCURRENCY),
        "--queues",
        peer.QUEUE,
        "--hostname",
        f"bench{number}@%h",
        # its INFO level logs two lines per task; ours and Dramatiq log none per message
        "--loglevel",
        "WARNING",
    )


def celery_drain(root: Path, messages: int, run: int = 1) -> Drain:
    with fresh(root, f"q-celery-{run}", migrated=False) as services:
        url = create_database(services.database_url, "peer")
        env = {
            **base_env(),
            "PEER_BROKER_URL": services.redis_url,
            "PEER_RESULT_BACKEND": "db+" + url.replace("postgresql://", "postgresql+psycopg://", 1),
        }
        app = peer.make_app(env["PEER_BROKER_URL"], env["PEER_RESULT_BACKEND"])
        try:
            app.backend.ResultSession().close()  # creates celery_taskmeta before anything polls it
            began = time.perf_counter()
            with app.producer_or_acquire() as producer:
                for _ in range(messages):
                    app.send_task(peer.TASK, queue=peer.QUEUE, producer=producer)
            enqueue_s = time.perf_counter() - began
        finally:
            app.close()
        say(f"(q) {messages} Celery tasks sent in {enqueue_s:.1f} s; starting {WORKERS} workers")
        with contextlib.ExitStack() as stack:
            workers = [Proc(f"q-celery-worker{n}-{run}", worker_args(n), env) for n in range(1, WORKERS + 1)]
            for worker in workers:
                stack.callback(worker.stop)
            meter = CpuMeter(worker_groups(services, *workers))
            window = watch_drain(lambda: not_done(url, messages), messages, workers, meter, interval=POLL_S)
            meter.stop()
        first, drained, end = window
        counts = result_counts(url)
        if counts.get("SUCCESS", 0) != messages:
            raise BenchError(f"(q) Celery results by status: {counts}; see {workers[0].log_path}")
        return drain_record("Celery", messages, drained, (first, end), enqueue_s, workers[0].started, meter)
