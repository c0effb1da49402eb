"""The dashboard in a real browser: log in, submit and watch a job, retry a dead one, open the charts."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser import REQUIRES_BROWSER, TIMEOUT_MS, expect, log_in, shot, watch
from tests.support import API_KEY, wait_status
from tests.test_ui import seed_forecast, seed_model

pytestmark = REQUIRES_BROWSER


def test_log_in_submit_and_watch_it_succeed(page: Any, stack: dict[str, str]) -> None:
    log_in(page, "wrong-key")
    assert page.locator("#error").inner_text() == "That API key is not valid."
    shot(page, "login-refused")
    page.fill("#api_key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#queues")
    assert page.locator("[data-dependency=postgres]").inner_text() == "postgres: ok"
    shot(page, "overview")

    page.click("text=Submit")
    page.select_option("#type", "system.sleep")
    page.fill("#body", '{"seconds": -1}')
    page.click("#submit")
    expect(page.locator("#error-path")).to_have_text("$.seconds")
    shot(page, "submit-invalid")
    page.fill("#body", '{"seconds": 2, "steps": 4}')
    page.click("#submit")
    page.wait_for_url("**/ui/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    # the page refreshes itself: the status goes to succeeded without a reload
    page.wait_for_selector("#progress")
    shot(page, "job-running")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=TIMEOUT_MS)
    assert wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})["status"] == "succeeded"
    assert page.locator("#progress").get_attribute("value") == "100.0"
    shot(page, "job-succeeded")

    page.click("text=Jobs")
    page.select_option("select[name=type]", "system.sleep")
    page.click("text=Filter")
    assert page.locator(f"tr[data-job='{job_id}']").count() == 1
    shot(page, "jobs")


def test_retry_a_dead_job(page: Any, client: httpx.Client, stack: dict[str, str]) -> None:
    # MAX_RETRIES=2 in the test stack: attempts 1-3 fail and the job is dead; the retried attempt succeeds
    job_id = client.post("/v1/commands", json={"type": "system.fail", "succeed_on_attempt": 4}).json()["id"]
    wait_status(stack["DATABASE_URL"], job_id, {"dead"})
    log_in(page)
    page.goto(f"/ui/jobs/{job_id}")
    assert page.locator("#status").inner_text() == "dead"
    assert "RequestedFailure" in page.locator("#job-error").inner_text()
    shot(page, "job-dead")
    page.click("#retry")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=TIMEOUT_MS)
    assert "succeeded_on_attempt" in page.locator("#result").inner_text()
    assert page.locator("#retry").count() == 0
    shot(page, "job-retried")


def test_open_a_forecast_chart_and_a_model_chart(page: Any, client: httpx.Client, stack: dict[str, str]) -> None:
    # the page names its icon, so the browser does not probe /favicon.ico: no failed load at all
    problems = watch(page)
    job_id = seed_forecast(client, stack["DATABASE_URL"])
    log_in(page)
    page.click("nav >> text=Forecasts")
    page.click(f"tr[data-job='{job_id}'] >> text=chart")
    chart = page.locator("[data-series='sales'] canvas")
    expect(chart).to_be_visible()
    assert "history" in page.locator("[data-series='sales']").inner_text()
    shot(page, "forecast")
    model_id = seed_model(client, stack["DATABASE_URL"])
    page.goto(f"/ui/models/{model_id}")
    expect(page.locator("#model-chart canvas")).to_be_visible()
    assert "accuracy below 0.8" in page.locator("#model-chart").inner_text()
    shot(page, "model")
    assert problems == [], "\n".join(problems)
    client.delete(f"/v1/schedules/ui-alert-{model_id[:8]}")


def test_sign_out(page: Any) -> None:
    log_in(page)
    page.wait_for_selector("#queues")
    page.click("text=Sign out")
    page.wait_for_url("**/ui/login")
    page.goto("/ui/schedules")
    assert "/ui/login" in page.url


def test_the_pipelines_page_draws_each_dag(page: Any) -> None:
    problems = watch(page)
    log_in(page)
    page.click("nav >> text=Pipelines")
    drawing = page.locator("svg[aria-label='the DAG of daily_sales']")
    expect(drawing).to_be_visible()
    assert drawing.locator("[data-dag-node]").count() >= 2
    shot(page, "pipelines")
    assert problems == [], "\n".join(problems)
