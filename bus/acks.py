"""A Redis consumer's acknowledgements, sent a batch per call by one thread.

Dramatiq acknowledges each message in its own script call, from the worker thread that ran it,
which waits for the answer: after the job store's two writes, the largest cost per job in a
worker process (bench/RESULTS-profile.md). Here the worker thread hands the message's Redis id over
and goes on; one thread per consumer sends whatever has gathered in one call
(``broker_adapter.ack_many``).

Nothing is lost by the delay. A message is acknowledged only after its outcome is durable in
Postgres (workers/lifecycle.py), so an acknowledgement that never reaches Redis (the process dies
first, or Redis is away past the shutdown) leaves a message that comes back and finds its job over:
it is skipped, as any redelivery is.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any

import dramatiq

from bus import broker_adapter

log = logging.getLogger(__name__)
#: the most ids in one call
MAX_BATCH = 500
#: how long the first acknowledgement of a batch waits for others (the message's job is durable
#: already; only the broker's count of messages in flight lags by this much)
LINGER_S = 0.005
#: waits between attempts while Redis is away (Dramatiq retries its own acks forever too)
RETRY_S = (0.1, 0.5, 1.0, 2.0)
#: how long closing the consumer waits for the last batch
CLOSE_S = 5.0
_STOP: Any = object()


class Acks:
    def __init__(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def add(self, redis_id: str) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"acks-{self.queue_name}", daemon=True)
                    self._thread.start()
        self._queue.put(redis_id)

    def close(self) -> None:
        """Send what is still waiting (for at most CLOSE_S), then stop."""
        if self._thread is None:
            return
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join(CLOSE_S)

    def _run(self) -> None:
        while True:
            ids = [self._queue.get()]
            if not self._closing.is_set():
                # nobody waits for an acknowledgement: a few milliseconds gather more of them per call
                time.sleep(LINGER_S)
            while len(ids) < MAX_BATCH:
                try:
                    ids.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in ids
            self._send([i for i in ids if i is not _STOP])
            if stop:
                return

    def _send(self, ids: list[str]) -> None:
        for attempt in itertools.count():
            try:
                broker_adapter.ack_many(self.broker, self.queue_name, ids)
                return
            except Exception as err:  # noqa: BLE001 - Redis away, or its client closed: the thread must live on
                why = err.__class__.__name__
                if self._closing.is_set() and attempt >= len(RETRY_S):
                    log.warning("%d acknowledgements on %r not sent: %s", len(ids), self.queue_name, why)
                    return  # their messages come back and find their jobs over
                delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                (log.warning if attempt == 0 else log.debug)(
                    "acknowledgements on %r wait for Redis (%s); again in %.1f s", self.queue_name, why, delay
                )
                time.sleep(delay)
