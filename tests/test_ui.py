"""The operator dashboard over HTTP, against the running stack: login, pages, CSRF, actions, submit."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import redis
from psycopg.types.json import Jsonb

from contracts import convert
from tests.support import API_KEY, wait_for, wait_status

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def browser(stack: dict[str, str]) -> httpx.Client:
    # no API key header: the dashboard must work from its cookie alone
    return httpx.Client(base_url=stack["url"], timeout=10)


def sign_in(ui: httpx.Client, key: str = API_KEY, next_: str = "/ui") -> httpx.Response:
    form = ui.get("/ui/login")
    assert form.status_code == 200
    return ui.post("/ui/login", data={"csrf": csrf_of(form.text), "api_key": key, "next": next_})


def test_a_wrong_key_is_refused_with_no_session(stack: dict[str, str]) -> None:
    with browser(stack) as c:
        refused = sign_in(c, key="not-a-key")
        assert refused.status_code == 403
        assert "not valid" in refused.text
        assert "sy_session" not in refused.headers.get("set-cookie", "")
        assert c.get("/ui").status_code == 303
        empty = sign_in(c, key="")
        assert empty.status_code == 401


def test_the_right_key_opens_a_session_that_is_not_the_key(stack: dict[str, str]) -> None:
    with browser(stack) as c:
        accepted = sign_in(c, next_="/ui/jobs")
        assert accepted.status_code == 303 and accepted.headers["location"] == "/ui/jobs"
        cookie = next(v for k, v in accepted.headers.multi_items() if k == "set-cookie" and "sy_session=" in v)
        flags = cookie.lower()
        assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
        assert "secure" not in flags  # plain http here; https requests get Secure
        assert API_KEY not in cookie
        assert c.get("/ui/jobs").status_code == 200


def test_repeated_wrong_keys_are_refused_for_a_while_but_the_right_key_signs_in(stack: dict[str, str]) -> None:
    from ingress.ui.login import MAX_FAILURES

    failures = redis.Redis.from_url(stack["REDIS_URL"])
    failures.delete("switchyard:ui:login-failures:127.0.0.1")
    try:
        with browser(stack) as c:
            for _ in range(MAX_FAILURES):
                assert sign_in(c, key="guess").status_code == 403
            # the next wrong key is turned away from this address until the window ends
            refused = sign_in(c, key="guess-again")
            assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 600
            assert "Too many failed sign-ins" in refused.text and "sy_session=" not in refused.headers.get(
                "set-cookie", ""
            )
        # an operator behind the same address (a NAT, a proxy) is not locked out by someone guessing
        with browser(stack) as operator:
            accepted = sign_in(operator)
            assert accepted.status_code == 303, accepted.text
            assert operator.get("/ui/jobs").status_code == 200
        with browser(stack) as c:  # and a sign-in erases nobody's count: the guesser is still refused
            assert sign_in(c, key="guess").status_code == 429
    finally:
        failures.delete("switchyard:ui:login-failures:127.0.0.1")


def test_next_never_leaves_the_dashboard(stack: dict[str, str]) -> None:
    for target in ("https://evil.example/", "//evil.example/ui", "/v1/jobs", "/ui/../v1/jobs"):
        with browser(stack) as c:
            assert sign_in(c, next_=target).headers["location"] == "/ui", target


def test_a_page_without_a_session_redirects_to_login(stack: dict[str, str]) -> None:
    with browser(stack) as c:
        paths = ("/ui", "/ui/jobs?status=dead", "/ui/submit", "/ui/schedules", "/ui/jobs/x", "/ui/pipelines")
        models = (f"/ui/models/{uuid.uuid4()}", f"/ui/models/{uuid.uuid4()}/data", "/ui/models")
        for path in (*paths, *models, "/ui/forecasts/x", "/ui/forecasts/x/data"):
            response = c.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/ui/login?next=%2Fui")
        forged = c.post("/ui/submit", data={"type": "system.noop", "body": "{}", "csrf": "x"})
        assert forged.status_code == 303
        c.cookies.set("sy_session", "forged.token", path="/ui")
        assert c.get("/ui").status_code == 303


def test_the_api_still_needs_its_key_and_health_stays_public(stack: dict[str, str], ui: httpx.Client) -> None:
    # a dashboard session opens no API route
    assert ui.get("/v1/jobs").status_code == 401
    assert ui.post("/v1/commands", json={"type": "system.noop"}).status_code == 401
    assert ui.get("/healthz").status_code == 200
    assert ui.get("/readyz").status_code == 200


def test_pages_render(ui: httpx.Client) -> None:
    overview = ui.get("/ui")
    assert overview.status_code == 200
    assert 'data-queue="system"' in overview.text and 'data-dependency="postgres"' in overview.text
    assert "postgres: ok" in overview.text and "broker: ok" in overview.text
    assert "default-src 'self'" in overview.headers["content-security-policy"]
    for path in ("/ui/jobs", "/ui/jobs?status=succeeded&type=system.noop", "/ui/submit", "/ui/schedules"):
        assert ui.get(path).status_code == 200, path
    bad = ui.get("/ui/jobs?status=nonsense")
    assert bad.status_code == 422 and "status: one of" in bad.text
    assert ui.get("/ui/jobs?cursor=garbage").status_code == 422
    assert ui.get("/ui/jobs/" + uuid.uuid4().hex).status_code == 404
    assert ui.get("/ui/static/ui.js").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(ui: httpx.Client, client: httpx.Client) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.fail", "permanent": True}).json()["id"]
    wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "dead", 30, 0.1, "dead")
    for data in ({}, {"csrf": "wrong"}):
        assert ui.post(f"/ui/jobs/{job_id}/retry", data=data).status_code == 403
        assert ui.post("/ui/submit", data={**data, "type": "system.noop", "body": "{}"}).status_code == 403
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "dead"
    # the login form has its own (double-submit) token
    with httpx.Client(base_url=str(ui.base_url), timeout=10) as fresh:
        assert fresh.post("/ui/login", data={"api_key": API_KEY}).status_code == 403


def test_cancel_a_queued_job_from_its_page(ui: httpx.Client, client: httpx.Client, stack: dict[str, str]) -> None:
    # the test stack runs no metrics worker: this job stays queued
    command = {"type": "metrics.compute", "model_id": str(uuid.uuid4())}
    job_id = client.post("/v1/commands", json=command).json()["id"]
    page = ui.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200 and 'id="cancel"' in page.text and "data-refresh" in page.text
    done = ui.post(f"/ui/jobs/{job_id}/cancel", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == f"/ui/jobs/{job_id}"
    assert wait_status(stack["DATABASE_URL"], job_id, {"cancelled"})["status"] == "cancelled"
    again = ui.post(f"/ui/jobs/{job_id}/cancel", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 409 and "only a queued, running or retrying (failed) job can be cancelled" in again.text


def test_cancel_a_running_job_from_its_page(ui: httpx.Client, client: httpx.Client, stack: dict[str, str]) -> None:
    job_id = client.post("/v1/commands", json={"type": "system.sleep", "seconds": 60, "steps": 120}).json()["id"]
    wait_status(stack["DATABASE_URL"], job_id, {"running"})
    page = ui.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200 and 'id="cancel"' in page.text
    done = ui.post(f"/ui/jobs/{job_id}/cancel", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == f"/ui/jobs/{job_id}"
    # until its next progress report the job runs, and its page says the cancel is on its way
    ended = wait_status(stack["DATABASE_URL"], job_id, {"cancelled", "succeeded"}, timeout=10)
    assert ended["status"] == "cancelled"
    after = ui.get(f"/ui/jobs/{job_id}")
    assert 'id="cancel"' not in after.text and "JobCancelled" in after.text


def test_retry_a_dead_job_from_its_page(ui: httpx.Client, client: httpx.Client, stack: dict[str, str]) -> None:
    # MAX_RETRIES=2 in the test stack: attempts 1-3 fail, the job is dead; attempt 4 succeeds
    job_id = client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 4}).json()["id"]
    wait_status(stack["DATABASE_URL"], job_id, {"dead"})
    page = ui.get(f"/ui/jobs/{job_id}")
    assert 'id="retry"' in page.text and "RequestedFailure" in page.text
    assert ui.post(f"/ui/jobs/{job_id}/retry", data={"csrf": csrf_of(page.text)}).status_code == 303
    done = wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})
    assert done["attempts"] == 4 and done["result"] == {"succeeded_on_attempt": 4}
    final = ui.get(f"/ui/jobs/{job_id}").text
    assert "succeeded_on_attempt" in final and "data-refresh" not in final


def test_submit_a_command_from_the_form(ui: httpx.Client, stack: dict[str, str]) -> None:
    token = csrf_of(ui.get("/ui/submit").text)
    sent = ui.post("/ui/submit", data={"csrf": token, "type": "system.noop", "body": '{"echo": "from the form"}'})
    assert sent.status_code == 303
    job_id = sent.headers["location"].rsplit("/", 1)[1]
    assert wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})["result"] == {"echo": "from the form"}
    assert "from the form" in ui.get(f"/ui/jobs/{job_id}").text
    listed = ui.get("/ui/jobs?type=system.noop&status=succeeded").text
    assert job_id in listed


def sleep_jobs(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE type = 'system.sleep'").fetchone()
    return row[0] if row else 0


def test_a_bad_command_shows_the_field_path(ui: httpx.Client, stack: dict[str, str]) -> None:
    token = csrf_of(ui.get("/ui/submit").text)
    before = sleep_jobs(stack["DATABASE_URL"])
    cases = [
        ({"type": "system.sleep", "body": '{"seconds": -1}'}, 422, "$.seconds"),
        ({"type": "system.sleep", "body": "{not json"}, 400, "not JSON"),
        ({"type": "system.sleep", "body": "[1]"}, 422, "a JSON object"),
        ({"type": "no.such", "body": "{}"}, 422, "$.type"),
    ]
    for data, status, shown in cases:
        answer = ui.post("/ui/submit", data={"csrf": token, **data})
        assert answer.status_code == status, data
        assert shown in answer.text, data
        assert data["body"] in answer.text or data["body"].replace('"', "&#34;") in answer.text
    assert sleep_jobs(stack["DATABASE_URL"]) == before  # nothing was recorded


def test_jobs_are_paginated_with_the_cursor(ui: httpx.Client, client: httpx.Client) -> None:
    ids = [client.post("/v1/commands", json={"type": "system.noop", "echo": str(i)}).json()["id"] for i in range(55)]
    first = ui.get("/ui/jobs?type=system.noop").text
    assert ids[-1] in first and 'id="next"' in first
    link = re.search(r'id="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    second = ui.get(link)
    assert second.status_code == 200 and ids[-1] not in second.text


def test_schedules_list_and_enable_disable(ui: httpx.Client, client: httpx.Client) -> None:
    name = f"ui-{uuid.uuid4().hex[:8]}"
    spec = {"name": name, "cron": "0 3 * * *", "timezone": "Europe/Prague", "command": {"type": "system.noop"}}
    assert client.post("/v1/schedules", json=spec).status_code == 201
    page = ui.get("/ui/schedules").text
    assert name in page and "Europe/Prague" in page and "03:00:00+01:00" in page
    disabled = ui.post(f"/ui/schedules/{name}/disable", data={"csrf": csrf_of(page)})
    assert disabled.status_code == 303
    assert client.get(f"/v1/schedules/{name}").json()["enabled"] is False
    assert ui.post(f"/ui/schedules/{name}/enable", data={"csrf": csrf_of(page)}).status_code == 303
    assert client.get(f"/v1/schedules/{name}").json()["enabled"] is True
    assert ui.post("/ui/schedules/nope-none/enable", data={"csrf": csrf_of(page)}).status_code == 404
    client.delete(f"/v1/schedules/{name}")


def test_logout_ends_the_session(stack: dict[str, str]) -> None:
    with browser(stack) as c:
        sign_in(c)
        token = c.cookies.get("sy_session")
        page = c.get("/ui")
        out = c.post("/ui/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert c.get("/ui").status_code == 303
        # the old cookie, replayed, no longer opens a page
        c.cookies.set("sy_session", token, path="/ui")
        assert c.get("/ui").status_code == 303


# ---- models, forecasts, pipelines: data made through the API, results written as the workers write them


def seed_forecast(client: httpx.Client, database_url: str) -> str:
    """A forecast job (submitted over the API) with the rows its worker would write, then succeeded."""
    series = [
        {"series_id": "sales", "start": "2026-01-01", "freq": "D", "values": [float(10 + i % 7) for i in range(28)]}
    ]
    command = {"type": "forecast.forecast", "source": {"kind": "inline", "series": series}, "prediction_length": 7}
    sent = client.post("/v1/commands", json=command)
    assert sent.status_code == 202, sent.text
    job_id = sent.json()["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO forecast_series (job_id, series_id, kind, backend, model, points, mase, smape)"
            " VALUES (%s, 'sales', 'forecast', 'local', 'AutoETS', 28, 0.8, 5.5)",
            (job_id,),
        )
        for day in range(7):
            quantiles = {"0.025": 8.0 + day * 0.1, "0.5": 12.0, "0.975": 16.0 - day * 0.1}
            conn.execute(
                "INSERT INTO forecasts (job_id, series_id, ts, mean, quantiles)"
                " VALUES (%s, 'sales', timestamptz '2026-01-29 00:00Z' + make_interval(days => %s), 12.0, %s)",
                (job_id, day, Jsonb(quantiles)),
            )
        conn.execute(
            "UPDATE jobs SET status = 'succeeded', finished_at = now(), result = '{}' WHERE id = %s", (job_id,)
        )
    return job_id


def seed_model(client: httpx.Client, database_url: str) -> str:
    """Three computations of a model's metrics and a schedule of it with an alert below 0.8."""
    model_id = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i, accuracy in enumerate((0.91, 0.85, 0.78)):
            conn.execute(
                "INSERT INTO metric_history (job_id, model_id, n, rows, metrics, computed_at)"
                " VALUES (%s, %s, 100, 100, %s, now() - make_interval(hours => %s))",
                (f"ui-{uuid.uuid4().hex}", model_id, Jsonb({"accuracy": accuracy, "f1": accuracy - 0.05}), 3 - i),
            )
    spec = {
        "name": f"ui-alert-{model_id[:8]}",
        "cron": "0 * * * *",
        "command": {"type": "metrics.compute", "model_id": model_id},
        "alert": {"metric": "accuracy", "below": 0.8, "webhook_url": "https://hooks.example.com/secret-token"},
    }
    created = client.post("/v1/schedules", json=spec)
    assert created.status_code == 201, created.text
    return model_id


def test_a_model_page_charts_its_metrics_with_the_alert_threshold(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str]
) -> None:
    model_id = seed_model(client, stack["DATABASE_URL"])
    page = ui.get(f"/ui/models/{model_id}")
    assert page.status_code == 200
    assert 'data-chart="model"' in page.text and "/ui/static/vendor/uPlot.iife.min.js" in page.text
    assert "accuracy</strong> is below 0.8" in page.text
    assert "secret-token" not in page.text
    data = ui.get(f"/ui/models/{model_id}/data")
    assert data.status_code == 200 and "secret-token" not in data.text
    body = data.json()
    assert len(body["x"]) == 3 and body["x"] == sorted(body["x"])
    accuracy = next(s for s in body["series"] if s["label"] == "accuracy")
    assert accuracy["values"] == [0.91, 0.85, 0.78]
    assert [(t["metric"], t["direction"], t["threshold"]) for t in body["thresholds"]] == [("accuracy", "below", 0.8)]
    listed = ui.get("/ui/models").text
    row = listed[listed.index(f'<tr data-model="{model_id}">') :]
    assert 'accuracy <span class="num">0.7800</span>' in row[: row.index("</tr>")]  # the latest computation's
    assert ui.get("/ui/models/not-a-uuid").status_code == 404
    assert ui.get("/ui/models/not-a-uuid/data").status_code == 404
    # a model with no history and no alert: an empty page, not an error
    empty = ui.get(f"/ui/models/{uuid.uuid4()}")
    assert empty.status_code == 200 and 'id="no-history"' in empty.text
    assert ui.get("/ui/static/vendor/uPlot.iife.min.js").status_code == 200
    client.delete(f"/v1/schedules/ui-alert-{model_id[:8]}")


def test_a_metrics_job_links_to_its_model(ui: httpx.Client, client: httpx.Client) -> None:
    model_id = str(uuid.uuid4())
    job_id = client.post("/v1/commands", json={"type": "metrics.compute", "model_id": model_id}).json()["id"]
    assert f'href="/ui/models/{model_id}"' in ui.get(f"/ui/jobs/{job_id}").text


def test_a_forecast_page_has_history_mean_and_band(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str]
) -> None:
    job_id = seed_forecast(client, stack["DATABASE_URL"])
    assert f'href="/ui/forecasts/{job_id}"' in ui.get(f"/ui/jobs/{job_id}").text
    page = ui.get(f"/ui/forecasts/{job_id}")
    assert page.status_code == 200 and 'data-chart="forecast"' in page.text
    body = ui.get(f"/ui/forecasts/{job_id}/data?limit=12").json()
    [chart] = body["charts"]
    assert chart["series_id"] == "sales" and chart["model"] == "AutoETS"
    assert len(chart["history"]) == 28 and len(chart["forecast"]) == 7
    # the history ends one day before the first forecast point
    assert chart["forecast"][0]["t"] - chart["history"][-1][0] == 86400
    assert chart["forecast"][0]["quantiles"] == {"0.025": 8.0, "0.5": 12.0, "0.975": 16.0}
    assert ui.get(f"/ui/forecasts/{job_id}/data?limit=0").status_code == 422
    noop = client.post("/v1/commands", json={"type": "system.noop"}).json()["id"]
    assert ui.get(f"/ui/forecasts/{noop}").status_code == 404
    assert ui.get(f"/ui/forecasts/{noop}/data").status_code == 404


def test_the_pipelines_page_shows_the_catalog(ui: httpx.Client, stack: dict[str, str]) -> None:
    # a run as the pipelines worker records it (the test stack runs no pipelines worker)
    run_id = f"ui-{uuid.uuid4().hex}"
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pipeline_runs (id, pipeline_id, mode, run_date, status, catalog_version, started_at,"
            " finished_at) VALUES (%s, 'daily_sales', 'incremental', '2026-11-20', 'succeeded', 'v',"
            " now() - interval '90 seconds', now())",
            (run_id,),
        )
        for node, rows, ms in (("daily_sales", 1234, 850), ("category_sales", 56, 120)):
            conn.execute(
                "INSERT INTO pipeline_node_results (run_id, node_id, target, status, rows, duration_ms)"
                " VALUES (%s, %s, %s, 'succeeded', %s, %s)",
                (run_id, node, f"mart.{node}", rows, ms),
            )
    page = ui.get("/ui/pipelines")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-pipeline="daily_sales"' in html and 'data-pipeline="top_articles"' in html
    # nodes in dependency order, the dependent one indented
    assert html.index('data-node="daily_sales"') < html.index('data-node="category_sales"')
    assert 'class="depth-1" data-node="category_sales"' in html
    run = html[html.index(f'data-run="{run_id}"') :]
    assert "90.0 s" in run[:400] and ">1234<" in run and ">850<" in run and ">56<" in run
    assert 'data-table="retail.sales"' in html and 'data-table="mart.daily_sales"' in html
    # the drawn DAG: a box per node, an edge per dependency
    drawn = html[html.index('aria-label="the DAG of daily_sales"') :]
    drawn = drawn[: drawn.index("</svg>")]
    assert 'data-dag-node="daily_sales"' in drawn and 'data-dag-node="category_sales"' in drawn
    assert drawn.count('class="edge"') >= 1


def submit_links(html: str) -> list[dict[str, Any]]:
    """The commands the page's links to a filled-in Submit form carry (a link naming a type alone opens
    an empty form, and is not one of them)."""
    commands = []
    for href in re.findall(r'href="/ui/submit\?([^"]+)"', html):
        query = parse_qs(href.replace("&amp;", "&"))
        if "command" in query:
            commands.append({**json.loads(query["command"][0]), "type": query["type"][0]})
    return commands


def test_the_pipelines_page_links_to_valid_commands(ui: httpx.Client, client: httpx.Client) -> None:
    commands = submit_links(ui.get("/ui/pipelines").text)
    node = {"type": "pipelines.run", "pipeline_id": "daily_sales", "nodes": ["category_sales"]}
    assert node in commands
    assert {"type": "pipelines.setup"} in commands
    for command in commands:
        # each is a command the API accepts as it is (validated only: the job is cancelled at once)
        accepted = client.post("/v1/commands", json=command)
        assert accepted.status_code == 202, (command, accepted.text)
        client.post(f"/v1/jobs/{accepted.json()['id']}/cancel")


def test_the_forecasts_page_lists_forecast_jobs_with_what_they_made(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str]
) -> None:
    job_id = seed_forecast(client, stack["DATABASE_URL"])
    html = ui.get("/ui/forecasts").text
    row = html[html.index(f'<tr data-job="{job_id}">') :]
    row = row[: row.index("</tr>")]
    assert ">1<" in row and "AutoETS" in row and "local" in row and f'href="/ui/forecasts/{job_id}"' in row
    # a job of another queue is not listed
    other = client.post("/v1/commands", json={"type": "system.noop"}).json()["id"]
    assert other not in ui.get("/ui/forecasts").text
    commands = submit_links(html)
    assert {c["type"] for c in commands} == {"forecast.forecast", "forecast.anomalies"}
    for command in commands:
        convert(command)  # the examples offered are valid as they stand
    assert ui.get("/ui/forecasts?cursor=nonsense").status_code == 422


def test_dead_jobs_of_a_filter_are_retried_from_the_list(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str]
) -> None:
    from tests.test_jobs_e2e import dead_jobs

    since, ids = dead_jobs(client, 2)
    listing = ui.get("/ui/jobs", params={"status": "dead", "type": "system.fail", "since": since})
    assert 'id="retry-dead"' in listing.text
    assert 'id="retry-dead"' not in ui.get("/ui/jobs", params={"status": "queued"}).text  # dead lists only
    form = {"csrf": csrf_of(listing.text), "type": "system.fail", "since": since, "queue": "", "until": ""}
    assert ui.post("/ui/jobs/retry", data={**form, "csrf": "forged"}).status_code == 403
    assert all(client.get(f"/v1/jobs/{i}").json()["status"] == "dead" for i in ids)  # the forged form did nothing
    answer = ui.post("/ui/jobs/retry", data=form)
    assert answer.status_code == 303 and "retried=2" in answer.headers["location"]
    for job_id in ids:
        assert wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})["attempts"] == 4
    bad = ui.post("/ui/jobs/retry", data={**form, "since": "whenever"})
    assert bad.status_code == 422 and "since" in bad.text


def test_a_schedule_with_an_alert_is_edited_whole_without_its_secret(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str]
) -> None:
    model_id = seed_model(client, stack["DATABASE_URL"])
    name = f"ui-alert-{model_id[:8]}"
    html = ui.get(f"/ui/schedules/{name}").text
    assert "secret-token" not in html
    (command,) = [c for c in submit_links(html) if c["type"] == "schedule.set"]
    spec = command["schedule"]
    assert (spec["name"], spec["cron"], spec["command"]["model_id"]) == (name, "0 * * * *", model_id)
    assert spec["alert"] == {"metric": "accuracy", "below": 0.8}  # the webhook URL is entered again
    spec["alert"]["webhook_url"] = "https://hooks.example.com/new-token"
    convert(command)  # with it, the command is valid as it stands
    client.delete(f"/v1/schedules/{name}")


def test_the_models_list_shows_a_regressor_and_a_model_without_a_headline(
    ui: httpx.Client, stack: dict[str, str]
) -> None:
    # a regressor's metrics have no accuracy, and a computation may hold none of the usual ones:
    # the list shows what there is and never fails
    regressor, odd = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(stack["DATABASE_URL"], autocommit=True) as conn:
        for model_id, metrics in ((regressor, {"mae": 1.5, "r2": 0.9}), (odd, {"confusion_matrix": [[1]]})):
            conn.execute(
                "INSERT INTO metric_history (job_id, model_id, n, rows, metrics) VALUES (%s, %s, 10, 10, %s)",
                (f"ui-{uuid.uuid4().hex}", model_id, Jsonb(metrics)),
            )
    listed = ui.get("/ui/models")
    assert listed.status_code == 200
    row = listed.text[listed.text.index(f'<tr data-model="{regressor}">') :]
    assert 'r2 <span class="num">0.9000</span>' in row[: row.index("</tr>")]
    assert f'<tr data-model="{odd}">' in listed.text
