"""The ticker: exactly one message per slot with two tickers, across a kill and a restart."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from bus.migrate import migrate
from contracts import system
from contracts.schedules import ScheduleSpec
from devservers import EmbeddedPostgres, EmbeddedRedis
from tests.support import Proc, start_ticker, wait_for

EVERY_SECOND = "* * * * * *"
#: seconds of slots the two tickers share before one is killed, and the survivor runs alone after
BOTH_S = 8
SURVIVOR_S = 5
#: seconds without any ticker, well within the misfire grace
OUTAGE_S = 4


@pytest.fixture()
def isolated(server_tmp_path: Path, base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Postgres and Valkey of this test's own: no other ticker or worker touches them."""
    pg = EmbeddedPostgres(server_tmp_path / "pg")
    rd = EmbeddedRedis(server_tmp_path / "redis", persist=False)
    env = {**base_env, "DATABASE_URL": pg.start(), "REDIS_URL": rd.start(), "BROKER_NAMESPACE": "ticks"}
    migrate(env["DATABASE_URL"])
    yield env
    rd.stop()
    pg.stop()


def add_schedules(env: dict[str, str], names: list[str], cron: str = EVERY_SECOND) -> None:
    from bus.schedule_store import SQL, params

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        for name in names:
            conn.execute(SQL["upsert"], params(ScheduleSpec(name=name, cron=cron, command=system.Noop(echo=name))))


def emitted(env: dict[str, str]) -> dict[str, list[dt.datetime]]:
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT options FROM jobs WHERE options ? 'schedule'").fetchall()
    slots: dict[str, list[dt.datetime]] = {}
    for (options,) in rows:
        slots.setdefault(options["schedule"], []).append(dt.datetime.fromisoformat(options["scheduled_at"]))
    return {name: sorted(v) for name, v in slots.items()}


def messages_sent(env: dict[str, str]) -> Counter[str]:
    """Message ids waiting in the broker (no worker runs here): a duplicate would show twice."""
    client = redis.Redis.from_url(env["REDIS_URL"])
    ids = client.lrange("ticks:system", 0, -1)
    bodies = client.hmget("ticks:system.msgs", ids) if ids else []
    import json

    return Counter(json.loads(b)["message_id"] for b in bodies if b)


def assert_exactly_once_without_gaps(env: dict[str, str], names: list[str], since: dt.datetime) -> int:
    slots = emitted(env)
    sent = messages_sent(env)
    assert sum(sent.values()) == sum(len(v) for v in slots.values()), "a slot was sent twice (or not at all)"
    assert max(sent.values()) == 1
    total = 0
    for name in names:
        mine = [s for s in slots[name] if s >= since]
        assert len(mine) == len(set(mine)), f"{name}: duplicate slot"
        gaps = [b - a for a, b in itertools.pairwise(mine) if b - a != dt.timedelta(seconds=1)]
        assert not gaps, f"{name}: missing slots {gaps}"
        total += len(mine)
    return total


def slots_through(env: dict[str, str], names: list[str], at: dt.datetime) -> bool:
    """Every schedule in ``names`` has been emitted for a slot at or after ``at``."""
    slots = emitted(env)
    return all(slots.get(name) and slots[name][-1] >= at for name in names)


def test_two_tickers_one_killed_midway_emit_each_slot_exactly_once(isolated: dict[str, str]) -> None:
    names = [f"every-second-{i}" for i in range(5)]
    add_schedules(isolated, names)
    start = dt.datetime.now(dt.UTC)
    tickers: list[Proc] = [start_ticker(isolated, name=f"ticker-pair-{i}") for i in range(2)]
    try:
        wait_for(lambda: all("ticker started" in t.output() for t in tickers), 60, 0.1, "both tickers")
        # both tickers contend for every slot of the next eight seconds
        both = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=BOTH_S)
        wait_for(lambda: slots_through(isolated, names, both), BOTH_S + 30, 0.2, "the pair's slots")
        tickers[0].kill()  # SIGKILL mid-run: the other one carries on
        killed_at = dt.datetime.now(dt.UTC)
        after = killed_at + dt.timedelta(seconds=SURVIVOR_S)
        wait_for(lambda: slots_through(isolated, names, after), SURVIVOR_S + 30, 0.2, "the survivor's slots")
    finally:
        for t in tickers:
            t.stop()
    since = start + dt.timedelta(seconds=2)
    assert_exactly_once_without_gaps(isolated, names, since)
    # each schedule's slots run, without a gap (checked above), from before the kill to after it:
    # the surviving ticker carried on where the pair left off (no count that a slow start could miss)
    slots = emitted(isolated)
    for name in names:
        mine = [slot for slot in slots[name] if slot >= since]
        assert mine and min(mine) < killed_at < max(mine), name


def test_a_ticker_restarted_within_the_grace_period_loses_no_slot(isolated: dict[str, str]) -> None:
    names = ["restart"]
    add_schedules(isolated, names)
    ticker = start_ticker(isolated, name="ticker-restart-a")
    try:
        first = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        wait_for(lambda: slots_through(isolated, names, first), 60, 0.1, "the first ticker's slots")
        ticker.kill()
        down_at = dt.datetime.now(dt.UTC)
        time.sleep(OUTAGE_S)  # the outage itself: slots pass while no ticker runs
        ticker = start_ticker(isolated, name="ticker-restart-b")
        back = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        wait_for(lambda: slots_through(isolated, names, back), 60, 0.1, "the restarted ticker's slots")
    finally:
        ticker.stop()
    slots = emitted(isolated)["restart"]
    assert any(down_at < s < down_at + dt.timedelta(seconds=3) for s in slots), "the outage's slots were not emitted"
    assert_exactly_once_without_gaps(isolated, names, slots[0])


def unsent(env: dict[str, str]) -> int:
    """Slots recorded whose message the broker has not taken yet."""
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE options ? 'schedule' AND enqueued_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def test_slots_due_while_the_broker_is_down_are_recorded_and_sent_once_it_is_back(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    """A tick whose send fails still records its slots (unsent) and advances; the sweeper sends them."""
    pg, rd = EmbeddedPostgres(tmp_path / "pg"), EmbeddedRedis(tmp_path / "redis", persist=True)
    env = {**base_env, "DATABASE_URL": pg.start(), "REDIS_URL": rd.start(), "BROKER_NAMESPACE": "ticks"}
    migrate(env["DATABASE_URL"])
    add_schedules(env, ["outage"])
    ticker = start_ticker(env, name="ticker-broker-outage")
    try:
        wait_for(lambda: len(emitted(env).get("outage", [])) >= 2, 30, 0.2, "slots sent before the outage")
        rd.stop()
        wait_for(lambda: unsent(env) >= 2, 30, 0.2, "slots recorded while the broker is down")
        rd.start()
        before = len(emitted(env)["outage"])
        wait_for(
            lambda: unsent(env) == 0 and len(emitted(env)["outage"]) >= before + 2, 30, 0.2, "the unsent slots sent"
        )
    finally:
        ticker.stop()
    try:
        slots = emitted(env)["outage"]
        assert_exactly_once_without_gaps(env, ["outage"], slots[0])
    finally:
        rd.stop()
        pg.stop()


def test_slots_recorded_before_are_not_sent_again(isolated: dict[str, str]) -> None:
    """A schedule whose next slot goes back over slots it fired (a schedule set again on a host whose
    clock is behind) fires the slots it has not fired, and no other one a second time."""
    add_schedules(isolated, ["again"])
    ticker = start_ticker(isolated, name="ticker-recorded")
    try:
        wait_for(lambda: len(emitted(isolated).get("again", [])) >= 3, 30, 0.2, "three slots")
        with psycopg.connect(isolated["DATABASE_URL"]) as conn:
            conn.execute("UPDATE schedules SET next_fire_at = next_fire_at - interval '3 seconds' WHERE name = 'again'")
        fired = len(emitted(isolated)["again"])
        wait_for(lambda: len(emitted(isolated)["again"]) >= fired + 3, 30, 0.2, "three more slots")
    finally:
        ticker.stop()
    assert_exactly_once_without_gaps(isolated, ["again"], emitted(isolated)["again"][0])


def test_work_per_tick_reads_only_due_schedules(isolated: dict[str, str]) -> None:
    """10,000 schedules that are not due cost the tick one index range scan of nothing."""
    with psycopg.connect(isolated["DATABASE_URL"]) as conn:
        conn.execute(
            "INSERT INTO schedules (name, cron, command, command_type, next_fire_at)"
            " SELECT 'idle-' || i, '0 0 1 1 *', '{\"type\": \"system.noop\"}', 'system.noop',"
            "        now() + interval '300 days'"
            " FROM generate_series(1, 10000) i"
        )
        conn.execute("ANALYZE schedules")
        from bus.schedule_store import SQL

        plan = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + SQL["due"], {"now": dt.datetime.now(dt.UTC), "limit": 500}
        ).fetchone()[0][0]["Plan"]  # type: ignore[index]

    def nodes(node: dict) -> Iterator[dict]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [n for n in nodes(plan) if "Scan" in n["Node Type"]]
    assert scans and all(n["Node Type"] != "Seq Scan" for n in scans), scans
    assert sum(n.get("Actual Rows", 0) for n in scans) == 0


def test_a_stale_tick_is_dropped_by_the_worker(stack: dict[str, str]) -> None:
    from contracts import build_message
    from tests.support import wait_status
    from tests.test_direct_publish import push_raw

    job_id = str(uuid.uuid4())
    message = build_message(system.Noop(echo="late"), job_id=job_id)
    message["options"]["scheduled_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    push_raw(stack, message)
    row = wait_status(stack["DATABASE_URL"], job_id, {"cancelled"})
    assert row["error"]["type"] == "StaleTick" and "TICK_STALENESS_S" in row["error"]["message"]
    assert row["result"] is None
