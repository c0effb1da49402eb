"""Producers that skip the HTTP API: Python's contracts.publish, a raw Redis write,
and a kombu producer on RabbitMQ (the recipe for any language)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from contracts import build_message, publish, system
from contracts.publish import broker_for
from tests.support import job_row, start_worker, wait_for, wait_status


def test_python_publish_runs_the_command_and_records_the_job(stack: dict[str, str]) -> None:
    job_id = publish(system.Noop(echo="from python"))
    row = wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})
    assert row["result"] == {"echo": "from python"}
    assert row["command"] == {"type": "system.noop", "echo": "from python"}
    assert row["options"]["schema_version"] == 1


def test_python_publish_accepts_a_dict_validates_it_and_is_idempotent(stack: dict[str, str]) -> None:
    key = f"nightly-{uuid.uuid4()}"
    first = publish({"type": "system.noop", "echo": "dict"}, idempotency_key=key)
    wait_status(stack["DATABASE_URL"], first, {"succeeded"})
    again = publish({"type": "system.noop", "echo": "dict"}, idempotency_key=key)
    assert again == first
    time.sleep(1.5)  # the second message is received and skipped: the job ran once
    row = job_row(stack["DATABASE_URL"], first)
    assert row is not None and row["attempts"] == 1 and row["status"] == "succeeded"
    from contracts import InvalidCommand

    with pytest.raises(InvalidCommand) as caught:
        publish({"type": "system.sleep", "seconds": "x"})
    assert caught.value.path == "$.seconds"


def test_a_delayed_publish_runs_later(stack: dict[str, str]) -> None:
    job_id = publish(system.Noop(echo="later"), delay=1.0)
    time.sleep(0.3)
    assert job_row(stack["DATABASE_URL"], job_id) is None  # not delivered yet
    wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})


def push_raw(stack: dict[str, str], message: dict) -> None:
    """The DESIGN recipe: MULTI/EXEC of HSET <ns>:<q>.msgs + RPUSH <ns>:<q>, redis_message_id set."""
    message["options"]["redis_message_id"] = redis_id = str(uuid.uuid4())
    ns, queue = stack["BROKER_NAMESPACE"], message["queue_name"]
    client = redis.Redis.from_url(stack["REDIS_URL"])
    with client.pipeline(transaction=True) as tx:
        tx.hset(f"{ns}:{queue}.msgs", redis_id, json.dumps(message))
        tx.rpush(f"{ns}:{queue}", redis_id)
        tx.execute()


def test_raw_redis_message_from_any_language(stack: dict[str, str]) -> None:
    """The DESIGN recipe: MULTI/EXEC of HSET <ns>:<q>.msgs + RPUSH <ns>:<q>, redis_message_id set."""
    job_id = str(uuid.uuid4())
    message = build_message(system.Noop(echo="raw"), job_id=job_id)
    push_raw(stack, message)
    row = wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})
    assert row["result"] == {"echo": "raw"}


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda m: m["args"].append(1), "exactly one argument"),
        (lambda m: m["args"][0].update(echo=5), "Expected `str | null`, got `int` at $.args[0].echo"),
        (lambda m: m.update(actor_name="system.sleep"), "actor 'system.sleep' got a command of type 'system.noop'"),
        (lambda m: m.update(args=[{"type": "system.sleep", "seconds": 0}]), "got a command of type 'system.sleep'"),
    ],
)
def test_a_malformed_bus_message_ends_dead_with_a_clear_error(stack: dict[str, str], mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    job_id = str(uuid.uuid4())
    message = build_message(system.Noop(), job_id=job_id)
    mutate(message)
    push_raw(stack, message)
    row = wait_status(stack["DATABASE_URL"], job_id, {"dead"})
    assert row["attempts"] == 1
    assert fragment in row["error"]["message"]
    # the worker survives and keeps serving
    ok = publish(system.Noop())
    wait_status(stack["DATABASE_URL"], ok, {"succeeded"})


def test_kombu_producer_on_rabbitmq(base_env: dict[str, str], rabbitmq_url: str) -> None:
    """Any AMQP client: default exchange, routing key = queue name, JSON body, confirms, declare nothing."""
    from kombu import Connection

    env = {**base_env, "BROKER_URL": rabbitmq_url}
    worker = start_worker(env, name="worker-rabbitmq-kombu")
    try:
        # the workers declare the queues (with Dramatiq's arguments); the producer only publishes
        broker = broker_for(rabbitmq_url)
        wait_for(lambda: _queue_exists(broker, "system"), 30, 0.2, "the worker to declare its queue")
        job_id = str(uuid.uuid4())
        message = build_message(system.Noop(echo="kombu"), job_id=job_id)
        with Connection(rabbitmq_url, transport_options={"confirm_publish": True}) as conn:
            conn.Producer().publish(
                json.dumps(message),
                exchange="",
                routing_key=message["queue_name"],
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                retry=True,
            )
        row = wait_status(base_env["DATABASE_URL"], job_id, {"succeeded"})
        assert row["result"] == {"echo": "kombu"}
        # and through contracts.publish on the same broker
        second = publish(system.Noop(echo="amqp"), broker=broker)
        assert wait_status(base_env["DATABASE_URL"], second, {"succeeded"})["result"] == {"echo": "amqp"}
    finally:
        worker.stop()


def _queue_exists(broker, name: str) -> bool:  # type: ignore[no-untyped-def]
    import pika

    try:
        broker.channel.queue_declare(queue=name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        del broker.channel
        return False


def test_the_whole_stack_runs_on_rabbitmq(base_env: dict[str, str], rabbitmq_url: str) -> None:
    """Same code, other broker: HTTP -> RabbitMQ -> worker, retries through its delay queue, readiness."""
    import httpx

    from devservers import free_port
    from tests.support import auth, start_web

    env = {**base_env, "BROKER_URL": rabbitmq_url}
    web, url = start_web(env, free_port(), name="web-rabbitmq")
    worker = start_worker(env, name="worker-rabbitmq")
    try:
        with httpx.Client(base_url=url, headers=auth(), timeout=10) as client:
            assert client.get("/readyz").json()["checks"]["broker"] == "ok"
            ok = client.post("/v1/commands", json={"type": "system.noop", "echo": "amqp"}).json()["id"]
            retried = client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 2}).json()["id"]
            assert wait_status(env["DATABASE_URL"], ok, {"succeeded"})["result"] == {"echo": "amqp"}
            assert wait_status(env["DATABASE_URL"], retried, {"succeeded"})["attempts"] == 2
            assert 'switchyard_queue_messages{queue="system",state="ready"}' in client.get("/metrics").text
    finally:
        web.stop()
        worker.stop()
