"""Which worker processes are alive, what they consume and what they are running, kept in Redis.

Dramatiq has no registry of workers that works on both brokers (the Redis broker's heartbeats
carry no queues, RabbitMQ keeps none), so every worker process, and the ticker, keeps its own
entry fresh:

- ``switchyard:<ns>:worker:<host>:<pid>``: the process as JSON (role, pool, queues, threads,
  start time, the jobs it is running), rewritten every ``BEAT_S`` seconds and soon after a job
  starts or ends, with a ``KEEP_S`` expiry: a process killed outright drops out by itself. The
  reconciler (workers/reconciler.py) never re-drives a job a live process lists.
- ``switchyard:<ns>:workers``: a sorted set of those ids by last beat, so a reader finds them
  without scanning the keyspace.

``<ns>`` is BROKER_NAMESPACE, so deployments sharing a Redis each see their own workers. Liveness
is the key's expiry (Redis's clock); the sorted set's scores (each writer's clock) only narrow the
search and are pruned by readers, so a few seconds of clock skew between hosts hide no one.
Presence is best effort: a Redis outage is logged and never stops a worker or its jobs.
"""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import socket
import sys
import threading
import time
from typing import Any

import dramatiq
import msgspec
import redis
import redis.asyncio as aioredis
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from bus import settings
from bus.redis_client import sync_client

log = logging.getLogger(__name__)

BEAT_S = 2.0
#: a process not heard from for this long is gone
KEEP_S = 15
#: readers drop sorted-set members older than this (their keys expired long ago)
PRUNE_S = 60
#: least time between two writes, however many jobs start and end meanwhile
MIN_GAP_S = 0.25
#: in-flight jobs listed per process (a process runs at most its thread count anyway)
MAX_JOBS = 100


def members_key(namespace: str) -> str:
    return f"switchyard:{namespace}:workers"


def member_key(namespace: str, member_id: str) -> str:
    return f"switchyard:{namespace}:worker:{member_id}"


class Running(msgspec.Struct, frozen=True):
    id: str
    type: str
    #: epoch seconds
    since: float


class Member(msgspec.Struct, kw_only=True):
    id: str
    host: str
    pid: int
    #: "worker" or "ticker"
    role: str
    pool: str = ""
    queues: list[str] = []
    threads: int = 0
    started_at: float
    seen_at: float
    #: "running", or "stopping" while it finishes its jobs before exiting
    state: str = "running"
    jobs: list[Running] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Member)


class Beacon:
    """One process's entry: a daemon thread keeps it fresh until ``stop``."""

    def __init__(
        self,
        role: str,
        *,
        pool: str = "",
        queues: list[str] | None = None,
        threads: int = 0,
        client: redis.Redis | None = None,
        namespace: str | None = None,
    ) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}"
        self.role = role
        self.pool = pool
        self.queues = sorted(queues or [])
        self.threads = threads
        self.started_at = time.time()
        self.namespace = namespace or settings.get().broker_namespace
        self._client = client
        self._running: dict[str, Running] = {}
        #: deliveries of each listed job in this process: a duplicate message handled here while the
        #: job runs must not unlist it when the duplicate is done
        self._deliveries: dict[str, int] = {}
        self._state = "running"
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._stopped = False
        self._farewell: multiprocessing.util.Finalize | None = None

    def start(self) -> Beacon:
        if self._client is None:
            self._client = sync_client()
        self._thread = threading.Thread(target=self._run, name="presence", daemon=True)
        self._thread.start()
        global _local
        _local = self
        # a process that exits without the shutdown hooks (a Dramatiq worker told twice to stop exits at
        # once) still says goodbye. Not atexit: a Dramatiq worker process is a multiprocessing child and
        # ends with os._exit, which skips atexit; multiprocessing runs these finalizers first (and at
        # an ordinary interpreter exit too)
        self._farewell = multiprocessing.util.Finalize(None, self.stop, exitpriority=10)
        return self

    def deliveries(self, job_id: str) -> int:
        with self._lock:
            return self._deliveries.get(job_id, 0)

    def begin(self, job_id: str, type: str) -> None:
        with self._lock:
            self._deliveries[job_id] = self._deliveries.get(job_id, 0) + 1
            if job_id not in self._running:
                self._running[job_id] = Running(job_id, type, time.time())
        self._changed_now()

    def end(self, job_id: str) -> None:
        with self._lock:
            left = self._deliveries.pop(job_id, 0) - 1
            if left > 0:
                self._deliveries[job_id] = left
                return
            gone = self._running.pop(job_id, None)
        if gone is not None:
            self._changed_now()

    def _changed_now(self) -> None:
        # under load the flag is nearly always set already (the beacon writes at most every
        # MIN_GAP_S): setting it again would take its condition's lock for each job for nothing
        if not self._changed.is_set():
            self._changed.set()

    def draining(self) -> None:
        with self._lock:
            self._state = "stopping"
        self._changed.set()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._farewell is not None:
            self._farewell.cancel()
        self._stop.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._guarded("remove", self._remove)

    def snapshot(self) -> Member:
        with self._lock:
            jobs = sorted(self._running.values(), key=lambda r: r.since)[:MAX_JOBS]
            state = self._state
        return Member(
            id=self.id,
            host=self.host,
            pid=self.pid,
            role=self.role,
            pool=self.pool,
            queues=self.queues,
            threads=self.threads,
            started_at=self.started_at,
            seen_at=time.time(),
            state=state,
            jobs=jobs,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            # cleared before the snapshot: a job starting or ending during the write is in the next one
            self._changed.clear()
            self._guarded("beat", self._publish)
            self._changed.wait(BEAT_S)
            # a burst of short jobs becomes one write, not one per job
            self._stop.wait(MIN_GAP_S)

    def _publish(self) -> None:
        member = self.snapshot()
        assert self._client is not None
        with self._client.pipeline(transaction=False) as pipe:
            # the key before the index: a reader that finds the id finds its entry
            pipe.set(member_key(self.namespace, self.id), _encoder.encode(member), ex=KEEP_S)
            pipe.zadd(members_key(self.namespace), {self.id: member.seen_at})
            pipe.execute()

    def _remove(self) -> None:
        if self._client is None:
            return
        with self._client.pipeline(transaction=False) as pipe:
            pipe.delete(member_key(self.namespace, self.id))
            pipe.zrem(members_key(self.namespace), self.id)
            pipe.execute()

    def _guarded(self, what: str, step: Any) -> None:
        try:
            step()
        except Exception as err:  # noqa: BLE001 - whatever goes wrong here, the worker and its jobs go on
            # once per outage: a beat every two seconds would flood the log
            if not self._failing:
                log.warning("presence %s failed: %s: %s", what, err.__class__.__name__, err)
            self._failing = True
            return
        if self._failing:
            log.info("presence %s works again", what)
            self._failing = False


def _pools() -> str:
    """The pool modules this process loaded (``dramatiq workers.pools.<pool>``)."""
    prefix = "workers.pools."
    return ",".join(sorted(name.removeprefix(prefix) for name in list(sys.modules) if name.startswith(prefix)))


class Presence(Middleware):
    """Registers a Dramatiq worker process and its in-flight jobs (see the module's docstring)."""

    def __init__(self) -> None:
        self.beacon: Beacon | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # the queues it actually consumes: the broker's declared ones that --queues lets through
        queues = sorted({q_name(name) for name in list(worker.consumers)})
        self.beacon = Beacon("worker", pool=_pools(), queues=queues, threads=worker.worker_threads).start()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        if self.beacon is not None:
            self.beacon.begin(message.message_id, message.actor_name)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if self.beacon is not None:
            self.beacon.end(message.message_id)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        if self.beacon is not None:
            self.beacon.end(message.message_id)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # still listed while it finishes its jobs, marked as stopping
        if self.beacon is not None:
            self.beacon.draining()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.beacon is not None:
            self.beacon.stop()
            self.beacon = None


#: this process's beacon, once it has started one
_local: Beacon | None = None


def local_deliveries(job_id: str) -> int:
    """How many deliveries of ``job_id`` this process is handling now (its threads)."""
    return 0 if _local is None else _local.deliveries(job_id)


def local_id() -> str | None:
    return None if _local is None else _local.id


def listed_jobs(
    client: redis.Redis, namespace: str, *, fresh_s: float | None = None, exclude: str | None = None
) -> set[str]:
    """The ids of the jobs that live processes list as running (the reconciler leaves them alone);
    ``fresh_s``: only processes heard from within that many seconds count as live; ``exclude``: a
    process left out (the caller's own, which counts its deliveries itself). Raises on a
    Redis error: without this answer no running job can be judged lost."""
    names = [i.decode() if isinstance(i, bytes) else str(i) for i in client.zrange(members_key(namespace), 0, -1)]
    if not names:
        return set()
    listed: set[str] = set()
    for raw in client.mget([member_key(namespace, name) for name in names]):
        if raw is None:
            continue  # expired: that process is gone
        try:
            member = _decoder.decode(raw)
        except msgspec.DecodeError:
            log.warning("a presence entry is not readable")
            continue
        if member.id == exclude:
            continue
        if fresh_s is None or member.seen_at >= time.time() - fresh_s:
            listed.update(job.id for job in member.jobs)
    return listed


async def alive(client: aioredis.Redis, namespace: str) -> list[Member]:
    """The processes heard from within ``KEEP_S`` seconds, by role then id. Prunes the index."""
    index = members_key(namespace)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(index, "-inf", time.time() - PRUNE_S)
        pipe.zrange(index, 0, -1)
        _, ids = await pipe.execute()
    if not ids:
        return []
    names = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
    raws = await client.mget([member_key(namespace, name) for name in names])
    members, gone = [], []
    for name, raw in zip(names, raws, strict=True):
        if raw is None:
            gone.append(name)
            continue
        try:
            members.append(_decoder.decode(raw))
        except msgspec.DecodeError:
            log.warning("presence entry %s is not readable", name)
    if gone:
        await client.zrem(index, *gone)
    return sorted(members, key=lambda m: (m.role != "ticker", m.role, m.pool, m.host, m.pid))
