"""Scenarios (a) and (b): how fast one worker pool drains a full queue, raw Dramatiq against ours.

Both put every message on the queue *before* the worker starts, so publishing does
not compete with consuming for the 2 cores and the worker's start-up is not timed:
the clock starts at the first acknowledged message and stops when the last one is
done ((a): the queue's message hash is empty; (b): every row in ``jobs`` is
``succeeded``). The rate is the messages still queued at the start over that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    #: all messages enqueued (the timed window starts after the first few are done)
    total: int = 0
    #: CPU seconds by process group over the timed window (CpuMeter.used)
    cpu_used: dict[str, float] = field(default_factory=dict)
    #: what else the details should say about this run
    notes: list[str] = field(default_factory=list)
    #: the scale case: commands/s through the ingress's insert path on the empty table, then on the filled one
    accepted: tuple[float, float] | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def end_to_end_rate(self) -> float:
        """All messages over the time to enqueue them plus the time to drain them at ``rate``."""
        return self.total / (self.enqueue_s + self.total / self.rate)

    def cpu_ms_per_message(self, groups: tuple[str, ...]) -> float:
        return 1000 * sum(self.cpu_used.get(name, 0.0) for name in groups) / self.messages


def shape_text(shape: tuple[str, ...]) -> str:
    """``("--processes", "2", "--threads", "8")`` -> ``"2 x 8"``."""
    return " x ".join(shape[1::2])


def drain_record(
    label: str,
    total: int,
    drained: int,
    window: tuple[float, float],
    enqueue_s: float,
    worker_started: float,
    meter: CpuMeter,
) -> Drain:
    """The ``Drain`` of a run of ``total`` messages whose timed window (first done, last done) was
    ``window``, ``drained`` of them done inside it."""
    first, end = window
    return Drain(
        label,
        drained,
        end - first,
        enqueue_s,
        first - worker_started,
        meter.summary(),
        total=total,
        cpu_used=dict(meter.used),
    )


def msgs_key(services: Services, queue: str) -> str:
    """Dramatiq's Redis broker keeps a message in ``<ns>:<queue>.msgs`` until it is acknowledged."""
    return f"{services.namespace}:{queue}.msgs"


def watch_drain(
    left: Callable[[], int], total: int, workers: list[Proc], meter: CpuMeter, *, interval: float = 0.02
) -> tuple[float, int, float]:
    """Poll ``left()`` (messages not done yet) until it is 0; returns (first done seen, messages left
    then, all done). The meter starts at the first one done: the workers' start-up is not timed."""
    first: float | None = None
    left_at_first = total
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        now_left = left()
        now = time.perf_counter()
        if first is None and now_left < total:
            first, left_at_first = now, now_left
            meter.start()
        if now_left == 0:
            assert first is not None
            return first, left_at_first, now
        for worker in workers:
            worker.check()
        if time.monotonic() > deadline:
            raise BenchError(f"{workers[0].name}: {now_left} of {total} still to do after {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(interval)


def hash_size(client: redis.Redis, key: str) -> Callable[[], int]:
    return lambda: int(client.hlen(key))  # type: ignore[arg-type]


def worker_groups(services: Services, *workers: Proc) -> dict[str, list[int]]:
    return {"workers": [w.pid for w in workers], **{name: [pid] for name, pid in services.pids.items()}}


def raw_dramatiq(root: Path, messages: int, run: int = 1, shape: tuple[str, ...] = WORKER_SHAPE) -> Drain:
    """(a) the baseline: a no-op actor with Dramatiq's default middleware."""
    tag = shape_text(shape).replace(" ", "")
    with fresh(root, f"a-raw-{tag}-{run}", postgres=False) as services:
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
        args = python("-m", "dramatiq", "bench.raw_actor", "--queues", raw_actor.QUEUE, *shape)
        client = services.redis()
        with running(f"a-raw-worker-{tag}-{run}", args, services.env()) as worker:
            meter = CpuMeter(worker_groups(services, worker))
            queued = hash_size(client, msgs_key(services, raw_actor.QUEUE))
            first, drained, end = watch_drain(queued, messages, [worker], meter)
            meter.stop()
        dead = int(client.zcard(f"{services.namespace}:{raw_actor.QUEUE}.XQ"))  # type: ignore[arg-type]
        if dead:
            raise BenchError(f"(a) {dead} messages were dead-lettered; see {worker.log_path}")
        return drain_record("raw Dramatiq", messages, drained, (first, end), enqueue_s, worker.started, meter)


def status_counts(database_url: str, query: str) -> dict[str, int]:
    """What ``query`` (``SELECT status, count(*) ... GROUP BY 1``) counts, by status: our jobs, and
    the peers' tables."""
    with psycopg.connect(database_url) as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


def job_counts(database_url: str) -> dict[str, int]:
    """Rows of ``jobs`` by status."""
    return status_counts(database_url, "SELECT status, count(*) FROM jobs GROUP BY 1")


def succeeded(database_url: str) -> int:
    return job_counts(database_url).get("succeeded", 0)


#: a job on its way still (a failed one waits for its retry)
UNFINISHED = ("queued", "running", "failed")


def unfinished(database_url: str) -> int:
    """Jobs not over yet: read from ``jobs_status_created_idx``, so polling it stays cheap beside a
    million finished rows (counting those would load the server inside the timed window)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE status = ANY(%s)", (list(UNFINISHED),)).fetchone()
    return int(row[0]) if row else 0


def our_stack(
    root: Path,
    messages: int,
    run: int = 1,
    shape: tuple[str, ...] = WORKER_SHAPE,
    *,
    tag: str = "",
    prepare: Callable[[Services], None] | None = None,
    inspect: Callable[[Services, Drain], None] | None = None,
) -> Drain:
    """(b) ``system.noop`` through ``contracts.publish`` and the ``system`` pool, job store included.

    ``prepare`` runs on the fresh servers before anything is published (the scale case fills
    ``jobs`` there); ``inspect`` after the drain, while the servers still run."""
    name = f"b-ours-{tag or shape_text(shape).replace(' ', '')}-{run}"
    with fresh(root, name) as services, services.in_this_process():
        if prepare is not None:
            prepare(services)
        start_count = succeeded(services.database_url)
        command = system.Noop()
        began = time.perf_counter()
        for _ in range(messages):
            publish(command)
        enqueue_s = time.perf_counter() - began
        say(f"(b) {messages} commands published in {enqueue_s:.1f} s; starting the system pool")
        args = python("-m", "dramatiq", "workers.pools.system", "--queues", "system", *shape)
        with running(f"{name}-worker", args, services.env()) as worker:
            meter = CpuMeter(worker_groups(services, worker))
            queued = hash_size(services.redis(), msgs_key(services, "system"))
            first, drained, _ = watch_drain(queued, messages, [worker], meter)
            # an acknowledged message has its row written already; a retried one would still be on its way
            wait_for(
                lambda: unfinished(services.database_url) == 0,
                60,
                f"{messages} finished jobs",
                interval=0.2,
                watch=[worker],
            )
            end = time.perf_counter()
            meter.stop()
        done = succeeded(services.database_url) - start_count
        if done != messages:
            raise BenchError(f"(b) {done} of {messages} jobs succeeded: {job_counts(services.database_url)}")
        drain = drain_record("Switchyard", messages, drained, (first, end), enqueue_s, worker.started, meter)
        if inspect is not None:
            inspect(services, drain)
        return drain
