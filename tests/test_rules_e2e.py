"""Rules end to end: job events on the bus, the rule processor, follow-ups exactly once.

The web process, a system worker, the rule processor and the ticker run on a database and broker
namespace of this module's own (rules fire on every job of their type: they must not reach the
session's shared stack).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from contracts.publish import broker_for
from devservers import free_port
from tests.rules_support import drop_database, event_of, follow_ups, fresh_database, send_event
from tests.support import API_KEY, Proc, job_row, start_rules, start_ticker, start_web, start_worker, wait_for


@pytest.fixture(scope="module")
def rules_env(
    postgres_server: str, base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    url = fresh_database(postgres_server)
    yield {**base_env, "DATABASE_URL": url, "BROKER_NAMESPACE": "syrules-" + uuid.uuid4().hex[:6]}
    drop_database(postgres_server, url)


@pytest.fixture(scope="module")
def rules_stack(rules_env: dict[str, str]) -> Iterator[dict[str, str]]:
    web, url = start_web(rules_env, free_port(), name="web-rules")
    procs: list[Proc] = [
        web,
        start_worker(rules_env, name="worker-system-rules"),
        start_ticker(rules_env, name="ticker-rules"),
    ]
    rules = start_rules(rules_env)
    yield {"url": url, **rules_env}
    for proc in [*procs, rules]:
        proc.stop()


@pytest.fixture()
def api(rules_stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rules_stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15) as c:
        yield c


def run_job(api: httpx.Client, env: dict[str, str], command: dict) -> dict:
    job_id = api.post("/v1/commands", json=command).json()["id"]
    return wait_for(
        lambda: (row := job_row(env["DATABASE_URL"], job_id)) and row["status"] in ("succeeded", "dead") and row,
        60,
        0.1,
        f"job {job_id} to end",
    )


def test_from_values_reach_the_follow_up_and_the_chain_shows_in_the_jobs(
    api: httpx.Client, rules_stack: dict[str, str]
) -> None:
    env = rules_stack
    rule = {
        "name": "echo-to-fail",
        "when": {"type": "system.noop", "match": {"echo": "ping"}},
        "then": {"command": {"type": "system.fail", "permanent": True, "message": {"$from": "/result/echo"}}},
    }
    assert api.post("/v1/rules", json=rule).status_code == 201
    try:
        triggering = run_job(api, env, {"type": "system.noop", "echo": "ping"})
        other = run_job(api, env, {"type": "system.noop", "echo": "pong"})
        broker = broker_for(env["REDIS_URL"], namespace=env["BROKER_NAMESPACE"])
        send_event(broker, event_of(triggering))
        send_event(broker, event_of(other))
        follow = wait_for(lambda: follow_ups(env["DATABASE_URL"], "echo-to-fail"), 30, 0.1, "the follow-up")
        assert len(follow) == 1
        assert follow[0]["command"]["message"] == "ping" and follow[0]["command"]["type"] == "system.fail"
        follow_id = follow[0]["id"]
        job = wait_for(lambda: (j := api.get(f"/v1/jobs/{follow_id}").json())["status"] == "dead" and j, 30, 0.1)
        assert job["caused_by"] == triggering["id"] and job["rule"] == "echo-to-fail"
        assert job["error"]["message"] == "ping"
        assert api.get(f"/v1/jobs/{triggering['id']}").json()["followed_by"] == [follow_id]
        assert api.get(f"/v1/jobs/{other['id']}").json()["followed_by"] == []
        fired = api.get("/v1/rules/echo-to-fail").json()["last_firings"]
        assert [(f["job_id"], f["follow_up_id"], f["outcome"]) for f in fired] == [
            (triggering["id"], follow_id, "submitted")
        ]
    finally:
        api.delete("/v1/rules/echo-to-fail")
