"""Rules end to end: job events on the bus (the ticker's relay), the rule processor, follow-ups
exactly once.

The web process, a system worker, the rule processor and the ticker run on a database and broker
namespace of this module's own (rules fire on every job of their type: they must not reach the
session's shared stack). A test sends an event itself only to deliver one again (a redelivery)."""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import httpx
import psycopg
import pytest

from bus.broker_adapter import enqueue, held_counts
from contracts.event import EVENTS_QUEUE
from contracts.publish import broker_for
from devservers import free_port
from tests.rules_support import event_of, firings, follow_ups, query, send_event
from tests.support import (
    API_KEY,
    ROOT,
    Proc,
    drop_database,
    fresh_database,
    job_row,
    start_rules,
    start_ticker,
    start_web,
    start_worker,
    stop_all,
    wait_for,
    wait_status,
)
from tests.test_ui import browser, sign_in

#: a chain deeper than two firings is refused here: short enough to build in a test
MAX_DEPTH = 2


@pytest.fixture(scope="module")
def rules_env(postgres_server: str, base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    url = fresh_database(postgres_server)
    yield {
        **base_env,
        "DATABASE_URL": url,
        "BROKER_NAMESPACE": "syrules-" + uuid.uuid4().hex[:6],
        "MAX_CHAIN_DEPTH": str(MAX_DEPTH),
    }
    drop_database(postgres_server, url)


@pytest.fixture(scope="module")
def rules_stack(rules_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """web, a system worker and the ticker; each test starts the rule processors it needs."""
    web, url = start_web(rules_env, free_port(), name="web-rules")
    procs = [web, start_worker(rules_env, name="worker-system-rules"), start_ticker(rules_env, name="ticker-rules")]
    yield {"url": url, **rules_env}
    stop_all(procs)


@pytest.fixture()
def api(rules_stack: dict[str, str]) -> Iterator[httpx.Client]:
    env = rules_stack
    with httpx.Client(base_url=env["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15) as c:
        yield c
        # the next test starts from nothing: its jobs' events, and its rules, are its own
        still = (
            "SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running', 'failed') AND type <> 'system.notify'"
        )
        wait_for(lambda: query(env["DATABASE_URL"], still)[0]["n"] == 0, 60, 0.2, "the test's jobs to end")
        waiting = "SELECT count(*) AS n FROM job_events WHERE published_at IS NULL"
        wait_for(lambda: query(env["DATABASE_URL"], waiting)[0]["n"] == 0, 60, 0.2, "the test's events sent")
        for row in query(env["DATABASE_URL"], "SELECT name FROM rules WHERE source = 'api'"):
            c.delete(f"/v1/rules/{row['name']}")
    bus_of(env).flush(EVENTS_QUEUE)
    query(env["DATABASE_URL"], "DELETE FROM rule_firings RETURNING id")


@pytest.fixture()
def processor(rules_stack: dict[str, str]) -> Iterator[Proc]:
    proc = start_rules(rules_stack, name="worker-rules-e2e")
    yield proc
    proc.stop()


def bus_of(env: dict[str, str]):  # type: ignore[no-untyped-def]
    return broker_for(env.get("BROKER_URL") or env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])


def run_job(api: httpx.Client, env: dict[str, str], command: dict) -> dict:
    job_id = api.post("/v1/commands", json=command).json()["id"]
    return wait_for(
        lambda: (row := job_row(env["DATABASE_URL"], job_id)) and row["status"] in ("succeeded", "dead") and row,
        60,
        0.1,
        f"job {job_id} to end",
    )


def test_from_values_reach_the_follow_up_and_the_chain_shows_in_the_jobs(
    api: httpx.Client, rules_stack: dict[str, str], processor: Proc
) -> None:
    env = rules_stack
    rule = {
        "name": "echo-to-fail",
        "when": {"type": "system.noop", "match": {"echo": "ping"}},
        "then": {"command": {"type": "system.fail", "permanent": True, "message": {"$from": "/result/echo"}}},
    }
    assert api.post("/v1/rules", json=rule).status_code == 201
    triggering = run_job(api, env, {"type": "system.noop", "echo": "ping"})
    other = run_job(api, env, {"type": "system.noop", "echo": "pong"})  # its result does not match
    follow = wait_for(lambda: follow_ups(env["DATABASE_URL"], "echo-to-fail"), 30, 0.1, "the follow-up")
    assert len(follow) == 1
    assert follow[0]["command"]["message"] == "ping" and follow[0]["command"]["type"] == "system.fail"
    assert follow[0]["options"]["chain_depth"] == 1
    follow_id = follow[0]["id"]
    job = wait_for(lambda: (j := api.get(f"/v1/jobs/{follow_id}").json())["status"] == "dead" and j, 30, 0.1)
    assert job["caused_by"] == triggering["id"] and job["rule"] == "echo-to-fail"
    assert job["error"]["message"] == "ping"
    assert api.get(f"/v1/jobs/{triggering['id']}").json()["followed_by"] == [follow_id]
    listed = api.get("/v1/jobs", params={"type": "system.fail"}).json()["items"]
    assert [(j["caused_by"], j["rule"]) for j in listed if j["id"] == follow_id] == [(triggering["id"], "echo-to-fail")]
    fired = api.get("/v1/rules/echo-to-fail").json()["last_firings"]
    assert [(f["job_id"], f["follow_up_id"], f["outcome"]) for f in fired] == [
        (triggering["id"], follow_id, "submitted")
    ]
    assert api.get(f"/v1/jobs/{other['id']}").json()["followed_by"] == []
    with browser(env) as ui:  # the dashboard shows the firing, and the chain on both jobs' pages
        assert sign_in(ui).status_code == 303
        page = ui.get("/ui/rules").text
        assert 'data-firing="submitted"' in page and f'href="/ui/jobs/{follow_id}"' in page
        assert f'href="/ui/jobs/{triggering["id"]}"' in ui.get(f"/ui/jobs/{follow_id}").text


def publish_with_origin(env: dict[str, str], command: dict, **origin: object) -> str:
    """A command published straight onto the bus with a follow-up's origin in its options."""
    job_id = str(uuid.uuid4())
    message = dramatiq.Message(
        queue_name="system",
        actor_name=command["type"],
        args=(command,),
        kwargs={},
        options={"schema_version": 1, **origin},
        message_id=job_id,
        message_timestamp=dramatiq.common.current_millis(),
    )
    enqueue(bus_of(env), message)
    return job_id


def test_a_chain_longer_than_max_chain_depth_is_refused_and_stopped_at_run_time(
    api: httpx.Client, rules_stack: dict[str, str], processor: Proc
) -> None:
    env = rules_stack
    sleep = {"type": "system.sleep", "seconds": 0, "steps": 1}
    fail = {"type": "system.fail", "permanent": True, "message": "end of the chain"}
    for name, when, command in (("first", "system.noop", sleep), ("second", "system.sleep", fail)):
        created = api.post("/v1/rules", json={"name": name, "when": {"type": when}, "then": {"command": command}})
        assert created.status_code == 201, created.text
    http = {"type": "system.http", "url": "https://example.com/hook"}
    third = api.post("/v1/rules", json={"name": "third", "when": {"type": "system.fail"}, "then": {"command": http}})
    assert third.status_code == 422
    assert third.json()["detail"] == {
        "path": "$.when.type",
        "message": "this rule makes a chain of 3 rules, longer than MAX_CHAIN_DEPTH=2: first -> second -> third",
    }
    notify = {"notify": {"email": ["a@b.co"]}}
    last = api.post("/v1/rules", json={"name": "third", "when": {"type": "system.fail"}, "then": notify})
    assert last.status_code == 422 and "chain of 3 rules" in last.json()["detail"]["message"]
    # ahead of the chain as well as after it
    ahead = {"name": "ahead", "when": {"type": "system.http"}, "then": {"command": {"type": "system.noop"}}}
    refused = api.post("/v1/rules", json=ahead)
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == "$.then.command.type"
    assert "ahead -> first -> second" in refused.json()["detail"]["message"]

    # the chain runs by itself, each follow-up one firing deeper
    start = run_job(api, env, {"type": "system.noop", "echo": "chain"})
    one = wait_for(lambda: follow_ups(env["DATABASE_URL"], "first"), 30, 0.1, "the first follow-up")[0]
    assert (one["options"]["chain_depth"], one["options"]["caused_by"]) == (1, start["id"])
    two = wait_for(lambda: follow_ups(env["DATABASE_URL"], "second"), 30, 0.1, "the second follow-up")[0]
    assert (two["options"]["chain_depth"], two["options"]["caused_by"]) == (2, one["id"])
    assert wait_status(env["DATABASE_URL"], two["id"], {"dead"})["error"]["message"] == "end of the chain"

    # a job that says it is two firings deep (a message published with a chain_depth) fires nothing
    deep = publish_with_origin(env, {"type": "system.noop", "echo": "deep"}, chain_depth=2)
    wait_status(env["DATABASE_URL"], deep, {"succeeded"})
    stopped = wait_for(
        lambda: [f for f in firings(env["DATABASE_URL"], "first") if f["job_id"] == deep], 30, 0.1, "the stop"
    )[0]
    assert stopped["outcome"] == "stopped" and stopped["follow_up_id"] is None
    assert "MAX_CHAIN_DEPTH=2" in stopped["reason"]
    assert len(follow_ups(env["DATABASE_URL"], "first")) == 1

    # a pointer that names nothing in the job: the firing is recorded failed, nothing is submitted
    assert api.delete("/v1/rules/second").status_code == 204
    missing = {**fail, "message": {"$from": "/result/nothing/here"}}
    created = api.post(
        "/v1/rules", json={"name": "missing", "when": {"type": "system.sleep"}, "then": {"command": missing}}
    )
    assert created.status_code == 201, created.text
    run_job(api, env, {"type": "system.noop", "echo": "again"})
    failed = wait_for(lambda: firings(env["DATABASE_URL"], "missing"), 30, 0.1, "the failed firing")[0]
    assert failed["outcome"] == "failed" and "/result/nothing/here names nothing" in failed["reason"]
    assert follow_ups(env["DATABASE_URL"], "missing") == []
    # logged after the firing's commit: looked for until it is there
    wait_for(lambda: "rule missing on event" in processor.output(), 30, 0.1, "the firing's log line")


def test_a_notification_rule_submits_system_notify_and_notifications_trigger_no_rule(
    api: httpx.Client, rules_stack: dict[str, str], processor: Proc
) -> None:
    env = rules_stack
    body = {
        "name": "tell-ops",
        "when": {"type": "*", "status": ["dead"]},
        "then": {"notify": {"email": ["ops@example.com"]}},
    }
    assert api.post("/v1/rules", json=body).status_code == 201
    dead = run_job(api, env, {"type": "system.fail", "permanent": True, "message": "boom"})
    note = wait_for(lambda: follow_ups(env["DATABASE_URL"], "tell-ops"), 30, 0.1, "the notification job")
    assert [(n["type"], n["command"]) for n in note] == [
        ("system.notify", {"type": "system.notify", "rule": "tell-ops", "job_id": dead["id"], "status": "dead"})
    ]
    # the notification's own end (dead, say: SMTP is not set up here) triggers no rule
    notify_row = {**note[0], "status": "dead", "attempts": 1, "result": None, "finished_at": None}
    send_event(bus_of(env), event_of(notify_row))
    send_event(bus_of(env), event_of(dead))  # and the same event again: one notification
    marker = run_job(api, env, {"type": "system.fail", "permanent": True, "message": "second"})
    # handled after the two above: the processor takes the queue in order, one thread per event
    wait_for(lambda: len(follow_ups(env["DATABASE_URL"], "tell-ops")) == 2, 30, 0.1, "the marker's notification")
    assert {f["job_id"] for f in firings(env["DATABASE_URL"], "tell-ops")} == {dead["id"], marker["id"]}


HUNDRED = 100


def hundred_triggering_jobs(api: httpx.Client, env: dict[str, str], rule: str) -> list[dict]:
    """The rule (noop -> sleep) and 100 noop jobs it matches, run to their end."""
    body = {
        "name": rule,
        "when": {"type": "system.noop", "match": {"echo": rule}},
        "then": {"command": {"type": "system.sleep", "seconds": 0, "steps": 1}},
    }
    assert api.post("/v1/rules", json=body).status_code == 201
    ids = [api.post("/v1/commands", json={"type": "system.noop", "echo": rule}).json()["id"] for _ in range(HUNDRED)]
    done = wait_for(
        lambda: (
            len(
                rows := query(
                    env["DATABASE_URL"], "SELECT * FROM jobs WHERE id = ANY(%s) AND status = 'succeeded'", ids
                )
            )
            == HUNDRED
            and rows
        ),
        120,
        0.2,
        "the triggering jobs to succeed",
    )
    return done


def settled(api: httpx.Client, env: dict[str, str]) -> None:
    """Every event sent so far has been handled: a marker event sent last (the processor takes a
    queue's messages in order) has fired its rule."""
    name = "marker-" + uuid.uuid4().hex[:6]
    body = {
        "name": name,
        "when": {"type": "system.noop", "match": {"echo": name}},
        "then": {"notify": {"email": ["a@b.co"]}},
    }
    assert api.post("/v1/rules", json=body).status_code == 201
    run_job(api, env, {"type": "system.noop", "echo": name})
    wait_for(lambda: firings(env["DATABASE_URL"], name), 120, 0.2, "the marker event to be handled")


def assert_exactly_one_follow_up_each(env: dict[str, str], rule: str, triggering: list[dict]) -> None:
    made = follow_ups(env["DATABASE_URL"], rule)
    fired = firings(env["DATABASE_URL"], rule)
    assert len(made) == HUNDRED and len(fired) == HUNDRED, (len(made), len(fired))
    assert sorted(f["options"]["caused_by"] for f in made) == sorted(t["id"] for t in triggering)
    assert {f["follow_up_id"] for f in fired} == {f["id"] for f in made}
    assert all(f["outcome"] == "submitted" for f in fired)


def _hundred_follow_ups_with_the_processor_killed(api: httpx.Client, env: dict[str, str], rule: str) -> None:
    triggering = hundred_triggering_jobs(api, env, rule)  # their events wait in the queue: no processor yet
    broker = bus_of(env)
    first = start_rules(env, name=f"worker-rules-{rule}-a", threads=2)
    second = None
    try:
        wait_for(lambda: len(firings(env["DATABASE_URL"], rule)) >= 20, 60, 0.02, "the processor to be under way")
        # hold every firing at its insert, so the kill lands inside a firing's transaction
        with psycopg.connect(env["DATABASE_URL"]) as holder:
            holder.execute("LOCK TABLE rule_firings IN SHARE ROW EXCLUSIVE MODE")
            waiting = (
                "SELECT count(*) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            wait_for(lambda: query(env["DATABASE_URL"], waiting)[0]["n"] > 0, 30, 0.05, "a firing held at its insert")
            first.kill(signal.SIGKILL)
            holder.rollback()
        at_kill = len(firings(env["DATABASE_URL"], rule))
        assert at_kill < HUNDRED, "the processor had finished before it was killed"
        second = start_rules(env, name=f"worker-rules-{rule}-b", threads=1)
        wait_for(lambda: len(firings(env["DATABASE_URL"], rule)) == HUNDRED, 120, 0.2, "every event to fire its rule")
        for row in triggering:  # every event delivered once more: nothing new
            send_event(broker, event_of(row))
        settled(api, env)
        assert_exactly_one_follow_up_each(env, rule, triggering)
        ended = "SELECT count(*) AS n FROM jobs WHERE options->>'rule' = %s AND status = 'succeeded'"
        wait_for(lambda: query(env["DATABASE_URL"], ended, rule)[0]["n"] == HUNDRED, 120, 0.2, "the follow-ups to run")
        print(f"{rule}: {at_kill} firings when the processor was killed, {HUNDRED} follow-ups after")
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_hundred_events_make_a_hundred_follow_ups_though_the_processor_is_killed(
    api: httpx.Client, rules_stack: dict[str, str]
) -> None:
    _hundred_follow_ups_with_the_processor_killed(api, rules_stack, "hundred-redis")


@pytest.fixture()
def rabbitmq_stack(postgres_server: str, rules_env: dict[str, str], rabbitmq_url: str) -> Iterator[dict[str, str]]:
    """RabbitMQ as the broker: web, a system worker and a ticker of their own, on a database of their
    own (the module's ticker relays the events of its database to Redis)."""
    env = {**rules_env, "BROKER_URL": rabbitmq_url, "DATABASE_URL": fresh_database(postgres_server)}
    web, url = start_web(env, free_port(), name="web-rules-rabbitmq")
    procs = [
        web,
        start_worker(env, name="worker-system-rules-rabbitmq"),
        start_ticker(env, name="ticker-rules-rabbitmq"),
    ]
    yield {**env, "url": url}
    stop_all(procs)
    drop_database(postgres_server, env["DATABASE_URL"])


def test_on_rabbitmq_too(rabbitmq_stack: dict[str, str]) -> None:
    with httpx.Client(
        base_url=rabbitmq_stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15
    ) as api:
        _hundred_follow_ups_with_the_processor_killed(api, rabbitmq_stack, "hundred-rabbitmq")


def test_two_processors_at_once_and_every_event_twice_make_a_hundred_follow_ups(
    api: httpx.Client, rules_stack: dict[str, str]
) -> None:
    env = rules_stack
    rule = "hundred-twice"
    triggering = hundred_triggering_jobs(api, env, rule)
    procs = [start_rules(env, name=f"worker-rules-twice-{i}", threads=2) for i in range(2)]
    try:
        broker = bus_of(env)
        for row in triggering:  # each event again: its two copies taken by both processors at once, or one
            send_event(broker, event_of(row))
        wait_for(lambda: len(firings(env["DATABASE_URL"], rule)) == HUNDRED, 120, 0.2, "every event to fire its rule")
        procs[1].stop()  # the marker needs one processor, taking the queue in order
        settled(api, env)
        assert_exactly_one_follow_up_each(env, rule, triggering)
        assert "Traceback" not in procs[0].output() + procs[1].output()
    finally:
        stop_all(procs)


def test_real_events_under_a_killed_worker_two_tickers_and_two_processors_make_a_hundred_follow_ups(
    postgres_server: str, rules_env: dict[str, str]
) -> None:
    """The triggering jobs' pool is SIGKILLed while they run (some run twice: the lost attempts end in
    no event), two tickers relay the events and two rule processors take them at once."""
    url = fresh_database(postgres_server)
    env = {**rules_env, "DATABASE_URL": url, "BROKER_NAMESPACE": "syrules2-" + uuid.uuid4().hex[:6], "LEASE_S": "6"}
    web, base = start_web(env, free_port(), name="web-rules-kill")
    doomed = start_worker(env, name="worker-system-rules-kill-a", threads=8)
    procs = [web, start_ticker(env, name="ticker-rules-kill-a"), start_ticker(env, name="ticker-rules-kill-b")]
    procs += [start_rules(env, name=f"worker-rules-kill-{i}", threads=2) for i in range(2)]
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15) as api:
            body = {
                "name": "after-sleep",
                "when": {"type": "system.sleep"},
                "then": {"command": {"type": "system.noop"}},
            }
            assert api.post("/v1/rules", json=body).status_code == 201
            sleep = {"type": "system.sleep", "seconds": 1, "steps": 4}
            ids = [api.post("/v1/commands", json=sleep).json()["id"] for _ in range(HUNDRED)]
        ended = "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status = 'succeeded'"
        running = "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status = 'running'"
        wait_for(
            lambda: query(url, ended, ids)[0]["n"] >= 10 and query(url, running, ids)[0]["n"] >= 4,
            120,
            0.05,
            "jobs ended and jobs running",
        )
        doomed.kill(signal.SIGKILL)
        procs.append(start_worker(env, name="worker-system-rules-kill-b", threads=8))
        wait_for(lambda: query(url, ended, ids)[0]["n"] == HUNDRED, 180, 0.2, "every triggering job to succeed")
        triggering = query(url, "SELECT * FROM jobs WHERE id = ANY(%s)", ids)
        assert any(t["attempts"] > 1 for t in triggering), "no job was running when its worker was killed"
        made = "SELECT count(*) AS n FROM jobs WHERE options->>'rule' = 'after-sleep' AND status = 'succeeded'"
        wait_for(lambda: query(url, made)[0]["n"] == HUNDRED, 120, 0.2, "the follow-ups to run")
        # settled: every event relayed and taken (the follow-ups' own events included)
        waiting = "SELECT count(*) AS n FROM job_events WHERE published_at IS NULL"
        wait_for(lambda: query(url, waiting)[0]["n"] == 0, 60, 0.2, "the outbox empty")
        wait_for(lambda: held_counts(bus_of(env), (EVENTS_QUEUE,))[EVENTS_QUEUE] == 0, 60, 0.2, "the events taken")
        assert_exactly_one_follow_up_each(env, "after-sleep", triggering)
        print(f"killed worker: {sum(t['attempts'] > 1 for t in triggering)} jobs ran twice, {HUNDRED} follow-ups")
    finally:
        stop_all([doomed, *procs])
        drop_database(postgres_server, url)


CATALOG_RULES = """
rules:
  - name: catalog-notify
    when: {type: "pipelines.*", status: [dead]}
    then: {notify: {email: [data-team@example.com]}}
  - name: catalog-chain
    when: {type: system.noop, match: {echo: from-catalog}}
    then: {command: {type: system.sleep, seconds: 0}}
"""


def catalog_rules(env: dict[str, str]) -> dict[str, dict]:
    return {r["name"]: r for r in query(env["DATABASE_URL"], "SELECT * FROM rules WHERE source = 'catalog'")}


def test_catalog_rules_are_synced_by_the_processor_and_changed_only_there(
    api: httpx.Client, rules_stack: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", root)
    (root / "rules.yaml").write_text(CATALOG_RULES)
    env = {**rules_stack, "CATALOG_DIR": str(root)}
    proc = start_rules(env, name="worker-rules-catalog")
    try:
        synced = wait_for(lambda: len(rows := catalog_rules(env)) == 2 and rows, 60, 0.2, "the catalog's rules")
        assert synced["catalog-notify"]["then"] == {"notify": {"email": ["data-team@example.com"]}}
        view = api.get("/v1/rules/catalog-chain").json()
        assert view["source"] == "catalog" and view["when"]["match"] == {"echo": "from-catalog"}
        for answer in (
            api.patch("/v1/rules/catalog-chain", json={"enabled": False}),
            api.delete("/v1/rules/catalog-chain"),
        ):
            assert answer.status_code == 409 and "catalog" in answer.json()["detail"]["message"], answer.text
        taken = api.post("/v1/rules", json={k: view[k] for k in ("name", "when", "then")})
        assert taken.status_code == 409 and taken.json()["detail"]["rule"] == "catalog-chain"
        refused = run_job(api, env, {"type": "rule.delete", "name": "catalog-chain"})
        assert refused["status"] == "dead" and "defined in the catalog" in refused["error"]["message"]

        triggering = run_job(api, env, {"type": "system.noop", "echo": "from-catalog"})
        send_event(bus_of(env), event_of(triggering))
        made = wait_for(
            lambda: follow_ups(env["DATABASE_URL"], "catalog-chain"), 30, 0.1, "the catalog rule's follow-up"
        )
        assert made[0]["options"]["caused_by"] == triggering["id"]

        # a rule the checks refuse: logged with its file and name, and nothing changes
        (root / "rules.yaml").write_text(
            CATALOG_RULES
            + "  - name: catalog-bad\n    when: {type: system.fail}\n"
            + "    then: {command: {type: schedule.delete, name: nightly}}\n"
        )
        proc.stop()
        proc = start_rules(env, name="worker-rules-catalog")
        wait_for(lambda: "rules.yaml: rules.catalog-bad: " in proc.output(), 60, 0.2, "the refusal in the log")
        assert "control-plane command" in proc.output()
        assert set(catalog_rules(env)) == {"catalog-notify", "catalog-chain"}

        # a rule taken out of the catalog is deleted, a new one written
        (root / "rules.yaml").write_text(
            CATALOG_RULES.split("  - name: catalog-chain")[0].replace("catalog-notify", "renamed")
        )
        proc.stop()
        proc = start_rules(env, name="worker-rules-catalog")
        wait_for(lambda: set(catalog_rules(env)) == {"renamed"}, 60, 0.2, "the catalog's rules replaced")
        assert api.get("/v1/rules/catalog-chain").status_code == 404

        # edited while the processor runs: the next events after CHECK_S find the catalog changed
        (root / "rules.yaml").write_text(CATALOG_RULES.replace("catalog-notify", "live-edit"))
        poke = event_of(triggering, "succeeded")

        def edited() -> bool:
            send_event(bus_of(env), poke)  # an event delivered again: it fires nothing new
            return set(catalog_rules(env)) == {"live-edit", "catalog-chain"}

        wait_for(edited, 60, 1.0, "the edited catalog synced")
        assert len(follow_ups(env["DATABASE_URL"], "catalog-chain")) == 1
    finally:
        proc.stop()
