"""Job events: every transition into succeeded, failed, dead or cancelled is one event on the bus.

The trigger's paths are driven with the job store's own named queries against a database of the
test's own; the rest runs the real web, worker and ticker processes and reads the events queues as
an outside consumer does (tests/events_support.py). The fault drills are tests/test_drills_events.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bus.event_outbox import messages, to_event
from bus.queries import load
from bus.submission import message_for
from contracts import publish, system
from contracts.event import EVENT_NAMES, EVENTS_QUEUE, RESULT_SUMMARY_BYTES, JobEvent, event_id
from contracts.publish import broker_for
from devservers import free_port
from tests import readme_examples
from tests.events_support import EventTap, ids_of, outbox, own_database, transitions, unpublished
from tests.support import (
    API_KEY,
    ROOT,
    Proc,
    job_row,
    python,
    start_ticker,
    start_web,
    start_worker,
    stop_all,
    wait_for,
    wait_status,
)

JOBS = load("jobs")
RECOVERY = load("recovery")


@pytest.fixture()
def events_db(postgres_server: str) -> Iterator[str]:
    with own_database(postgres_server) as url:
        yield url


@pytest.fixture()
def events_env(events_db: str, base_env: dict[str, str]) -> dict[str, str]:
    return {**base_env, "DATABASE_URL": events_db, "BROKER_NAMESPACE": "syev-" + uuid.uuid4().hex[:6]}


# -- the trigger: every path that ends a job, in the job store's own SQL ---------------------------


class Jobs:
    """The job store's named queries on one connection (autocommit: each its own transaction)."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn

    def run(self, name: str, sql: dict[str, str] = JOBS, **params: Any) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql[name], params)
        return cursor.fetchall() if cursor.description else []

    def queued(self, job_id: str, options: dict[str, Any] | None = None) -> None:
        self.run(
            "insert", id=job_id, type="system.noop", queue="system", command=Jsonb({"type": "system.noop"}),
            options=Jsonb(options or {}), idempotency_key=None, command_hash=None,
        )  # fmt: skip
        self.run("mark_enqueued", ids=[job_id])

    def start(self, job_id: str, options: dict[str, Any] | None = None) -> int | None:
        start = {
            "id": job_id,
            "type": "system.noop",
            "queue": "system",
            "command": {"type": "system.noop"},
            "options": options or {},
            "idempotency_key": None,
            "continues": None,
        }
        rows = self.run("start_many", starts=Jsonb([start]), lease_s=15)
        return rows[0]["attempts"] if rows else None

    def finish(self, job_id: str, attempt: int, status: str, result: Any = None) -> int:
        error = None if status == "succeeded" else {"type": "Boom", "message": f"attempt {attempt}"}
        finish = {"id": job_id, "attempt": attempt, "status": status, "result": result, "error": error}
        rows = self.run("finish_many", finishes=Jsonb([finish]))
        return len(rows)


def test_every_path_that_ends_a_job_records_one_event_per_transition(events_db: str) -> None:
    with psycopg.connect(events_db, autocommit=True, row_factory=dict_row) as conn:
        jobs = Jobs(conn)
        ids = {name: f"{name}-{uuid.uuid4().hex[:6]}" for name in "abcdefghij"}
        a, b, c, d, e, f, g, h, i, j = ids.values()
        # a: succeeds; the same finish written again (a redelivered outcome) and a redelivered
        # start of the finished job change nothing
        assert jobs.start(a, {"caused_by": "job-0", "rule": "r1", "chain_depth": 2}) == 1
        assert jobs.finish(a, 1, "succeeded", {"rows": 3}) == 1
        assert jobs.finish(a, 1, "succeeded", {"rows": 3}) == 0
        assert jobs.start(a) is None
        # b: fails (a retry is scheduled), then its second attempt succeeds
        jobs.start(b)
        jobs.finish(b, 1, "failed")
        assert jobs.start(b) == 2
        jobs.finish(b, 2, "succeeded", {"ok": True})
        # c: cancelled while queued (the API's cancel); cancelling again changes nothing
        jobs.queued(c)
        assert jobs.run("cancel", id=c)[0]["status"] == "cancelled"
        assert jobs.run("cancel", id=c) == []
        # d: failed, then cancelled while it waits for its retry
        jobs.start(d)
        jobs.finish(d, 1, "failed")
        jobs.run("cancel", id=d)
        # e: running, asked to cancel (no event yet), progress and leases (none either), then it
        # stops at a progress report: cancelled
        jobs.start(e)
        jobs.run("cancel", id=e)
        jobs.run("progress", id=e, attempt=1, progress=Jsonb({"percent": 50.0}), lease_s=15)
        jobs.run("renew_leases", ids=[e], attempts=[1], lease_s=15)
        assert transitions(events_db) == [(a, 1, "succeeded"), (b, 1, "failed"), (b, 2, "succeeded"),
                                          (c, 0, "cancelled"), (d, 1, "failed"), (d, 1, "cancelled")]  # fmt: skip
        jobs.finish(e, 1, "cancelled")
        # f: the reconciler finds its attempt lost too often: dead; g: a redelivered message takes a
        # lost attempt over, and it was lost too often: dead
        jobs.start(f)
        error = Jsonb({"type": "WorkerLost", "message": "lost"})
        jobs.run("reclaim_many", RECOVERY, ids=[f], statuses=["dead"], errors=[error])
        jobs.start(g)
        jobs.run("reclaim_one", id=g, attempt=1, max_losses=0, error=error)
        # h: a lost attempt queued again is no event; its next attempt's success is
        jobs.start(h)
        jobs.run("reclaim_many", RECOVERY, ids=[h], statuses=["queued"], errors=[None])
        assert jobs.start(h) == 2
        jobs.finish(h, 2, "succeeded")
        # i: its only message dead-lettered (dead at attempt 0), retried by hand, dead again at attempt 1
        jobs.queued(i)
        jobs.run("dead_lettered", RECOVERY, ids=[i], error=Jsonb({"type": "DeadLettered", "message": "x"}))
        assert jobs.run("retry", id=i)[0]["status"] == "queued"
        jobs.start(i)
        jobs.finish(i, 1, "dead")
        # j: a transition rolled back leaves no event; a malformed chain depth does not fail the finish
        jobs.start(j, {"chain_depth": "deep"})
        with conn.transaction(force_rollback=True):
            jobs.finish(j, 1, "succeeded")
        jobs.finish(j, 1, "dead")

        assert transitions(events_db) == [
            (a, 1, "succeeded"), (b, 1, "failed"), (b, 2, "succeeded"), (c, 0, "cancelled"), (d, 1, "failed"),
            (d, 1, "cancelled"), (e, 1, "cancelled"), (f, 1, "dead"), (g, 1, "dead"), (h, 2, "succeeded"),
            (i, 0, "dead"), (i, 1, "dead"), (j, 1, "dead"),
        ]  # fmt: skip
        rows = {(r["job_id"], r["attempt"], r["status"]): r for r in outbox(events_db)}
        first = rows[(a, 1, "succeeded")]
        assert (first["type"], first["queue"], first["result"], first["error"]) == (
            "system.noop",
            "system",
            {"rows": 3},
            None,
        )
        assert (first["caused_by"], first["rule"], first["chain_depth"]) == ("job-0", "r1", 2)
        # each attempt's own outcome, though the job now shows the last one's
        assert rows[(b, 1, "failed")]["error"] == {"type": "Boom", "message": "attempt 1"}
        assert rows[(b, 2, "succeeded")]["result"] == {"ok": True}
        assert rows[(f, 1, "dead")]["error"]["type"] == "WorkerLost"
        assert rows[(j, 1, "dead")]["chain_depth"] == 0
        assert all(r["published_at"] is None for r in rows.values())

        # job retention deletes a job's events with it
        jobs.run("delete_many", ids=[a, b])
        assert {t[0] for t in transitions(events_db)}.isdisjoint({a, b})


def test_an_event_message_is_the_wire_format_with_the_event_id_of_contracts() -> None:
    at = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    row = {
        "job_id": "j-1", "attempt": 3, "status": "failed", "type": "system.fail", "queue": "system",
        "result": None, "error": {"type": "Boom", "message": "no"}, "caused_by": "j-0", "rule": "again",
        "chain_depth": 1, "occurred_at": at,
    }  # fmt: skip
    first, second = messages(to_event(row), (EVENTS_QUEUE, "audit"))
    assert first.message_id == second.message_id == event_id("j-1", 3, "failed")
    assert (first.queue_name, second.queue_name) == ("events", "audit")
    assert first.actor_name == "job.failed" and first.kwargs == {} and first.options == {"schema_version": 1}
    assert first.message_timestamp == int(at.timestamp() * 1000)
    body = msgspec.json.decode(first.encode())
    assert sorted(body) == sorted(("queue_name", "actor_name", "args", "kwargs", "options", "message_id",
                                   "message_timestamp"))  # fmt: skip
    assert body["args"] == [{
        "id": event_id("j-1", 3, "failed"), "event": "job.failed", "job_id": "j-1", "type": "system.fail",
        "queue": "system", "status": "failed", "attempt": 3, "occurred_at": "2026-11-21T12:00:00Z",
        "error": {"type": "Boom", "message": "no"}, "caused_by": "j-0", "rule": "again", "chain_depth": 1,
    }]  # fmt: skip
    # a big result travels as its top-level scalars
    big = {**row, "status": "succeeded", "error": None, "result": {"rows": 7, "note": "x" * RESULT_SUMMARY_BYTES}}
    event = msgspec.json.decode(messages(to_event(big), (EVENTS_QUEUE,))[0].encode())["args"][0]
    assert event["result"] == {"rows": 7} and event["result_truncated"] is True
    # a stored error of another shape still makes an event (a row that cannot would block the rest)
    odd = to_event({**row, "error": "plain text"})
    assert odd.error is not None and odd.error.message == "plain text"


# -- the real processes ---------------------------------------------------------------------------


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)


def _progressing(database_url: str, job_id: str) -> bool:
    row = job_row(database_url, job_id)
    return bool(row and (row["progress"] or {}).get("percent", 0) > 0)


def test_each_ending_is_one_event_on_events_and_on_every_event_queue(events_env: dict[str, str]) -> None:
    env = {**events_env, "EVENT_QUEUES": "audit"}
    db = env["DATABASE_URL"]
    taps = [EventTap(env["REDIS_URL"], env["BROKER_NAMESPACE"], q) for q in (EVENTS_QUEUE, "audit")]
    web, url = start_web(env, free_port(), name="web-events")
    procs: list[Proc] = [web, start_worker(env, name="worker-events"), start_ticker(env, name="ticker-events")]
    try:
        with _client(url) as client:

            def submit(body: dict[str, Any]) -> str:
                answer = client.post("/v1/commands", json=body)
                assert answer.status_code == 202, answer.text
                return answer.json()["id"]

            ok = submit({"type": "system.noop", "echo": "hi"})
            big = submit({"type": "system.noop", "echo": "x" * 9000})
            recovers = submit({"type": "system.fail", "succeed_on_attempt": 2})
            permanent = submit({"type": "system.fail", "permanent": True})
            exhausted = submit({"type": "system.fail"})  # MAX_RETRIES=2: two retries, then dead
            sleeper = submit({"type": "system.sleep", "seconds": 60, "steps": 240})
            # no metrics worker runs in this namespace: it stays queued until cancelled
            waiting = submit({"type": "metrics.compute", "model_id": str(uuid.uuid4())})
            assert client.post(f"/v1/jobs/{waiting}/cancel").status_code == 200
            wait_for(lambda: _progressing(db, sleeper), 30, 0.1, "the sleeper to run")
            assert client.post(f"/v1/jobs/{sleeper}/cancel").status_code == 202
            for job_id, status in [(ok, "succeeded"), (big, "succeeded"), (recovers, "succeeded"),
                                   (permanent, "dead"), (exhausted, "dead"), (sleeper, "cancelled")]:  # fmt: skip
                wait_status(db, job_id, {status}, 60)
            # a dead job retried by hand: its new attempt is a new event
            assert client.post(f"/v1/jobs/{permanent}/retry").status_code == 202
            wait_for(lambda: (job_row(db, permanent) or {}).get("attempts") == 2, 30, 0.1, "the retry to run")
            wait_status(db, permanent, {"dead"}, 30)

        expected = {
            (ok, 1, "succeeded"), (big, 1, "succeeded"), (recovers, 1, "failed"), (recovers, 2, "succeeded"),
            (permanent, 1, "dead"), (permanent, 2, "dead"), (exhausted, 1, "failed"), (exhausted, 2, "failed"),
            (exhausted, 3, "dead"), (sleeper, 1, "cancelled"), (waiting, 0, "cancelled"),
        }  # fmt: skip
        by_id = ids_of(expected)
        for tap in taps:
            received = tap.wait(set(by_id))
            assert set(received) == set(by_id), f"{tap.queue}: unexpected {set(received) - set(by_id)}"
            assert all(n == 1 for n in received.values()), f"{tap.queue}: sent twice {received}"
        assert sorted(transitions(db)) == sorted(expected)
        wait_for(lambda: unpublished(db) == 0, 10, 0.1, "every event marked published")
        with _client(url) as client:
            counted = "switchyard_events_published_total 11.0"
            scrape = wait_for(lambda: (text := client.get("/metrics").text) * (counted in text), 10, 0.2, counted)
        assert "switchyard_events_unpublished 0.0" in scrape
        assert 'switchyard_queue_messages{queue="audit",state="ready"}' in scrape

        def payload(transition: tuple[str, int, str], tap: EventTap = taps[0]) -> dict[str, Any]:
            (message,) = tap.of(event_id(*transition))
            assert message.actor_name == EVENT_NAMES[transition[2]] and message.queue_name == tap.queue
            assert message.kwargs == {} and message.options["schema_version"] == 1
            (event,) = message.args
            return event

        done = payload((ok, 1, "succeeded"))
        assert msgspec.convert(done, JobEvent).job_id == ok
        assert {k: done[k] for k in ("event", "job_id", "type", "queue", "status", "attempt", "result")} == {
            "event": "job.succeeded", "job_id": ok, "type": "system.noop", "queue": "system",
            "status": "succeeded", "attempt": 1, "result": {"echo": "hi"},
        }  # fmt: skip
        assert done == payload((ok, 1, "succeeded"), taps[1])  # the same event on the extra queue
        summarized = payload((big, 1, "succeeded"))
        assert summarized["result"] == {} and summarized["result_truncated"] is True
        failed = payload((recovers, 1, "failed"))
        assert failed["event"] == "job.failed" and failed["error"]["type"] == "RequestedFailure"
        assert payload((exhausted, 3, "dead"))["error"]["message"] == "requested failure"
        assert payload((sleeper, 1, "cancelled"))["error"]["type"] == "JobCancelled"
        assert "error" not in payload((waiting, 0, "cancelled"))
    finally:
        stop_all(procs)
        for tap in taps:
            tap.close()


def test_a_redelivered_finish_and_duplicate_messages_make_no_second_event(events_env: dict[str, str]) -> None:
    env = events_env
    db = env["DATABASE_URL"]
    tap = EventTap(env["REDIS_URL"], env["BROKER_NAMESPACE"], EVENTS_QUEUE)
    # two worker processes: a duplicate may reach the other one or another thread of the same
    workers = [
        start_worker(env, name="worker-events-dup1", threads=2),
        start_worker(env, name="worker-events-dup2", threads=2),
    ]
    procs: list[Proc] = [*workers, start_ticker(env, name="ticker-events-dup")]
    broker = broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
    logs = lambda: "".join(w.output() for w in workers)  # noqa: E731
    try:
        job_id = publish(system.Sleep(seconds=2, steps=8), broker=broker)
        wait_for(lambda: _progressing(db, job_id), 30, 0.05, "the job to run")
        row = job_row(db, job_id)
        assert row is not None
        original = message_for(_job(row), row["options"])
        broker.enqueue(original)  # a duplicate while it runs
        wait_status(db, job_id, {"succeeded"}, 30)
        broker.enqueue(original)  # one after it ended
        # the finish itself again, as a message comes back carrying an outcome it could not record
        outcome = {"attempt": 1, "status": "succeeded", "result": {"slept_s": 2.0}}
        broker.enqueue(original.copy(options={"outcome": outcome}))
        wait_for(lambda: "its job is running under another attempt" in logs(), 30, 0.1, "the running duplicate skipped")
        wait_for(lambda: "its job is already over" in logs(), 30, 0.1, "the late duplicate skipped")
        wait_for(lambda: "the outcome of attempt 1 is recorded now" in logs(), 30, 0.1, "the redelivered finish")
        # a job finished after all of them: once its event is out, any event they made would be too
        # (the relay publishes in the order the events were recorded)
        marker = publish(system.Noop(echo="after"), broker=broker)
        wait_status(db, marker, {"succeeded"}, 30)
        received = tap.wait({event_id(marker, 1, "succeeded")})
        assert [t for t in transitions(db) if t[0] == job_id] == [(job_id, 1, "succeeded")]
        assert received[event_id(job_id, 1, "succeeded")] == 1
        assert set(received) == {event_id(job_id, 1, "succeeded"), event_id(marker, 1, "succeeded")}
    finally:
        stop_all(procs)
        tap.close()


def _job(row: dict[str, Any]) -> Any:
    from bus.jobstore import to_job

    return to_job(row)


def test_events_on_rabbitmq(events_env: dict[str, str], rabbitmq_url: str) -> None:
    """The same relay on RabbitMQ: the queues declared as Dramatiq declares them, publisher confirms.
    The shared server's ``events`` queue may have other consumers, so the complete set is read from
    an extra queue of this test's own; what reaches ``events`` here is checked to be ours only."""
    extra = "events-test-" + uuid.uuid4().hex[:8]
    env = {**events_env, "BROKER_URL": rabbitmq_url, "EVENT_QUEUES": extra}
    db = env["DATABASE_URL"]
    tap = EventTap(rabbitmq_url, "", extra)
    procs: list[Proc] = [
        start_worker(env, name="worker-events-rabbitmq"),
        start_ticker(env, name="ticker-events-rabbitmq"),
    ]
    broker = broker_for(rabbitmq_url)
    try:
        ok = publish(system.Noop(echo="amqp"), broker=broker)
        recovers = publish(system.Fail(succeed_on_attempt=2), broker=broker)
        wait_status(db, ok, {"succeeded"}, 60)
        wait_status(db, recovers, {"succeeded"}, 60)
        expected = ids_of({(ok, 1, "succeeded"), (recovers, 1, "failed"), (recovers, 2, "succeeded")})
        received = tap.wait(set(expected))
        assert set(received) == set(expected) and all(n == 1 for n in received.values())
        (message,) = tap.of(event_id(ok, 1, "succeeded"))
        assert message.args[0]["result"] == {"echo": "amqp"} and message.actor_name == "job.succeeded"
        ours = _take_from_rabbitmq(rabbitmq_url, EVENTS_QUEUE, {ok, recovers})
        assert set(ours) <= set(expected)
    finally:
        stop_all(procs)
        tap.close()
        _delete_queue(rabbitmq_url, extra)


def _take_from_rabbitmq(url: str, queue: str, job_ids: set[str]) -> list[str]:
    """Acknowledge the messages of these jobs' events on ``queue``; others go back when the channel closes."""
    import pika

    taken: list[str] = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        while True:
            method, _, body = channel.basic_get(queue)
            if method is None:
                break
            message = msgspec.json.decode(body)
            if message["args"][0].get("job_id") in job_ids:
                channel.basic_ack(method.delivery_tag)
                taken.append(message["message_id"])
    finally:
        connection.close()
    return taken


def _delete_queue(url: str, queue: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


def readme_consumer() -> str:
    """The README's consumer example, as printed."""
    found = [
        block
        for section, language, block in readme_examples.sections((ROOT / "README.md").read_text())
        if section == "Job events" and language == "python" and "dramatiq.actor(on_event" in block
    ]
    assert len(found) == 1, "the README's Job events section has one consumer example"
    return found[0]


def test_the_readme_consumer_handles_every_event_once(events_env: dict[str, str], tmp_path: Path) -> None:
    env = {**events_env, "EVENT_QUEUES": "audit"}
    db = env["DATABASE_URL"]
    (tmp_path / "audit.py").write_text(readme_consumer())
    consumer = Proc(
        "consumer-readme-events",
        python("-m", "dramatiq", "audit", "--path", str(tmp_path), "--processes", "1", "--threads", "2"),
        env,
    )
    procs = [consumer, start_worker(env, name="worker-events-readme"), start_ticker(env, name="ticker-events-readme")]
    broker = broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
    try:
        ok = publish(system.Noop(echo="readme"), broker=broker)
        recovers = publish(system.Fail(succeed_on_attempt=2), broker=broker)
        lines = [
            f"job.succeeded {ok} system.noop attempt 1 {{'echo': 'readme'}}",
            f"job.failed {recovers} system.fail attempt 1 None",
            f"job.succeeded {recovers} system.fail attempt 2 {{'succeeded_on_attempt': 2}}",
        ]
        wait_for(lambda: all(line in consumer.output() for line in lines), 60, 0.2, "the consumer to print the events")
        # the same event delivered again (a relay that died before it marked it): handled once
        (row,) = [r for r in outbox(db) if r["job_id"] == ok]
        broker.enqueue(messages(to_event(row), ("audit",))[0])
        marker = publish(system.Noop(echo="marker"), broker=broker)
        wait_for(lambda: f"job.succeeded {marker} " in consumer.output(), 60, 0.2, "the marker's event")
        assert consumer.output().count(lines[0]) == 1
        assert "Traceback" not in consumer.output()
    finally:
        stop_all(procs)
