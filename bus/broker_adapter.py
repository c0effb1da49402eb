"""The broker adapter: everything that depends on how a Dramatiq broker keeps its queues.

Enqueueing many messages in one round trip, queue depths, the requeue of dead workers'
messages at the head of their queues, the quarantine of messages a worker cannot run, a ping.
It is the only module that knows Dramatiq's Redis key layout (``<ns>:<queue>`` lists,
``<ns>:<queue>.msgs`` hashes, ``.DQ`` delay and ``.XQ`` dead-letter queues, the workers'
``__heartbeats__`` and ``__acks__`` sets), here and in its Lua scripts (bus/lua/); a contract
test checks that layout against the pinned Dramatiq (tests/test_broker_adapter.py)."""

from __future__ import annotations

import functools
import uuid
import weakref
from pathlib import Path
from typing import Any, NamedTuple

import dramatiq
import msgspec
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, q_name, xq_name

from bus import rejections
from bus.rejections import Rejected


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


def requeue_orphans(broker: dramatiq.Broker, queues: tuple[str, ...]) -> int:
    """Put the messages held by dead Redis workers back at the head of their queues, now; returns
    how many went back.

    Dramatiq's Redis broker does this only in a maintenance pass that runs on a random fraction
    of broker calls, for the queue of that call, and it puts them at the tail (RPUSH): behind a
    backlog of a thousand messages a killed worker's jobs waited half a minute. The ticker calls
    this every sweep (``SWEEP_INTERVAL_S``), so they run again within the heartbeat timeout plus
    one sweep, before the backlog. ``queues`` must be every queue of the namespace (the routing
    table's): a dead worker is forgotten once its messages on them are back. RabbitMQ needs
    nothing: it requeues a consumer's unacked messages as soon as its connection drops.
    """
    if is_rabbitmq(broker):
        return 0
    names = [name for queue in queues for name in (queue, dq_name(queue))]
    return int(
        _script(broker, "requeue_dead")(
            keys=[broker.namespace],  # type: ignore[attr-defined]
            args=[
                current_millis(),
                broker.heartbeat_timeout,  # type: ignore[attr-defined]
                broker.dead_message_ttl,  # type: ignore[attr-defined]
                *names,
            ],
        )
    )


def requeue_at_head(broker: dramatiq.Broker, queue: str, redis_ids: list[str]) -> None:
    """Put messages this broker's worker fetched but will not run (it is shutting down) back at the
    head of ``queue``, in the order given; Dramatiq's own requeue pushes them to the tail."""
    if redis_ids:
        _script(broker, "requeue_own")(
            keys=[broker.namespace],  # type: ignore[attr-defined]
            args=[queue, broker.broker_id, *redis_ids],  # type: ignore[attr-defined]
        )


def ack_many(broker: dramatiq.Broker, queue: str, redis_ids: list[str]) -> None:
    """Acknowledge messages this broker's worker fetched from ``queue`` and has done with, in one
    call (Dramatiq's own ``ack`` makes one call per message)."""
    if redis_ids:
        _script(broker, "ack_many")(
            keys=[broker.namespace],  # type: ignore[attr-defined]
            args=[current_millis(), queue, broker.broker_id, *redis_ids],  # type: ignore[attr-defined]
        )


def quarantine(broker: dramatiq.Broker, queue: str, body: bytes, found: Rejected, redis_id: str | None) -> str | None:
    """Move a message this broker's worker fetched from ``queue`` (``<q>`` or ``<q>.DQ``) but cannot
    run to the queue's dead-letter queue, acknowledged, with a record of why (bus/rejections.py);
    returns its Redis id, or None when it is no longer this worker's to move.

    Dramatiq's fetch returns bodies without their ids, and an undecodable body cannot name its
    own: the id is the one in this worker's unacked set whose body is these bytes (``redis_id``,
    when the body gave one, is tried first). The set holds only this worker's prefetched and
    running messages of the queue, so the search is short."""
    namespace = broker.namespace  # type: ignore[attr-defined]
    canonical = q_name(queue)
    moved = _script(broker, "quarantine")(
        keys=[namespace, rejections.log_key(namespace, canonical), rejections.totals_key(namespace)],
        args=[
            current_millis(),
            queue,
            broker.broker_id,  # type: ignore[attr-defined]
            redis_id or "",
            body,
            # the script adds the id it found
            msgspec.json.encode({k: v for k, v in msgspec.structs.asdict(found).items() if k != "redis_id"}),
            rejections.KEEP,
            canonical,
        ],
    )
    return moved.decode() if isinstance(moved, bytes) else moved


def rejected(broker: dramatiq.Broker, queues: tuple[str, ...], limit: int) -> list[Rejected]:
    """The newest ``limit`` records of messages rejected on ``queues``, newest first (Redis only:
    on RabbitMQ, Dramatiq dead-letters an undecodable message without a record)."""
    if not is_redis(broker):
        return []
    namespace = broker.namespace  # type: ignore[attr-defined]
    with broker.client.pipeline(transaction=False) as pipe:  # type: ignore[attr-defined]
        for queue in queues:
            pipe.lrange(rejections.log_key(namespace, queue), 0, limit - 1)
        lists = pipe.execute()
    return rejections.newest([rejections.read(raws) for raws in lists], limit)


def rejected_counts(broker: dramatiq.Broker, queues: tuple[str, ...]) -> dict[str, int]:
    """queue -> messages rejected since the counter was made; empty off Redis."""
    if not is_redis(broker):
        return {}
    raw = broker.client.hmget(rejections.totals_key(broker.namespace), list(queues))  # type: ignore[attr-defined]
    return {queue: int(n or 0) for queue, n in zip(queues, raw, strict=True)}


def dead_letter(broker: dramatiq.Broker, queue: str, redis_id: str) -> bytes | None:
    """The raw body of a dead-lettered message (a rejected one: its record's ``redis_id``)."""
    return broker.client.hget(f"{broker.namespace}:{xq_name(queue)}.msgs", redis_id)  # type: ignore[attr-defined]


def _script(broker: dramatiq.Broker, name: str) -> Any:
    """Our Lua script ``name`` registered on the broker's client, as Dramatiq registers its own
    (redis-py runs it by its SHA and loads it again after a Redis restart)."""
    registered = _registered.setdefault(broker, {})
    if name not in registered:
        registered[name] = broker.client.register_script(_source(name))  # type: ignore[attr-defined]
    return registered[name]


@functools.cache
def _source(name: str) -> bytes:
    return (Path(__file__).with_name("lua") / f"{name}.lua").read_bytes()


_registered: weakref.WeakKeyDictionary[dramatiq.Broker, dict[str, Any]] = weakref.WeakKeyDictionary()


def enqueue(broker: dramatiq.Broker, message: dramatiq.Message) -> None:
    broker.declare_queue(message.queue_name)
    broker.enqueue(message)


def enqueue_many(broker: dramatiq.Broker, messages: list[dramatiq.Message], chunk: int = 1000) -> None:
    """Many messages at once. On Redis: one round trip per ``chunk``, a MULTI/EXEC of one HSET and
    one RPUSH per queue (what Dramatiq's enqueue writes, with a fresh ``redis_message_id`` each; a
    chunk is queued whole or not at all); elsewhere one enqueue per message."""
    if not is_redis(broker):
        for message in messages:
            enqueue(broker, message)
        return
    namespace = broker.namespace  # type: ignore[attr-defined]
    for start in range(0, len(messages), chunk):
        with broker.client.pipeline(transaction=True) as pipe:  # type: ignore[attr-defined]
            add_to_redis_queues(pipe, namespace, messages[start : start + chunk])
            pipe.execute()


def is_redis(broker: dramatiq.Broker) -> bool:
    return isinstance(broker, RedisBroker)  # ours (bus/quarantine.py) is one too


async def enqueue_many_async(client: Any, broker: dramatiq.Broker, messages: list[dramatiq.Message]) -> None:
    """On the Redis broker, from an event loop: all ``messages`` in one MULTI/EXEC on ``client``
    (a redis.asyncio client of the broker's Redis)."""
    async with client.pipeline(transaction=True) as pipe:
        add_to_redis_queues(pipe, broker.namespace, messages)  # type: ignore[attr-defined]
        await pipe.execute()


_body_encoder = msgspec.json.Encoder()


def redis_body(message: dramatiq.Message, redis_id: str) -> bytes:
    """What Dramatiq's Redis broker stores for ``message`` under ``redis_id``: the JSON of
    ``message.copy(options={"redis_message_id": redis_id}).encode()``, made by msgspec from the
    fields directly: 8 us a message, its uuid4 included, where Dramatiq's copy (a
    ``dataclasses.replace``) and standard-library encoder took 21 us, about a twelfth of an
    accepted request's CPU (the same document: a contract test compares them)."""
    return _body_encoder.encode(
        {
            "queue_name": message.queue_name,
            "actor_name": message.actor_name,
            "args": message.args,
            "kwargs": message.kwargs,
            "options": {**message.options, "redis_message_id": redis_id},
            "message_id": message.message_id,
            "message_timestamp": message.message_timestamp,
        }
    )


def add_to_redis_queue(pipe: Any, namespace: str, message: dramatiq.Message) -> None:
    """Queue ``message`` in a redis-py pipeline (sync or asyncio): ``add_to_redis_queues`` of one."""
    add_to_redis_queues(pipe, namespace, [message])


def add_to_redis_queues(pipe: Any, namespace: str, messages: list[dramatiq.Message]) -> None:
    """Queue ``messages`` in a redis-py pipeline (sync or asyncio) the way Dramatiq's Redis broker
    does: each body in ``<ns>:<queue>.msgs`` under a fresh id, the id pushed on ``<ns>:<queue>``.
    One HSET and one RPUSH per queue rather than two commands per message: the client packs and
    parses a handful of commands, not thousands. The HSET comes first (a consumer popping an id
    finds its body) and the ids are pushed in the messages' order."""
    bodies: dict[str, dict[str, bytes]] = {}
    for message in messages:
        redis_id = str(uuid.uuid4())
        bodies.setdefault(message.queue_name, {})[redis_id] = redis_body(message, redis_id)
    for queue, by_id in bodies.items():
        pipe.hset(f"{namespace}:{queue}.msgs", mapping=by_id)
        pipe.rpush(f"{namespace}:{queue}", *by_id)


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
