"""The schedule page in a real browser: the cron's description follows the typing, save, delete."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from bus import slots
from tests.browser import REQUIRES_BROWSER, expect, log_in, shot, watch

pytestmark = REQUIRES_BROWSER


#: what a page loads; a 422 answer to a refused form or a preview of a typo is expected, not a problem
LOADED = {"script", "stylesheet", "image", "font"}


def watch_for_problems(page: Any) -> list[str]:
    return watch(page, expected=lambda r: r.request.resource_type not in LOADED)


def test_edit_a_schedule_with_the_live_description(page: Any, client: httpx.Client) -> None:
    name = f"ui-live-{uuid.uuid4().hex[:8]}"
    spec = {"name": name, "cron": "0 3 * * *", "timezone": "Europe/Prague", "command": {"type": "system.noop"}}
    assert client.post("/v1/schedules", json=spec).status_code == 201
    problems = watch_for_problems(page)
    try:
        log_in(page)
        page.wait_for_selector("#queues")
        page.goto("/ui/schedules")
        page.click(f"a[href='/ui/schedules/{name}']")
        page.wait_for_url(f"**/ui/schedules/{name}")
        description = page.locator("#cron-preview [data-role=description]")
        expect(description).to_have_text("At 03:00, every day")
        expect(page.locator("#upcoming tbody tr")).to_have_count(5)

        # a typo: the preview names the field at once, nothing is saved
        page.fill("#cron", "61 * * * *")
        expect(page.locator("#cron-preview [data-role=error]")).to_contain_text("$.cron")
        page.fill("#cron", "*/2 * * * * *")
        expect(description).to_have_text("Every 2 seconds")
        page.fill("#cron", "15 4 * * 1-5")
        expect(description).to_have_text("At 04:15, Monday through Friday")
        expect(page.locator("#cron-preview [data-role=next] li")).to_have_count(5)
        page.fill("#timezone", "America/New_York")
        expect(page.locator("#cron-preview [data-role=next] li").first).to_contain_text("04:15:00 E")  # EST or EDT
        shot(page, "schedule-typing")

        page.click("#save")
        page.wait_for_load_state()
        expect(page.locator("#cron-saved")).to_have_text("15 4 * * 1-5")
        expect(page.locator("#description")).to_contain_text("At 04:15, Monday through Friday")
        new_york = slots.zone("America/New_York")
        fire_times = [
            dt.datetime.fromisoformat(t)
            for t in page.locator("#upcoming tbody tr").evaluate_all("rows => rows.map(r => r.getAttribute('data-at'))")
        ]
        assert len(fire_times) == 5
        assert all(t.astimezone(new_york).strftime("%H:%M") == "04:15" for t in fire_times)
        assert all(t.astimezone(new_york).weekday() < 5 for t in fire_times)
        view = client.get(f"/v1/schedules/{name}").json()
        assert (view["cron"], view["timezone"]) == ("15 4 * * 1-5", "America/New_York")
        shot(page, "schedule")

        # delete asks first: dismissed, nothing happens; accepted, the schedule is gone
        page.once("dialog", lambda d: d.dismiss())
        page.click("#delete")
        assert client.get(f"/v1/schedules/{name}").status_code == 200
        page.once("dialog", lambda d: d.accept())
        page.click("#delete")
        page.wait_for_url("**/ui/schedules")
        assert page.locator(f"tr[data-schedule='{name}']").count() == 0
        assert client.get(f"/v1/schedules/{name}").status_code == 404
        assert problems == [], "\n".join(problems)
    finally:
        client.delete(f"/v1/schedules/{name}")


def test_create_a_schedule_from_the_list(page: Any, client: httpx.Client) -> None:
    name = f"ui-form-{uuid.uuid4().hex[:8]}"
    problems = watch_for_problems(page)
    try:
        log_in(page)
        page.wait_for_selector("#queues")
        page.goto("/ui/schedules")
        page.click("#new summary")
        page.fill("#new-name", name)
        page.fill("#new-cron", "0 6 * * *")
        expect(page.locator("#new-cron-preview [data-role=description]")).to_have_text("At 06:00, every day")
        page.fill("#new-timezone", "Asia/Tokyo")
        page.select_option("#new-type", "system.sleep")
        page.fill("#new-body", '{"seconds": -1}')
        page.click("#create")
        expect(page.locator("#error-path")).to_have_text("$.command.seconds")
        assert page.input_value("#new-name") == name  # what was typed is kept
        page.fill("#new-body", '{"seconds": 1}')
        page.click("#create")
        page.wait_for_url(f"**/ui/schedules/{name}")
        expect(page.locator("#command-type")).to_have_text("system.sleep")
        expect(page.locator("#upcoming tbody tr").first).to_contain_text("06:00:00 JST")
        assert client.get(f"/v1/schedules/{name}").json()["command"]["seconds"] == 1
        assert problems == [], "\n".join(problems)
    finally:
        client.delete(f"/v1/schedules/{name}")
