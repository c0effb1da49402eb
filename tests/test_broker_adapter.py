"""The broker adapter against the pinned Dramatiq, on a real Redis: what we write is what Dramatiq
writes and reads; our requeue puts a vanished worker's messages first; depths count what they say;
a poison body is quarantined without losing its batch. If Dramatiq changes its Redis layout, this
fails."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker

from bus import broker_adapter
from bus.broker_adapter import add_to_redis_queue, depths, enqueue_many, enqueue_many_async, requeue_orphans
from bus.quarantine import QuarantiningRedisBroker
from devservers import EmbeddedRedis
from tests.support import wait_for

QUEUE = "system"
FIELDS = {"queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp"}


@pytest.fixture()
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


@pytest.fixture()
def ns() -> str:
    return "syadapter-" + uuid.uuid4().hex[:6]


def plain(client: redis.Redis, ns: str, **options: int) -> RedisBroker:
    """Dramatiq's own broker, nothing of ours, Dramatiq's maintenance off unless asked."""
    return RedisBroker(client=client, namespace=ns, middleware=[], **{"maintenance_chance": 0, **options})


def ours(client: redis.Redis, ns: str, **options: int) -> QuarantiningRedisBroker:
    broker = QuarantiningRedisBroker(client=client, namespace=ns, middleware=[], maintenance_chance=0, **options)
    dramatiq.actor(lambda command: None, broker=broker, actor_name="system.noop", queue_name=QUEUE)
    return broker


def message(i: int, echo: str = "", **fields: object) -> dramatiq.Message:
    time.sleep(0.002)  # distinct message_timestamps: the requeue orders by them
    return dramatiq.Message(
        queue_name=QUEUE,
        actor_name="system.noop",
        args=({"type": "system.noop", "echo": f"m{i}{echo}"},),
        kwargs={},
        options={"schema_version": 1},
        message_id=str(uuid.uuid4()),
        message_timestamp=dramatiq.common.current_millis(),
        **fields,  # type: ignore[arg-type]
    )


def take(consumer: dramatiq.Consumer, n: int) -> list[dramatiq.MessageProxy]:
    got: list[dramatiq.MessageProxy] = []

    def more() -> bool:
        proxy = next(consumer)
        if proxy is not None:
            got.append(proxy)
        return len(got) >= n

    wait_for(more, 10, 0, f"{n} messages from the consumer")
    return got


def queued_ids(client: redis.Redis, ns: str, queue: str = QUEUE) -> list[str]:
    return [i.decode() for i in client.lrange(f"{ns}:{queue}", 0, -1)]


def unacked(client: redis.Redis, ns: str) -> int:
    return sum(client.scard(key) for key in client.scan_iter(f"{ns}:__acks__.*"))


@pytest.mark.parametrize("reader", [plain, ours], ids=["dramatiq-consumer", "quarantining-consumer"])
def test_what_we_write_is_what_dramatiq_writes_and_reads(client: redis.Redis, ns: str, redis_url: str, reader) -> None:  # type: ignore[no-untyped-def]
    broker = reader(client, ns)
    sent = [message(i) for i in range(3)] + [message(3, echo=" é ✓")]
    broker.enqueue(sent[0])
    enqueue_many(broker, [sent[1]])
    with client.pipeline(transaction=True) as pipe:
        add_to_redis_queue(pipe, ns, sent[2])
        pipe.execute()

    async def from_the_event_loop() -> None:
        async with aioredis.Redis.from_url(redis_url) as aclient:
            await enqueue_many_async(aclient, broker, [sent[3]])

    asyncio.run(from_the_event_loop())

    keys = {k.decode() for k in client.scan_iter(f"{ns}:*")} - {f"{ns}:__heartbeats__"}
    assert keys == {f"{ns}:{QUEUE}", f"{ns}:{QUEUE}.msgs"}
    assert client.type(f"{ns}:{QUEUE}") == b"list" and client.type(f"{ns}:{QUEUE}.msgs") == b"hash"
    ids = queued_ids(client, ns)
    assert len(ids) == 4
    for rid, original in zip(ids, sent, strict=True):
        body = client.hget(f"{ns}:{QUEUE}.msgs", rid)
        # the JSON document Dramatiq's enqueue writes for this message under this id (ours comes
        # from msgspec: UTF-8 where the standard library's encoder escapes what is not ASCII)
        assert json.loads(body) == json.loads(original.copy(options={"redis_message_id": rid}).encode())
        assert set(json.loads(body)) == FIELDS

    consumer = broker.consume(QUEUE, prefetch=10, timeout=100)
    got = take(consumer, 4)
    assert [p.message_id for p in got] == [m.message_id for m in sent]
    assert [p.args for p in got] == [m.args for m in sent]
    for proxy in got:
        consumer.ack(proxy)
    consumer.close()  # ours sends its acknowledgements a batch at a time: the last ones before it closes
    assert client.hlen(f"{ns}:{QUEUE}.msgs") == 0 and client.llen(f"{ns}:{QUEUE}") == 0
    assert unacked(client, ns) == 0


def test_many_messages_of_several_queues_are_each_queued_in_order(client: redis.Redis, ns: str) -> None:
    """enqueue_many writes one HSET and one RPUSH per queue: each queue still gets its own messages,
    in the order given, byte for byte as Dramatiq writes them, and Dramatiq's consumer reads them."""
    broker = plain(client, ns)
    other = "metrics"
    sent = [message(i).copy(queue_name=QUEUE if i % 3 else other) for i in range(9)]
    enqueue_many(broker, sent, chunk=4)  # chunks that split both queues' runs
    for queue in (QUEUE, other):
        mine = [m for m in sent if m.queue_name == queue]
        ids = queued_ids(client, ns, queue)
        assert len(ids) == len(mine)
        for rid, original in zip(ids, mine, strict=True):
            assert client.hget(f"{ns}:{queue}.msgs", rid) == original.copy(options={"redis_message_id": rid}).encode()
        got = take(broker.consume(queue, prefetch=10, timeout=100), len(mine))
        assert [p.message_id for p in got] == [m.message_id for m in mine]


def _vanished_worker_holding_two(client: redis.Redis, ns: str) -> tuple[RedisBroker, list[dramatiq.Message]]:
    """Six messages queued; a worker fetched the first two, then vanished (it never acks or beats)."""
    worker = plain(client, ns, heartbeat_timeout=1000)
    sent = [message(i) for i in range(6)]
    enqueue_many(worker, sent)
    held = take(worker.consume(QUEUE, prefetch=2, timeout=100), 2)
    assert [p.message_id for p in held] == [m.message_id for m in sent[:2]]
    assert client.scard(f"{ns}:__acks__.{worker.broker_id}.{QUEUE}") == 2
    return worker, sent


def test_requeue_puts_a_vanished_workers_messages_back_first(client: redis.Redis, ns: str) -> None:
    worker, sent = _vanished_worker_holding_two(client, ns)
    ticker = ours(client, ns, heartbeat_timeout=1000)
    assert requeue_orphans(ticker, (QUEUE,)) == 0  # still within its heartbeat timeout
    wait_for(lambda: requeue_orphans(ticker, (QUEUE,)) == 2, 10, 0.1, "the worker's heartbeat to go stale")

    assert len(queued_ids(client, ns)) == 6
    assert client.exists(f"{ns}:__acks__.{worker.broker_id}.{QUEUE}") == 0
    assert client.zscore(f"{ns}:__heartbeats__", worker.broker_id) is None  # forgotten, no KEYS scan
    # a new worker gets them first, in the order they were queued, then the backlog
    again = ours(client, ns)
    consumer = again.consume(QUEUE, prefetch=1, timeout=100)
    order = []
    for _ in range(3):
        (proxy,) = take(consumer, 1)
        order.append(proxy.message_id)
        consumer.ack(proxy)  # a prefetch of one: the next fetch comes after the ack
    assert order == [m.message_id for m in sent[:3]]


def test_dramatiqs_own_maintenance_requeues_at_the_tail(client: redis.Redis, ns: str) -> None:
    """Why requeue_orphans exists: the pinned Dramatiq puts them behind the backlog. If this fails,
    Dramatiq changed its requeue, and bus/lua/requeue_dead.lua should be looked at again."""
    _, sent = _vanished_worker_holding_two(client, ns)
    maintainer = plain(client, ns, heartbeat_timeout=1000, maintenance_chance=1_000_000)
    wait_for(lambda: maintainer.do_qsize(QUEUE) == 6 and len(queued_ids(client, ns)) == 6, 10, 0.1, "the requeue")
    bodies = client.hmget(f"{ns}:{QUEUE}.msgs", queued_ids(client, ns))
    order = [json.loads(b)["message_id"] for b in bodies]
    assert order[:4] == [m.message_id for m in sent[2:]]
    assert set(order[4:]) == {m.message_id for m in sent[:2]}


def test_a_shutting_down_consumer_puts_its_prefetched_messages_back_at_the_head(client: redis.Redis, ns: str) -> None:
    broker = ours(client, ns)
    sent = [message(i) for i in range(4)]
    enqueue_many(broker, sent)
    consumer = broker.consume(QUEUE, prefetch=2, timeout=100)
    held = take(consumer, 2)
    consumer.requeue(held)
    bodies = client.hmget(f"{ns}:{QUEUE}.msgs", queued_ids(client, ns))
    assert [json.loads(b)["message_id"] for b in bodies] == [m.message_id for m in sent]
    assert unacked(client, ns) == 0


def bodies_held(client: redis.Redis, ns: str) -> int:
    return client.hlen(f"{ns}:{QUEUE}.msgs")


def test_acknowledgements_leave_redis_and_closing_sends_the_last_ones(client: redis.Redis, ns: str) -> None:
    broker = ours(client, ns)
    enqueue_many(broker, [message(i) for i in range(6)])
    consumer = broker.consume(QUEUE, prefetch=6, timeout=100)
    held = take(consumer, 6)
    consumer.requeue([held[0]])  # back on the queue: a late acknowledgement must not delete its body
    for proxy in held[1:4]:
        consumer.ack(proxy)
    wait_for(lambda: bodies_held(client, ns) == 3, 10, 0.01, "three bodies acknowledged away")
    for proxy in [held[0], *held[4:]]:
        consumer.ack(proxy)
    consumer.close()  # sends what is still waiting before it returns
    assert unacked(client, ns) == 0
    assert bodies_held(client, ns) == 1
    assert queued_ids(client, ns) == [held[0].options["redis_message_id"]]
    # the worker's heartbeat is recorded as with Dramatiq's own acknowledgement
    assert client.zscore(f"{ns}:__heartbeats__", broker.broker_id) is not None


def test_acknowledgements_wait_out_a_redis_outage(tmp_path: Path, ns: str) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=True)
    server.start()
    try:
        with redis.Redis.from_url(server.url) as own:
            broker = ours(own, ns)
            enqueue_many(broker, [message(i) for i in range(3)])
            consumer = broker.consume(QUEUE, prefetch=3, timeout=100)
            held = take(consumer, 3)
            server.stop()
            for proxy in held:
                consumer.ack(proxy)  # the worker thread goes on: nothing raises
            server.start()
            wait_for(lambda: bodies_held(own, ns) == 0, 30, 0.05, "the acknowledgements once Redis is back")
            assert unacked(own, ns) == 0
            consumer.close()
    finally:
        server.stop()


def test_depths_count_ready_delayed_and_dead(client: redis.Redis, ns: str) -> None:
    broker = plain(client, ns)
    for i in range(3):
        broker.enqueue(message(i))
    for i in range(2):
        broker.enqueue(message(10 + i), delay=60_000)
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    (first,) = take(consumer, 1)
    consumer.nack(first)  # Dramatiq's dead-lettering
    assert depths(broker, (QUEUE,)) == {QUEUE: (2, 2, 1)}


def test_a_poison_body_is_dead_lettered_with_its_reason_and_its_batch_runs(client: redis.Redis, ns: str) -> None:
    broker = ours(client, ns)
    good = [message(i) for i in range(3)]
    extra = {**json.loads(message(9).encode()), "password": "hunter2"}
    poison = [b"{not json at all", json.dumps(extra).encode()]
    batch = [good[0].encode(), poison[0], good[1].encode(), poison[1], good[2].encode()]
    with client.pipeline(transaction=True) as pipe:  # the raw recipe, each body under a fresh id
        for body in batch:
            rid = str(uuid.uuid4())
            if body in poison:
                pipe.hset(f"{ns}:{QUEUE}.msgs", rid, body)
            else:
                parsed = json.loads(body)
                parsed["options"]["redis_message_id"] = rid
                pipe.hset(f"{ns}:{QUEUE}.msgs", rid, json.dumps(parsed))
            pipe.rpush(f"{ns}:{QUEUE}", rid)
        pipe.execute()

    consumer = broker.consume(QUEUE, prefetch=10, timeout=100)
    got = take(consumer, 3)
    assert [p.message_id for p in got] == [m.message_id for m in good]
    for proxy in got:
        consumer.ack(proxy)
    consumer.close()
    assert unacked(client, ns) == 0 and client.hlen(f"{ns}:{QUEUE}.msgs") == 0
    assert depths(broker, (QUEUE,)) == {QUEUE: (0, 0, 2)}
    assert broker_adapter.rejected_counts(broker, (QUEUE,)) == {QUEUE: 2}

    records = broker_adapter.rejected(broker, (QUEUE,), 10)
    assert [r.at for r in records] == sorted((r.at for r in records), reverse=True)
    by_body = {broker_adapter.dead_letter(broker, QUEUE, r.redis_id or ""): r for r in records}
    assert set(by_body) == set(poison)  # the raw bodies, retrievable by the records' ids
    assert "JSON is malformed" in by_body[poison[0]].reason and by_body[poison[0]].message_id is None
    extra_record = by_body[poison[1]]
    assert "unknown field `password`" in extra_record.reason
    assert extra_record.message_id == extra["message_id"] and "hunter2" not in extra_record.body
    assert extra_record.queue == QUEUE and extra_record.size == len(poison[1]) and not extra_record.truncated
