"""For the job events tests: a database of the test's own, and a consumer of an events queue that
reads it the way an outside consumer would (Dramatiq's consumer API, not the broker's key layout)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import psycopg
import redis
from psycopg.rows import dict_row

from bus.migrate import migrate
from contracts.event import event_id
from tests.support import wait_for

#: (job id, attempt, status): one transition
Transition = tuple[str, int, str]


@contextmanager
def own_database(server_url: str) -> Iterator[str]:
    """A fresh, migrated database on ``server_url``: no other test's ticker relays its events."""
    name = f"events_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def outbox(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM job_events ORDER BY id").fetchall()


def transitions(database_url: str) -> list[Transition]:
    return [(r["job_id"], r["attempt"], r["status"]) for r in outbox(database_url)]


def unpublished(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM job_events WHERE published_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def ids_of(expected: set[Transition]) -> dict[str, Transition]:
    return {event_id(*t): t for t in expected}


def make_broker(url: str, namespace: str) -> dramatiq.Broker:
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=[])
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(
        client=redis.Redis.from_url(url, socket_timeout=5), namespace=namespace, middleware=[], maintenance_chance=0
    )


class EventTap:
    """Consumes one events queue in a thread, acknowledging and keeping every message."""

    def __init__(self, url: str, namespace: str, queue: str) -> None:
        self.queue = queue
        self.broker = make_broker(url, namespace)
        self.broker.declare_queue(queue)
        self.messages: list[dramatiq.Message] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                consumer = self.broker.consume(self.queue, prefetch=200, timeout=200)
                for proxy in consumer:
                    if self._stop.is_set():
                        break
                    if proxy is None:
                        continue
                    with self._lock:
                        self.messages.append(proxy._message)
                    consumer.ack(proxy)
                consumer.close()
            except Exception:  # noqa: BLE001 - the broker restarted under the test: consume again
                self._stop.wait(0.2)

    def ids(self) -> Counter[str]:
        with self._lock:
            return Counter(m.message_id for m in self.messages)

    def wait(self, expected: set[str], timeout: float = 60) -> Counter[str]:
        """Until every id of ``expected`` has arrived; the count of every id received."""
        wait_for(lambda: expected <= set(self.ids()), timeout, 0.1, f"{len(expected)} events on {self.queue}")
        return self.ids()

    def of(self, message_id: str) -> list[dramatiq.Message]:
        with self._lock:
            return [m for m in self.messages if m.message_id == message_id]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.broker.close()
