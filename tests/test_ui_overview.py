"""The Overview's workers and last-hour throughput, against the running stack and extra real workers."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bus import presence, throughput
from tests.support import start_worker, wait_for, wait_status

ROW = re.compile(
    r'<tr data-worker="(?P<id>[^"]+)" data-role="(?P<role>[^"]+)" data-queues="(?P<queues>[^"]*)"'
    r' data-jobs="(?P<jobs>\d+)">(?P<body>.*?)</tr>',
    re.DOTALL,
)
FIELDS = ("succeeded", "failed", "dead", "cancelled")


def workers(ui: httpx.Client) -> dict[str, dict[str, str]]:
    page = ui.get("/ui")
    assert page.status_code == 200
    return {m["id"]: m.groupdict() for m in ROW.finditer(page.text)}


def system_workers(ui: httpx.Client) -> dict[str, dict[str, str]]:
    return {i: w for i, w in workers(ui).items() if w["role"] == "worker" and w["queues"] == "system"}


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s*(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]


@pytest.fixture()
def store(stack: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack["REDIS_URL"])
    yield client
    client.close()


def counts(store: redis.Redis, namespace: str, queue: str, since: int) -> dict[str, int]:
    """The queue's counters summed over the minutes from ``since`` on (a fixed start: a minute leaving
    the hour's window between two reads cannot change the difference)."""
    minutes = throughput.window(time.time())
    with store.pipeline(transaction=False) as pipe:
        throughput.ask(pipe, namespace, [queue], minutes)
        replies = pipe.execute()
    hour = throughput.read([queue], minutes, replies)[queue]
    return {f: sum(getattr(m, f) for m in hour.minutes if m.at >= since) for f in FIELDS}


def test_the_stack_s_system_worker_and_the_ticker_are_listed(ui: httpx.Client) -> None:
    listed = wait_for(lambda: system_workers(ui), 60, 0.5, "the system worker on the overview")
    row = next(iter(listed.values()))
    assert "worker / system" in row["body"]
    assert re.search(r'<td class="num">4</td>', row["body"]), "the stack's worker runs 4 threads"
    tickers = wait_for(
        lambda: [w for w in workers(ui).values() if w["role"] == "ticker"], 60, 0.5, "the ticker on the overview"
    )
    assert len(tickers) == 1 and tickers[0]["queues"] == ""
    assert 'data-dependency="ticker">ticker: ok' in ui.get("/ui").text


def test_a_running_job_shows_as_in_flight_on_its_worker(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str]
) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.sleep", "seconds": 3, "steps": 3}).json()["id"]

    def running_on() -> list[dict[str, str]]:
        return [w for w in system_workers(ui).values() if f'data-job="{job_id}"' in w["body"]]

    row = wait_for(running_on, 30, 0.2, "the sleep job listed as in flight")[0]
    assert f'href="/ui/jobs/{job_id}"' in row["body"] and "system.sleep" in row["body"]
    assert int(row["jobs"]) >= 1
    wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})
    wait_for(lambda: not running_on(), 30, 0.2, "the finished job to leave the in-flight list")


def test_a_new_worker_appears_and_a_killed_one_drops_out(
    ui: httpx.Client,
    stack: dict[str, str],
    store: redis.Redis,
) -> None:
    before = set(system_workers(ui))
    extra = start_worker(stack, name="worker-presence-extra", threads=2)
    try:
        new = wait_for(lambda: set(system_workers(ui)) - before, 60, 0.5, "the extra worker on the overview")
        (worker_id,) = new
        # the id is the worker process (Dramatiq forks it from the process we started), host:pid
        pid = int(worker_id.rsplit(":", 1)[1])
        assert parent_of(pid) == extra.pid
        assert re.search(r'<td class="num">2</td>', system_workers(ui)[worker_id]["body"])
        extra.kill(signal.SIGKILL)  # no goodbye: only the entry's expiry can remove it
        wait_for(lambda: worker_id not in workers(ui), presence.KEEP_S + 60, 0.5, "the killed worker to drop out")
        # the reader pruned its index entry too
        assert store.zscore(presence.members_key(stack["BROKER_NAMESPACE"]), worker_id) is None
        assert before <= set(system_workers(ui)), "the stack's worker is still listed"
    finally:
        extra.stop()


def test_a_rabbitmq_worker_is_listed_too(ui: httpx.Client, stack: dict[str, str], rabbitmq_url: str) -> None:
    # the registry is in Redis (REDIS_URL), whichever broker carries the messages; the stack's own
    # worker is listed first (run alone, this test may start while it boots)
    before = set(wait_for(lambda: system_workers(ui), 60, 0.5, "the stack's worker"))
    extra = start_worker({**stack, "BROKER_URL": rabbitmq_url}, name="worker-presence-rabbitmq", threads=1)
    try:
        (worker_id,) = wait_for(lambda: set(system_workers(ui)) - before, 60, 0.5, "the RabbitMQ worker")
        assert parent_of(int(worker_id.rsplit(":", 1)[1])) == extra.pid
    finally:
        extra.stop()
    assert worker_id not in workers(ui)


@pytest.mark.parametrize("told", ["main process", "process group"])
def test_a_stopped_worker_removes_itself(
    ui: httpx.Client, stack: dict[str, str], store: redis.Redis, told: str
) -> None:
    before = set(system_workers(ui))
    extra = start_worker(stack, name="worker-presence-stopped", threads=1)
    try:
        (worker_id,) = wait_for(lambda: set(system_workers(ui)) - before, 60, 0.5, "the extra worker")
        if told == "main process":
            # as a supervisor stops it: Dramatiq's main process passes SIGTERM on, the worker drains
            os.kill(extra.pid, signal.SIGTERM)
        else:
            # both processes get it (a group kill): told twice, the worker may exit without draining,
            # and still says goodbye on its way out
            extra.kill(signal.SIGTERM)
        extra.popen.wait(30)
    finally:
        extra.stop()
    # removed on the way out, not left to expire
    assert store.get(presence.member_key(stack["BROKER_NAMESPACE"], worker_id)) is None
    assert worker_id not in workers(ui)


def test_finished_jobs_are_counted_per_queue_and_minute(
    ui: httpx.Client,
    client: httpx.Client,
    stack: dict[str, str],
    store: redis.Redis,
) -> None:
    ns = stack["BROKER_NAMESPACE"]
    since = throughput.minute_of(time.time())
    system_before = counts(store, ns, "system", since)
    gooddata_before = counts(store, ns, "gooddata", since)
    page_before = page_counts(ui)
    noops = [client.post("/v1/commands", json={"type": "system.noop"}).json()["id"] for _ in range(5)]
    # MAX_RETRIES=2 in the test stack: attempts 1 and 2 fail (retried), attempt 3 ends dead
    fails = [client.post("/v1/commands", json={"type": "system.fail"}).json()["id"] for _ in range(2)]
    # no gooddata worker runs in the stack: the job stays queued until the API cancels it
    parked = client.post("/v1/commands", json={"type": "gooddata.workspace.view"}).json()["id"]
    assert client.post(f"/v1/jobs/{parked}/cancel").json()["status"] == "cancelled"
    for job_id in noops:
        wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})
    for job_id in fails:
        assert wait_status(stack["DATABASE_URL"], job_id, {"dead"}, timeout=60)["attempts"] == 3
    expected = {"succeeded": 5, "failed": 4, "dead": 2, "cancelled": 0}

    def delta() -> dict[str, int]:
        now = counts(store, ns, "system", since)
        return {f: now[f] - system_before[f] for f in FIELDS}

    # Postgres commits a finished batch a moment before its counts reach Redis: wait for them, then
    # compare exactly (nothing else runs on the system queue meanwhile in this module)
    wait_for(lambda: all(delta()[f] >= n for f, n in expected.items()), 30, 0.1, "the counts")
    assert delta() == expected
    gooddata_after = counts(store, ns, "gooddata", since)
    assert {f: gooddata_after[f] - gooddata_before[f] for f in FIELDS} == {
        "succeeded": 0,
        "failed": 0,
        "dead": 0,
        "cancelled": 1,
    }

    # the page's last hour moved by these jobs: 5 succeeded + 2 dead finished; 4 failed + 2 dead failures
    # (the exact counts were checked in Redis above; the page is compared with its own earlier figures)
    def page_moved() -> bool:
        finished, failures = page_counts(ui)
        return finished >= page_before[0] + 7 and failures >= page_before[1] + 6

    wait_for(page_moved, 30, 0.2, "the overview's counts to take in the jobs")
    html = ui.get("/ui").text
    row = re.search(r'<tr data-queue="system">(.*?)</tr>', html, re.DOTALL)
    assert row is not None
    spark = re.search(r'data-spark="([\d,]+)" data-failed="([\d,]+)"', row.group(1))
    assert spark is not None
    per_minute = [int(n) for n in spark.group(1).split(",")]
    assert len(per_minute) == throughput.WINDOW and sum(per_minute) >= 5 + 4 + 2
    assert sum(int(n) for n in spark.group(2).split(",")) >= 4 + 2


def page_counts(ui: httpx.Client) -> tuple[int, int]:
    """(finished, failures) of the system queue's last hour, as the overview shows them."""
    row = re.search(r'<tr data-queue="system">(.*?)</tr>', ui.get("/ui").text, re.DOTALL)
    assert row is not None
    finished = re.search(r'data-finished="(\d+)"', row.group(1))
    failures = re.search(r'data-failures="(\d+)"', row.group(1))
    assert finished is not None and failures is not None
    return int(finished.group(1)), int(failures.group(1))


def test_the_overview_survives_unreadable_presence_entries(
    ui: httpx.Client, stack: dict[str, str], store: redis.Redis
) -> None:
    ns = stack["BROKER_NAMESPACE"]
    bogus = f"garbage-{uuid.uuid4().hex[:6]}:1"
    store.set(presence.member_key(ns, bogus), b"{not json", ex=30)
    store.zadd(presence.members_key(ns), {bogus: time.time()})
    try:
        page = ui.get("/ui")
        assert page.status_code == 200 and bogus not in page.text
        assert system_workers(ui), "the real workers are still listed"
    finally:
        store.delete(presence.member_key(ns, bogus))
        store.zrem(presence.members_key(ns), bogus)


def rejected_on_page(ui: httpx.Client, queue: str) -> int | None:
    row = re.search(rf'<tr data-queue="{queue}">(.*?)</tr>', ui.get("/ui").text, re.DOTALL)
    found = row and re.search(r'data-rejected="(\d*)"', row.group(1))
    return int(found.group(1)) if found and found.group(1) else None


def test_a_rejected_poison_message_is_counted_on_its_queue(
    ui: httpx.Client, store: redis.Redis, stack: dict[str, str]
) -> None:
    before = rejected_on_page(ui, "system")
    assert before is not None
    ns, rid = stack["BROKER_NAMESPACE"], str(uuid.uuid4())
    with store.pipeline(transaction=True) as tx:  # not JSON: the system worker dead-letters it
        tx.hset(f"{ns}:system.msgs", rid, b"<poison/>")
        tx.rpush(f"{ns}:system", rid)
        tx.execute()
    wait_for(lambda: rejected_on_page(ui, "system") == before + 1, 30, 0.5, "the rejected count to move")
    assert rejected_on_page(ui, "gooddata") == 0
