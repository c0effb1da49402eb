"""The ticker process (``python -m workers.ticker``).

- Every tick it emits the commands of due schedules (workers/emitter.py).
- Every sweep interval it requeues the messages of Redis workers that died
  mid-job, at the head of their queues (bus/broker_adapter.requeue_orphans, instead of
  Dramatiq's random maintenance pass, which the workers leave off), enqueues accepted jobs
  the broker never received (workers/sweeper.py), and re-drives from the jobs table what the
  broker or a worker lost (workers/reconciler.py); every few minutes it deletes the jobs past
  their retention (workers/job_retention.py).
- In a thread of its own it publishes the job events the jobs table's trigger records
  (workers/event_relay.py), so the tick loop never waits on it.
- It lists itself with the worker processes (bus/presence.py, role ``ticker``), so the
  dashboard shows whether anything is firing the schedules.

Any number of tickers can run: each pass locks what it works on with SKIP LOCKED,
and a slot's job id is derived from (schedule, slot).
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dramatiq
import redis

from bus import broker as broker_setup
from bus import settings
from bus.broker_adapter import requeue_orphans
from bus.jobstore import unavailable
from bus.presence import Beacon
from bus.redis_client import sync_client
from contracts import QUEUES
from workers import reconciler
from workers.emitter import BATCH, emit_due, seconds_until_due
from workers.event_relay import EventRelay
from workers.job_retention import JobRetention
from workers.sweeper import sweep

log = logging.getLogger("workers.ticker")


def _guarded(what: str, step) -> None:  # type: ignore[no-untyped-def]
    try:
        step()
    except Exception as err:
        if unavailable(err) or "Connection" in type(err).__name__:
            log.warning("%s skipped: %s", what, type(err).__name__)
        else:
            log.exception("%s failed", what)


def tick(bus: dramatiq.Broker, s: settings.Settings, helper: ThreadPoolExecutor) -> None:
    grace = dt.timedelta(seconds=s.misfire_grace_s)
    if _batch(bus, grace) < BATCH:
        return  # the usual tick: one batch held all that was due
    # A full batch means more are due (10,000 schedules on the minute): two batches at a time, on
    # two connections, so one is built and sent while the other waits on Postgres. Each locks its
    # own rows (SKIP LOCKED), as two tickers do.
    other = helper.submit(_drain, bus, grace)
    try:
        _drain(bus, grace)
    finally:
        other.result()


def _batch(bus: dramatiq.Broker, grace: dt.timedelta) -> int:
    return emit_due(bus, now=dt.datetime.now(dt.UTC), grace=grace)[0]


def _drain(bus: dramatiq.Broker, grace: dt.timedelta) -> None:
    while _batch(bus, grace) >= BATCH:
        pass


def housekeeping(bus: dramatiq.Broker, s: settings.Settings) -> None:
    # the events queues too: a rule processor or an outside consumer killed mid-event has its
    # messages put back as a pool's worker has
    back = requeue_orphans(bus, (*QUEUES, *s.event_destinations))
    if back:
        log.info("requeued %d messages of dead workers at the head of their queues", back)
    while sweep(bus, grace_s=s.enqueue_grace_s):
        pass  # a backlog is drained in batches without waiting


def reconcile(bus: dramatiq.Broker, presence: redis.Redis, s: settings.Settings) -> None:
    # two steps, each skipped alone: lost attempts need Redis (presence), lost messages do not on RabbitMQ
    _guarded("reconcile running jobs", lambda: reconciler.reclaim_lost_attempts(bus, presence, s))
    _guarded("reconcile waiting jobs", lambda: reconciler.redrive_lost_messages(bus, s))


def run(stop: threading.Event) -> None:
    s = settings.get()
    settings.require_database()
    bus = broker_setup.build()
    log.info("ticker started: tick %.2f s, sweep %.1f s", s.tick_interval_s, s.sweep_interval_s)
    beacon = Beacon("ticker").start()
    presence = sync_client()
    relay = EventRelay(bus, s).start()
    try:
        _loop(bus, presence, s, stop)
    finally:
        relay.stop()
        beacon.stop()
        presence.close()
        bus.close()


def _loop(bus: dramatiq.Broker, presence: redis.Redis, s: settings.Settings, stop: threading.Event) -> None:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tick") as helper:
        _ticks(bus, presence, s, stop, helper)


def _ticks(
    bus: dramatiq.Broker, presence: redis.Redis, s: settings.Settings, stop: threading.Event, helper: ThreadPoolExecutor
) -> None:
    next_sweep = 0.0
    retention = JobRetention(s.job_retention_days)
    while not stop.is_set():
        _guarded("tick", lambda: tick(bus, s, helper))
        if time.monotonic() >= next_sweep:
            _guarded("sweep", lambda: housekeeping(bus, s))
            reconcile(bus, presence, s)
            _guarded("job retention", retention.run)  # a pass every few minutes at most
            next_sweep = time.monotonic() + s.sweep_interval_s
        wait = s.tick_interval_s
        try:
            due_in = seconds_until_due(dt.datetime.now(dt.UTC))
            if due_in is not None:
                wait = min(wait, due_in)
        except Exception:  # noqa: BLE001 - the next tick reports it
            pass
        stop.wait(max(wait, 0.01))


def main() -> None:
    logging.basicConfig(level=settings.get().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
