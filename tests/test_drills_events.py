"""Fault drills of the job events: each transition is one event, and every event reaches the bus,
whatever dies meanwhile.

Each drill runs real worker and ticker processes on a database of its own and reads the events
queue as an outside consumer does (tests/events_support.py). Its figures (``pytest -s``, and
``make drills``): accepted = transitions (each must be one event), succeeded = events received,
lost = events never received, duplicated = events that are not one per transition (a second event
of a transition, or an id no transition has), stuck = events still unpublished at the end;
``redelivered`` counts messages received again under the same id, which at-least-once delivery
allows and consumers dedupe.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from bus.queries import load
from contracts import publish, system
from contracts.event import EVENTS_QUEUE
from contracts.publish import broker_for
from devservers import EmbeddedRedis
from tests.drill_report import record as record_drill
from tests.events_support import EventTap, Transition, ids_of, own_database, transitions, unpublished
from tests.support import Proc, job_row, start_ticker, start_worker, wait_for, wait_status

JOBS = load("jobs")


@pytest.fixture()
def drill_env(postgres_server: str, base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with own_database(postgres_server) as url:
        yield {
            **base_env,
            "DATABASE_URL": url,
            "BROKER_NAMESPACE": "syevd-" + uuid.uuid4().hex[:6],
            # a lost attempt runs again within seconds
            "LEASE_S": "6",
            "REDRIVE_AFTER_S": "3",
        }


def end_jobs(database_url: str, count: int, *, per_statement: int = 256) -> set[Transition]:
    """``count`` jobs started and finished with the workers' own batched statements, no worker running:
    their events wait in the outbox."""
    ids = [f"drill-{uuid.uuid4()}" for _ in range(count)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for start in range(0, count, per_statement):
            chunk = ids[start : start + per_statement]
            starts = [
                {"id": i, "type": "system.noop", "queue": "system", "command": {"type": "system.noop"}, "options": {},
                 "idempotency_key": None, "continues": None}
                for i in chunk
            ]  # fmt: skip
            conn.execute(JOBS["start_many"], {"starts": Jsonb(starts), "lease_s": 60})
            finishes = [
                {"id": i, "attempt": 1, "status": "succeeded", "result": {"echo": i}, "error": None} for i in chunk
            ]
            conn.execute(JOBS["finish_many"], {"finishes": Jsonb(finishes)})
    return {(i, 1, "succeeded") for i in ids}


def published(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM job_events WHERE published_at IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def report(
    name: str, expected: set[Transition], table: list[Transition], received: Counter[str], **more: Any
) -> dict[str, int]:
    wanted = ids_of(expected)
    figures = {
        "accepted": len(expected),
        "succeeded": len(set(received) & set(wanted)),
        "lost": len(set(wanted) - set(received)),
        "duplicated": (len(table) - len(set(table))) + len(set(received) - set(wanted)),
        "stuck": more.pop("stuck"),
    }
    redelivered = sum(n - 1 for n in received.values())
    record_drill(name, **figures, redelivered=redelivered, **more)
    return figures


def test_a_a_worker_killed_mid_run_makes_one_event_for_the_run_that_succeeds(drill_env: dict[str, str]) -> None:
    env = drill_env
    db = env["DATABASE_URL"]
    tap = EventTap(env["REDIS_URL"], env["BROKER_NAMESPACE"], EVENTS_QUEUE)
    first = start_worker(env, name="worker-events-kill1", threads=8)
    procs: list[Proc] = [first, start_ticker(env, name="ticker-events-kill")]
    broker = broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
    try:
        jobs = [publish(system.Sleep(seconds=4, steps=16), broker=broker) for _ in range(8)]
        wait_for(lambda: all((job_row(db, j) or {}).get("progress") for j in jobs), 30, 0.05, "every job running")
        first.kill(signal.SIGKILL)
        killed = time.monotonic()
        procs.append(start_worker(env, name="worker-events-kill2", threads=8))
        rows = [wait_status(db, j, {"succeeded", "dead"}, 120) for j in jobs]
        recovered_s = time.monotonic() - killed
        # the lost attempts went back to queued (no event); each job's successful run is its one event
        expected = {(r["id"], r["attempts"], "succeeded") for r in rows}
        received = tap.wait(set(ids_of(expected)))
        wait_for(lambda: unpublished(db) == 0, 30, 0.1, "the outbox empty")
        table = transitions(db)
        figures = report(
            "events-a worker killed mid-run",
            expected,
            table,
            received,
            stuck=unpublished(db),
            recover_s=round(recovered_s, 1),
            rerun=sum(r["attempts"] > 1 for r in rows),
        )
        assert all(r["status"] == "succeeded" for r in rows)
        assert all(r["attempts"] >= 2 for r in rows), "every job was running when its worker died"
        assert sorted(table) == sorted(expected), "an event for a lost attempt, or a missing one"
        assert figures["lost"] == 0 and figures["duplicated"] == 0
    finally:
        for proc in procs:
            proc.stop()
        tap.close()


def test_b_a_ticker_killed_while_relaying_loses_no_event(drill_env: dict[str, str]) -> None:
    # small batches: thousands of transactions, so the kill lands inside the relay's work
    env = {**drill_env, "EVENT_RELAY_BATCH": "10"}
    db = env["DATABASE_URL"]
    expected = end_jobs(db, 5000)
    tap = EventTap(env["REDIS_URL"], env["BROKER_NAMESPACE"], EVENTS_QUEUE)
    first = start_ticker(env, name="ticker-events-relay1")
    procs: list[Proc] = [first]
    try:
        wait_for(lambda: published(db) >= len(expected) // 5, 60, 0.01, "the relay to publish a fifth")
        first.kill(signal.SIGKILL)
        left = unpublished(db)
        assert 0 < left < len(expected), "the ticker was killed while it relayed"
        killed = time.monotonic()
        procs.append(start_ticker(env, name="ticker-events-relay2"))
        received = tap.wait(set(ids_of(expected)), 120)
        recovered_s = time.monotonic() - killed
        wait_for(lambda: unpublished(db) == 0, 30, 0.1, "the outbox empty")
        figures = report(
            "events-b ticker killed while relaying",
            expected,
            transitions(db),
            received,
            stuck=unpublished(db),
            recover_s=round(recovered_s, 1),
            unpublished_at_kill=left,
        )
        assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["stuck"] == 0
    finally:
        for proc in procs:
            proc.stop()
        tap.close()


def test_c_two_tickers_publish_every_event_once_between_them(drill_env: dict[str, str]) -> None:
    env = {**drill_env, "EVENT_RELAY_BATCH": "10"}
    db = env["DATABASE_URL"]
    tap = EventTap(env["REDIS_URL"], env["BROKER_NAMESPACE"], EVENTS_QUEUE)
    tickers = [start_ticker(env, name="ticker-events-two1"), start_ticker(env, name="ticker-events-two2")]
    try:
        wait_for(lambda: all("event relay started" in t.output() for t in tickers), 60, 0.1, "both relays")
        # many small transactions, each waking both relays
        expected: set[Transition] = set()
        for _ in range(20):
            expected |= end_jobs(db, 100, per_statement=25)
        received = tap.wait(set(ids_of(expected)), 120)
        wait_for(lambda: unpublished(db) == 0, 30, 0.1, "the outbox empty")
        figures = report("events-c two tickers relaying", expected, transitions(db), received, stuck=unpublished(db))
        assert figures["lost"] == 0 and figures["duplicated"] == 0
        # no crash: SKIP LOCKED keeps the two from ever sending the same event
        assert all(n == 1 for n in received.values()), [i for i, n in received.items() if n > 1][:5]
    finally:
        for proc in tickers:
            proc.stop()
        tap.close()


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Valkey of the test's own, so it can be stopped (with persistence: it comes back as it was)."""
    server = EmbeddedRedis(tmp_path / "redis", persist=True)
    server.start()
    yield server
    server.stop()


def test_d_events_wait_out_a_broker_outage(drill_env: dict[str, str], own_redis: EmbeddedRedis) -> None:
    env = {**drill_env, "REDIS_URL": own_redis.url}
    db = env["DATABASE_URL"]
    tap = EventTap(own_redis.url, env["BROKER_NAMESPACE"], EVENTS_QUEUE)
    ticker = start_ticker(env, name="ticker-events-outage")
    try:
        before = end_jobs(db, 50)
        tap.wait(set(ids_of(before)))
        own_redis.stop()
        during = end_jobs(db, 500)
        wait_for(lambda: "event relay: cannot publish job events (" in ticker.output(), 60, 0.1, "the relay's warning")
        # the outage goes on for a while (the ticker's sweep says it every SWEEP_INTERVAL_S): the relay
        # tries again meanwhile, saying nothing more, and the events wait
        wait_for(lambda: ticker.output().count("sweep skipped") >= 10, 60, 0.2, "ten sweeps during the outage")
        assert unpublished(db) == len(during)
        own_redis.start()
        back = time.monotonic()
        received = tap.wait(set(ids_of(before | during)), 120)
        recovered_s = time.monotonic() - back
        wait_for(lambda: unpublished(db) == 0, 30, 0.1, "the outbox empty")
        wait_for(lambda: "event relay: publishing again after" in ticker.output(), 30, 0.1, "the relay to say so")
        figures = report(
            "events-d broker down while events wait",
            before | during,
            transitions(db),
            received,
            stuck=unpublished(db),
            recover_s=round(recovered_s, 1),
            waited=len(during),
        )
        assert figures["lost"] == 0 and figures["duplicated"] == 0
        relay_lines = [line for line in ticker.output().splitlines() if "workers.event_relay" in line]
        assert sum("cannot publish" in line for line in relay_lines) == 1, relay_lines
        assert "Traceback" not in ticker.output()
    finally:
        if not own_redis.running():
            own_redis.start()
        ticker.stop()
        tap.close()
