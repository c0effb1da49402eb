"""Scenarios (a) and (b): how fast one worker pool drains a full queue, raw Dramatiq against ours.

Both put every message on the queue *before* the worker starts, so publishing does
not compete with consuming for the 2 cores and the worker's start-up is not timed:
the clock starts at the first acknowledged message and stops when the last one is
done ((a): the queue's message hash is empty; (b): every row in ``jobs`` is
``succeeded``). The rate is the messages still queued at the start over that time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import psycopg
import redis

from bench import raw_actor
from bench.procinfo import CpuMeter
from bench.procs import BenchError, Proc, python, running, say, wait_for
from bench.services import Services, fresh
from contracts import publish, system
from contracts.publish import broker_for

#: the same worker shape for both: 2 processes x 8 threads
WORKER_SHAPE = ("--processes", "2", "--threads", "8")
DRAIN_TIMEOUT_S = 300.0


@dataclass
class Drain:
    label: str
    #: messages drained inside the timed window
    messages: int
    seconds: float
    #: putting all messages on the queue, before the worker started
    enqueue_s: float
    #: worker spawned -> first message acknowledged
    startup_s: float
    cpu: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def msgs_key(services: Services, queue: str) -> str:
    """Dramatiq's Redis broker keeps a message in ``<ns>:<queue>.msgs`` until it is acknowledged."""
    return f"{services.namespace}:{queue}.msgs"


def watch_drain(client: redis.Redis, key: str, total: int, worker: Proc, meter: CpuMeter) -> tuple[float, int, float]:
    """Wait until ``key`` is empty; returns (first ack seen, messages left then, drained)."""
    first: float | None = None
    left_at_first = total
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        left = int(client.hlen(key))  # type: ignore[arg-type]
        now = time.perf_counter()
        if first is None and left < total:
            first, left_at_first = now, left
            meter.start()
        if left == 0:
            assert first is not None
            return first, left_at_first, now
        worker.check()
        if time.monotonic() > deadline:
            raise BenchError(f"{worker.name}: {left} of {total} messages still queued after {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(0.02)


def worker_groups(services: Services, worker: Proc) -> dict[str, list[int]]:
    return {"workers": [worker.pid], **{name: [pid] for name, pid in services.pids.items()}}


def raw_dramatiq(root: Path, messages: int, run: int = 1) -> Drain:
    """(a) the baseline: a no-op actor with Dramatiq's default middleware."""
    with fresh(root, f"a-raw-{run}", postgres=False) as services:
        # the same plain broker (no middleware) that contracts.publish uses in (b)
        broker = broker_for(services.redis_url, namespace=services.namespace)
        broker.declare_queue(raw_actor.QUEUE)
        began = time.perf_counter()
        for _ in range(messages):
            broker.enqueue(
                dramatiq.Message(queue_name=raw_actor.QUEUE, actor_name=raw_actor.ACTOR, args=(), kwargs={}, options={})
            )
        enqueue_s = time.perf_counter() - began
        broker.close()
        say(f"(a) {messages} messages enqueued in {enqueue_s:.1f} s; starting the raw Dramatiq worker")
        args = python("-m", "dramatiq", "bench.raw_actor", "--queues", raw_actor.QUEUE, *WORKER_SHAPE)
        client = services.redis()
        with running(f"a-raw-worker-{run}", args, services.env()) as worker:
            meter = CpuMeter(worker_groups(services, worker))
            first, drained, end = watch_drain(client, msgs_key(services, raw_actor.QUEUE), messages, worker, meter)
            meter.stop()
        dead = int(client.zcard(f"{services.namespace}:{raw_actor.QUEUE}.XQ"))  # type: ignore[arg-type]
        if dead:
            raise BenchError(f"(a) {dead} messages were dead-lettered; see {worker.log_path}")
        return Drain("raw Dramatiq", drained, end - first, enqueue_s, first - worker.started, meter.summary())


def job_counts(database_url: str) -> dict[str, int]:
    """Rows of ``jobs`` by status."""
    with psycopg.connect(database_url) as conn:
        return {str(status): int(n) for status, n in conn.execute("SELECT status, count(*) FROM jobs GROUP BY 1")}


def succeeded(database_url: str) -> int:
    return job_counts(database_url).get("succeeded", 0)


def our_stack(root: Path, messages: int, run: int = 1) -> Drain:
    """(b) ``system.noop`` through ``contracts.publish`` and the ``system`` pool, job store included."""
    with fresh(root, f"b-ours-{run}") as services, services.in_this_process():
        command = system.Noop()
        began = time.perf_counter()
        for _ in range(messages):
            publish(command)
        enqueue_s = time.perf_counter() - began
        say(f"(b) {messages} commands published in {enqueue_s:.1f} s; starting the system pool")
        args = python("-m", "dramatiq", "workers.pools.system", "--queues", "system", *WORKER_SHAPE)
        with running(f"b-system-worker-{run}", args, services.env()) as worker:
            meter = CpuMeter(worker_groups(services, worker))
            first, drained, _ = watch_drain(services.redis(), msgs_key(services, "system"), messages, worker, meter)
            # an acknowledged message has its row written already; a retried one would still be on its way
            wait_for(
                lambda: succeeded(services.database_url) == messages,
                60,
                f"{messages} succeeded jobs",
                interval=0.2,
                watch=[worker],
            )
            end = time.perf_counter()
            meter.stop()
        return Drain("Switchyard", drained, end - first, enqueue_s, first - worker.started, meter.summary())
