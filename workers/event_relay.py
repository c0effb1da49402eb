"""The event relay: a thread of the ticker that puts the job events outbox on the bus.

The outbox and one relay pass are bus/event_outbox.py. This is the loop around them: it looks at
the outbox every ``EVENT_RELAY_POLL_S`` (a probe of the partial index of unpublished events, nearly
free while it is empty) and publishes batches until the backlog is gone. It polls rather than
LISTENs because a notifying transaction serialises the commits of every worker (migration 0012 has
the figures). While the broker or Postgres is down the events wait in Postgres: one warning when
publishing stops, one line when it works again, and tries in between with backoff
(``MIN_BACKOFF_S`` doubling to ``MAX_BACKOFF_S``).

Its own thread, so the ticker's tick loop never waits on it (a broker timeout here delays no
schedule). Any number of tickers run one: each batch is locked with SKIP LOCKED.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import dramatiq
import redis

from bus import event_outbox, settings
from bus.jobstore import unavailable
from bus.redis_client import sync_client

log = logging.getLogger(__name__)
MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0


class EventRelay:
    def __init__(self, broker: dramatiq.Broker, s: settings.Settings) -> None:
        self.broker = broker
        self.queues = s.event_destinations
        self.batch = s.event_relay_batch
        self.poll_s = s.event_relay_poll_s
        self.namespace = s.broker_namespace
        self._counter = sync_client()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-relay", daemon=True)
        #: when publishing started failing (None: it works)
        self._failing_since: float | None = None

    def start(self) -> EventRelay:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._counter.close()

    def _run(self) -> None:
        log.info("event relay started: job events go to %s", ", ".join(self.queues))
        backoff = MIN_BACKOFF_S
        while not self._stop.is_set():
            try:
                self.drain()
            except Exception as err:  # noqa: BLE001 - reported once per outage, retried with backoff
                self._failed(err)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = MIN_BACKOFF_S
            self._recovered()
            self._stop.wait(self.poll_s)

    def drain(self) -> int:
        """Publish batches until one is not full; how many events went out."""
        total = 0
        while not self._stop.is_set():
            published = event_outbox.relay_batch(self.broker, self.queues, self.batch)
            if published:
                total += published
                self._count(published)
            if published < self.batch:
                break
        return total

    def _count(self, published: int) -> None:
        with contextlib.suppress(redis.RedisError):  # a metric: the events themselves are out and marked
            event_outbox.count_published(self._counter, self.namespace, published)

    def _failed(self, err: Exception) -> None:
        if self._failing_since is not None:
            log.debug("event relay: still failing (%s)", type(err).__name__)
            return
        self._failing_since = time.monotonic()
        if _outage(err):
            log.warning(
                "event relay: cannot publish job events (%s); they wait in Postgres, trying again every %.0f s at most",
                type(err).__name__,
                MAX_BACKOFF_S,
            )
        else:
            log.exception("event relay: publishing job events failed; trying again every %.0f s at most", MAX_BACKOFF_S)

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info("event relay: publishing again after %.1f s", time.monotonic() - self._failing_since)
            self._failing_since = None


def _outage(err: BaseException) -> bool:
    """Postgres or the broker is away (Redis, RabbitMQ: pika's and Dramatiq's connection errors)."""
    return unavailable(err) or "Connection" in type(err).__name__
