"""The broker adapter: everything that depends on how a Dramatiq broker keeps its queues.

Enqueueing many messages in one round trip, queue depths, the requeue of dead workers'
messages, a ping. It is the only module that knows Dramatiq's Redis key layout
(``<ns>:<queue>`` lists, ``<ns>:<queue>.msgs`` hashes, ``.DQ`` / ``.XQ`` queues); a contract test
checks that layout against the pinned Dramatiq (tests/test_broker_adapter.py)."""

from __future__ import annotations

import uuid
import weakref
from typing import Any, NamedTuple

import dramatiq
import msgspec
from dramatiq.common import dq_name, xq_name


def is_rabbitmq(broker: dramatiq.Broker) -> bool:
    return type(broker).__name__ == "RabbitmqBroker"


def ping(broker: dramatiq.Broker) -> None:
    """Raises when the broker does not answer."""
    if not is_rabbitmq(broker):
        broker.client.ping()  # type: ignore[attr-defined]
        return
    try:
        broker.connection.process_data_events(time_limit=0)  # type: ignore[attr-defined]
    except Exception:
        del broker.connection  # type: ignore[attr-defined]  # the next call opens a fresh one
        raise


def depths(broker: dramatiq.Broker, queues: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """queue -> (ready, delayed, dead-lettered) message counts."""
    if is_rabbitmq(broker):
        try:
            return {q: broker.get_queue_message_counts(q) for q in queues}  # type: ignore[attr-defined]
        except Exception:
            del broker.connection  # type: ignore[attr-defined]
            raise
    client = broker.client  # type: ignore[attr-defined]
    ns = broker.namespace  # type: ignore[attr-defined]
    with client.pipeline(transaction=False) as pipe:
        for q in queues:
            pipe.llen(f"{ns}:{q}")
            pipe.llen(f"{ns}:{dq_name(q)}")
            pipe.zcard(f"{ns}:{xq_name(q)}")
        counts = pipe.execute()
    return {q: tuple(counts[i * 3 : i * 3 + 3]) for i, q in enumerate(queues)}  # type: ignore[misc]


def requeue_orphans(broker: dramatiq.Broker, queues: tuple[str, ...]) -> None:
    """Put messages held by dead Redis workers back on their queues, now.

    Dramatiq's Redis broker does this only in a maintenance pass that runs on a random
    fraction of broker calls, and only for the queue of that call, so a killed
    worker's message can wait minutes. The ticker calls this every pass, so recovery
    takes the heartbeat timeout plus one ticker interval. RabbitMQ needs nothing:
    it requeues a consumer's unacked messages as soon as its connection drops.
    """
    if is_rabbitmq(broker):
        return
    sweeper = _maintenance_broker(broker)
    for queue in queues:
        sweeper.do_qsize(queue)
        sweeper.do_qsize(dq_name(queue))


_maintainers: weakref.WeakKeyDictionary[dramatiq.Broker, dramatiq.Broker] = weakref.WeakKeyDictionary()


def _maintenance_broker(broker: dramatiq.Broker) -> dramatiq.Broker:
    """A broker on the same client and namespace whose every call runs the maintenance pass."""
    if broker not in _maintainers:
        from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

        _maintainers[broker] = RedisBroker(
            client=broker.client,  # type: ignore[attr-defined]
            namespace=broker.namespace,  # type: ignore[attr-defined]
            heartbeat_timeout=broker.heartbeat_timeout,  # type: ignore[attr-defined]
            maintenance_chance=MAINTENANCE_SCALE,
            middleware=[],
        )
    return _maintainers[broker]


def enqueue(broker: dramatiq.Broker, message: dramatiq.Message) -> None:
    broker.declare_queue(message.queue_name)
    broker.enqueue(message)


def enqueue_many(broker: dramatiq.Broker, messages: list[dramatiq.Message], chunk: int = 1000) -> None:
    """Many messages at once. On Redis: one round trip per ``chunk`` (pipelined HSET + RPUSH,
    exactly what Dramatiq's enqueue writes, with a fresh ``redis_message_id``); elsewhere one
    enqueue per message."""
    if not is_redis(broker):
        for message in messages:
            enqueue(broker, message)
        return
    namespace = broker.namespace  # type: ignore[attr-defined]
    for start in range(0, len(messages), chunk):
        with broker.client.pipeline(transaction=False) as pipe:  # type: ignore[attr-defined]
            for message in messages[start : start + chunk]:
                add_to_redis_queue(pipe, namespace, message)
            pipe.execute()


def is_redis(broker: dramatiq.Broker) -> bool:
    return type(broker).__name__ == "RedisBroker"


async def enqueue_many_async(client: Any, broker: dramatiq.Broker, messages: list[dramatiq.Message]) -> None:
    """On the Redis broker, from an event loop: all ``messages`` in one MULTI/EXEC on ``client``
    (a redis.asyncio client of the broker's Redis)."""
    async with client.pipeline(transaction=True) as pipe:
        for message in messages:
            add_to_redis_queue(pipe, broker.namespace, message)  # type: ignore[attr-defined]
        await pipe.execute()


def add_to_redis_queue(pipe: Any, namespace: str, message: dramatiq.Message) -> None:
    """Queue ``message`` in a redis-py pipeline (sync or asyncio) the way Dramatiq's Redis
    broker does: the body in ``<ns>:<queue>.msgs`` under a fresh id, the id pushed on ``<ns>:<queue>``."""
    redis_id = str(uuid.uuid4())
    body = message.copy(options={"redis_message_id": redis_id}).encode()
    pipe.hset(f"{namespace}:{message.queue_name}.msgs", redis_id, body)
    pipe.rpush(f"{namespace}:{message.queue_name}", redis_id)


# -- what the broker still holds, for the reconciler (workers/reconciler.py) --------------------


class Held(NamedTuple):
    """The job ids (message ids) a Redis broker holds messages for, on one queue."""

    #: waiting, delayed (a retry, a continuation) or being worked on: ``<q>.msgs`` and ``<q>.DQ.msgs``
    #: keep a message until it is acknowledged
    live: set[str]
    #: dead-lettered: ``<q>.XQ.msgs``
    dead: set[str]


class _Envelope(msgspec.Struct):
    message_id: str


_envelope = msgspec.json.Decoder(_Envelope)


def held_counts(broker: dramatiq.Broker, queues: tuple[str, ...]) -> dict[str, int] | None:
    """queue -> how many messages the broker holds for it, waiting, delayed or in flight (not
    dead-lettered). None on RabbitMQ, which cannot be looked into without consuming."""
    if not is_redis(broker):
        return None
    ns = broker.namespace  # type: ignore[attr-defined]
    with broker.client.pipeline(transaction=False) as pipe:  # type: ignore[attr-defined]
        for q in queues:
            pipe.hlen(f"{ns}:{q}.msgs")
            pipe.hlen(f"{ns}:{dq_name(q)}.msgs")
        counts = pipe.execute()
    return {q: counts[2 * i] + counts[2 * i + 1] for i, q in enumerate(queues)}


def held_messages(broker: dramatiq.Broker, queue: str, *, chunk: int = 1000) -> Held | None:
    """The job ids the Redis broker holds messages for on ``queue`` (read with HSCAN, ``chunk``
    entries per round trip, so Redis is never blocked by one large read). None on RabbitMQ."""
    if not is_redis(broker):
        return None
    ns = broker.namespace  # type: ignore[attr-defined]
    client = broker.client  # type: ignore[attr-defined]

    def ids(key: str) -> set[str]:
        found = set()
        for _, body in client.hscan_iter(key, count=chunk):
            try:
                found.add(_envelope.decode(body).message_id)
            except msgspec.DecodeError:
                continue  # not a message of ours (a poison message): it names no job
        return found

    return Held(
        live=ids(f"{ns}:{queue}.msgs") | ids(f"{ns}:{dq_name(queue)}.msgs"),
        dead=ids(f"{ns}:{xq_name(queue)}.msgs"),
    )
