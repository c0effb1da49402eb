"""``publish()``: put a command on the bus from Python, with no other code of ours.

The broker is Dramatiq's own (Redis by default, RabbitMQ for ``amqp://`` URLs), so
queue names, delay queues and queue arguments are exactly what the workers expect.
The job record appears when a worker receives the message; to have it recorded
(``queued``) before that, submit through the HTTP API or ``python -m ingress publish``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq

from contracts.base import CommandBase
from contracts.command import convert, route
from contracts.message import build, job_id_for

_brokers: dict[str, dramatiq.Broker] = {}
_lock = threading.Lock()


def broker_for(url: str, *, namespace: str = "dramatiq") -> dramatiq.Broker:
    """A plain Dramatiq broker for ``url`` (``redis://``/``rediss://`` or ``amqp://``/``amqps://``)."""
    key = f"{namespace}|{url}"
    with _lock:
        if key not in _brokers:
            if url.startswith(("amqp://", "amqps://")):
                from dramatiq.brokers.rabbitmq import RabbitmqBroker

                _brokers[key] = RabbitmqBroker(url=url, middleware=[])
            elif url.startswith(("redis://", "rediss://", "unix://")):
                import redis
                from dramatiq.brokers.redis import RedisBroker

                # timeouts: a stalled Redis fails the publish instead of hanging the producer
                client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
                # maintenance off: the ticker requeues dead workers' messages at the head of their
                # queues; Dramatiq's pass, run from a producer's calls, would put them at the tail
                _brokers[key] = RedisBroker(client=client, namespace=namespace, middleware=[], maintenance_chance=0)
            else:
                raise ValueError("BROKER_URL must start with redis://, rediss://, unix://, amqp:// or amqps://")
        return _brokers[key]


def default_broker_url() -> str:
    return os.environ.get("BROKER_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def publish(
    command: CommandBase | dict[str, Any],
    idempotency_key: str | None = None,
    delay: float | None = None,
    *,
    broker: dramatiq.Broker | None = None,
    trace_id: str | None = None,
) -> str:
    """Validate ``command`` and enqueue it; returns the job id.

    ``delay`` is in seconds. The same ``idempotency_key`` always yields the same job
    id, and the workers run a job id at most once to success.
    """
    if not isinstance(command, CommandBase):
        command = convert(command)
    if delay is not None and not 0 <= delay <= 7 * 86400:
        raise ValueError("delay must be between 0 and 7 days")
    job_id = job_id_for(idempotency_key)
    fields = build(command, job_id=job_id, idempotency_key=idempotency_key, trace_id=trace_id)
    broker = broker or broker_for(default_broker_url(), namespace=os.environ.get("BROKER_NAMESPACE", "dramatiq"))
    broker.declare_queue(route(command).queue)
    broker.enqueue(
        dramatiq.Message(**{**fields, "args": tuple(fields["args"])}),
        delay=None if delay is None else int(delay * 1000),
    )
    return job_id
