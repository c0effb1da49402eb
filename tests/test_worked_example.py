"""The README's worked example, run as printed: rows ingested -> pipelines.run -> anomalies of the
mart through the forecast pool's SQL source -> an e-mail when a point is flagged.

Every part is a real process (web, the pipelines, forecast and system pools, the rule processor,
the ticker with its event relay) on a database and broker namespace of this module's own; the mail
provider is a real SMTP server on loopback. The history is the demo's (``make up`` loads the same
sales), so the README's day with a run on apples is the point to flag."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from devservers import demo, free_port
from tests import readme_examples
from tests.receivers import MailServer
from tests.rules_support import query
from tests.support import (
    API_KEY,
    ROOT,
    Proc,
    drop_database,
    fresh_database,
    start_rules,
    start_ticker,
    start_web,
    start_worker,
    stop_all,
    wait_for,
)

SECTION = "A worked example: rows in, an e-mail out"


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(postgres_server: str, base_env: dict[str, str], mail: MailServer) -> Iterator[dict[str, str]]:
    url = fresh_database(postgres_server, prefix="worked")
    env = {
        **base_env,
        "DATABASE_URL": url,
        "BROKER_NAMESPACE": "syworked-" + uuid.uuid4().hex[:6],
        "SMTP_URL": f"smtp://127.0.0.1:{mail.port}",
        "SMTP_FROM": "switchyard@example.com",
        "FORECAST_SQL_SCHEMAS": "mart",
    }
    web, web_url = start_web(env, free_port(), name="web-worked")
    procs: list[Proc] = [web, start_ticker(env, name="ticker-worked"), start_rules(env, name="rules-worked")]
    procs += [start_worker(env, pool, name=f"worker-{pool}-worked") for pool in ("system", "pipelines", "forecast")]
    yield {**env, "url": web_url}
    stop_all(procs)
    drop_database(postgres_server, url)


def run(api: httpx.Client, command: dict) -> dict:
    job_id = api.post("/v1/commands", json=command).json()["id"]
    return wait_for(
        lambda: (job := api.get(f"/v1/jobs/{job_id}").json())["status"] in ("succeeded", "dead") and job,
        120,
        0.2,
        f"{command['type']} to end",
    )


def test_rows_in_an_email_out_as_the_readme_prints_it(stack: dict[str, str], mail: MailServer) -> None:
    examples = [e for e in readme_examples.examples(ROOT / "README.md") if e.section == SECTION]
    assert [e.method for e in examples] == ["POST", "POST", "POST", "PUT", "GET"], examples
    with httpx.Client(base_url=stack["url"], headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as api:
        # the catalog's tables and the demo's history (make up loads the same), before any rule exists
        assert run(api, {"type": "pipelines.setup", "initial_data": True})["status"] == "succeeded"
        history = run(api, {"type": "pipelines.ingest", "table": "retail.sales", "rows": demo.sales_rows()})
        assert history["status"] == "succeeded"

        ingest_id = ""
        for example in examples:
            url = example.url.replace("http://127.0.0.1:8000", stack["url"])
            url = readme_examples.PLACEHOLDER.sub(ingest_id, url)
            answer = api.request(
                example.method, url, content=example.body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code < 400, f"{example.line}\n-> {answer.status_code} {answer.text[:500]}"
            if example.method == "PUT":
                ingest_id = answer.json()["id"]
                done = f"/v1/jobs/{ingest_id}"
                wait_for(lambda d=done: api.get(d).json()["status"] == "succeeded", 60, 0.2, "the ingest job")
            if example.printed:
                assert not readme_examples.shape_problems(example.printed, answer.json()), answer.text

        # the chain runs by itself and ends in one e-mail about the anomalies job
        got = wait_for(lambda: mail.received, 240, 0.5, "the anomaly e-mail")
        ingest = api.get(f"/v1/jobs/{ingest_id}").json()
        [run_id] = ingest["followed_by"]
        pipeline_run = api.get(f"/v1/jobs/{run_id}").json()
        assert pipeline_run["type"] == "pipelines.run" and pipeline_run["status"] == "succeeded"
        assert (pipeline_run["caused_by"], pipeline_run["rule"]) == (ingest_id, "sales-arrived")
        [anomalies_id] = wait_for(lambda: api.get(f"/v1/jobs/{run_id}").json()["followed_by"], 30, 0.2, "scoring")
        anomalies = api.get(f"/v1/jobs/{anomalies_id}").json()
        assert anomalies["type"] == "forecast.anomalies" and anomalies["rule"] == "score-category-sales"
        assert anomalies["result"]["flagged"] is True
        fruit = {s["series_id"]: s for s in anomalies["result"]["per_series"]}["fruit"]
        assert "2024-06-01T00:00:00Z" in fruit["flagged"]
        [notify_id] = wait_for(lambda: api.get(f"/v1/jobs/{anomalies_id}").json()["followed_by"], 30, 0.2, "notify")
        notify = wait_for(
            lambda: (job := api.get(f"/v1/jobs/{notify_id}").json())["status"] == "succeeded" and job, 60, 0.2, "sent"
        )
        assert notify["type"] == "system.notify" and notify["rule"] == "anomaly-found"
        assert notify["command"]["job_id"] == anomalies_id

        assert len(got) == 1, [(m.message["Subject"], m.message.get_payload(decode=True)[:300]) for m in got]
        [message] = got
        assert message.recipients == ["data-team@example.com"]
        assert message.message["Subject"] == "Anomaly in category sales"
        assert anomalies_id in message.message.get_payload(decode=True).decode()

        # exactly once: one firing per rule, and no second e-mail once every event is handled
        settled = "SELECT count(*) AS n FROM job_events WHERE published_at IS NULL"
        wait_for(lambda: query(stack["DATABASE_URL"], settled)[0]["n"] == 0, 60, 0.2, "every event sent")
        firings = query(stack["DATABASE_URL"], "SELECT rule, count(*) AS n FROM rule_firings GROUP BY rule")
        assert {r["rule"]: r["n"] for r in firings} == {
            "sales-arrived": 1,
            "score-category-sales": 1,
            "anomaly-found": 1,
        }
        assert len(mail.received) == 1
