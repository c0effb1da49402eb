"""The schedules pages over HTTP: one schedule with its last runs, edit, create, delete, the cron preview."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from bus import slots
from ingress.ui import crontext, queries
from tests.support import wait_for
from tests.test_ui import browser, csrf_of

ROW = re.compile(r'<tr data-job="([^"]+)">')
UPCOMING = re.compile(r'<tr data-at="([^"]+)">')
WEBHOOK = "https://hooks.example.com/services/T000/B000/secret-token"


@pytest.fixture()
def made(client: httpx.Client) -> Iterator[list[str]]:
    """Names of the schedules a test made: deleted afterwards, whatever happened (the stack is shared)."""
    names: list[str] = []
    yield names
    for name in names:
        client.delete(f"/v1/schedules/{name}")


def new_name(made: list[str], prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    made.append(name)
    return name


def stored(client: httpx.Client, name: str) -> dict[str, Any]:
    """A schedule as the API shows it, less the fire times (they move with the clock)."""
    view = client.get(f"/v1/schedules/{name}").json()
    return {k: v for k, v in view.items() if not k.startswith("next_fire_times")}


def emitted_jobs(database_url: str, name: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT id, status FROM jobs WHERE options->>'schedule' = %s ORDER BY created_at DESC", (name,)
        ).fetchall()


def test_a_schedule_page_lists_the_runs_the_ticker_emitted(
    ui: httpx.Client, client: httpx.Client, stack: dict[str, str], made: list[str]
) -> None:
    name = new_name(made, "ui-runs")
    spec = {"name": name, "cron": "*/1 * * * * *", "command": {"type": "system.noop", "echo": name}}
    assert client.post("/v1/schedules", json=spec).status_code == 201
    wait_for(
        lambda: sum(j["status"] == "succeeded" for j in emitted_jobs(stack["DATABASE_URL"], name)) >= 3,
        30,
        0.2,
        "three runs of the every-second schedule",
    )
    # stopped at once: the page is read while nothing else fires
    assert client.patch(f"/v1/schedules/{name}", json={"enabled": False}).status_code == 200
    wait_for(lambda: all(j["status"] == "succeeded" for j in emitted_jobs(stack["DATABASE_URL"], name)), 30, 0.2)
    jobs = emitted_jobs(stack["DATABASE_URL"], name)

    page = ui.get(f"/ui/schedules/{name}")
    assert page.status_code == 200
    shown = ROW.findall(page.text)
    assert len(shown) == min(len(jobs), 20) and set(shown) <= {j["id"] for j in jobs}
    assert jobs[0]["id"] in shown and f'href="/ui/jobs/{shown[0]}"' in page.text
    assert page.text.count('<span class="status succeeded">succeeded</span>') == len(shown)
    assert "Every second" in page.text and f"&#34;echo&#34;: &#34;{name}&#34;" in page.text
    assert 'id="upcoming">Disabled' in page.text
    assert "/ui/static/schedule.js" in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    assert ui.get("/ui/schedules/no-such-schedule").status_code == 404


def test_the_runs_query_walks_the_partial_index(stack: dict[str, str]) -> None:
    """12,000 jobs, 1 in 6 emitted by one of 20 schedules: a schedule's newest runs are read from the
    index in order, stopping at the limit: no sequential scan of jobs, no sort of all its runs."""

    def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    # the plan for these values, and the generic one a prepared statement settles on after a few runs
    generic = queries.SCHEDULE_RUNS.replace("%(name)s", "$1").replace("%(limit)s", "$2")
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        # never committed: the seeded rows and their statistics are rolled back
        conn.execute(
            "INSERT INTO jobs (id, type, queue, status, command, options, created_at)"
            " SELECT 'explain-' || i, 'system.noop', 'system', 'succeeded', '{}',"
            "        CASE WHEN i % 6 = 0"
            "             THEN jsonb_build_object('schema_version', 1, 'schedule', 'explain-' || i % 20,"
            "                                     'scheduled_at', timestamptz '2001-01-01' + i * interval '1 minute')"
            "             ELSE jsonb_build_object('schema_version', 1) END,"
            "        timestamptz '2001-01-01' + i * interval '1 minute'"
            "   FROM generate_series(1, 12000) AS i"
        )
        conn.execute("ANALYZE jobs")
        plans = [
            conn.execute("EXPLAIN (FORMAT JSON) " + queries.SCHEDULE_RUNS, {"name": "explain-6", "limit": 20}),
            conn.execute("EXPLAIN (FORMAT JSON, GENERIC_PLAN) " + generic),
        ]
        shown = [cursor.fetchone()[0][0]["Plan"] for cursor in plans]  # type: ignore[index]
        runs = conn.execute(queries.SCHEDULE_RUNS, {"name": "explain-6", "limit": 20}).fetchall()
        conn.rollback()
    for plan in shown:
        kinds = [n["Node Type"] for n in nodes(plan)]
        assert "Seq Scan" not in kinds and "Sort" not in kinds, plan
        on_jobs = [n for n in nodes(plan) if n.get("Relation Name") == "jobs"]
        assert [(n["Node Type"], n["Index Name"]) for n in on_jobs] == [("Index Scan", "jobs_schedule_created_idx")]
    assert len(runs) == 20


def test_edit_cron_zone_and_misfire_as_the_api_patches_them(
    ui: httpx.Client, client: httpx.Client, made: list[str]
) -> None:
    name = new_name(made, "ui-edit")
    spec = {
        "name": name,
        "cron": "0 3 * * *",
        "timezone": "Europe/Prague",
        "command": {"type": "metrics.compute", "model_id": str(uuid.uuid4())},
        "alert": {"metric": "accuracy", "below": 0.8, "webhook_url": WEBHOOK},
    }
    assert client.post("/v1/schedules", json=spec).status_code == 201
    page = ui.get(f"/ui/schedules/{name}")
    assert page.status_code == 200
    assert "At 03:00, every day" in page.text
    assert "hooks.example.com/…" in page.text and "secret-token" not in page.text  # masked as the API masks it
    upcoming = [dt.datetime.fromisoformat(t) for t in UPCOMING.findall(page.text)]
    assert len(upcoming) == 5
    prague = slots.zone("Europe/Prague")
    assert all(t.astimezone(prague).strftime("%H:%M:%S") == "03:00:00" for t in upcoming)
    assert re.search(r"\d{4}-\d\d-\d\d 03:00:00 CES?T", page.text)  # shown in the zone, beside UTC
    token = csrf_of(page.text)

    edit = {"csrf": token, "cron": "30 2 * * 1-5", "timezone": "America/New_York", "policy": "catch_up"}
    saved = ui.post(f"/ui/schedules/{name}", data={**edit, "catch_up_limit": "5"})
    assert saved.status_code == 303 and saved.headers["location"] == f"/ui/schedules/{name}"
    now = stored(client, name)
    assert (now["cron"], now["timezone"], now["misfire"]) == (
        "30 2 * * 1-5",
        "America/New_York",
        {"policy": "catch_up", "catch_up_limit": 5},
    )
    assert now["alert"]["metric"] == "accuracy" and now["command"]["type"] == "metrics.compute"  # untouched
    after = ui.get(f"/ui/schedules/{name}").text
    assert "At 02:30, Monday through Friday" in after
    new_york = slots.zone("America/New_York")
    upcoming = UPCOMING.findall(after)
    assert len(upcoming) == 5
    for t in map(dt.datetime.fromisoformat, upcoming):
        local = t.astimezone(new_york)
        assert local.strftime("%H:%M") == "02:30" and local.weekday() < 5

    for bad, path in (
        ({"cron": "61 * * * *"}, "$.cron"),
        ({"cron": "* * *"}, "$.cron"),
        ({"cron": "0 0 31 2 *"}, "$.cron"),  # well-formed, never fires
        ({"timezone": "Mars/Olympus"}, "$.timezone"),
        ({"catch_up_limit": "0"}, "$.misfire.catch_up_limit"),
        ({"catch_up_limit": "many"}, "$.misfire.catch_up_limit"),
        ({"policy": "sometimes"}, "$.misfire.policy"),
    ):
        refused = ui.post(f"/ui/schedules/{name}", data={**edit, "catch_up_limit": "5", **bad})
        assert refused.status_code == 422, bad
        assert f'<code id="error-path">{path}</code>' in refused.text, refused.text
        field, typed = next(iter(bad.items()))
        if field != "policy":  # a select shows its options; the others keep what was typed
            assert f'name="{field}" value="{typed}"' in refused.text, bad
        assert stored(client, name) == now
    refused = ui.post(f"/ui/schedules/{name}", data={**edit, "cron": "61 * * * *"})
    assert 'id="cron" name="cron" value="61 * * * *"' in refused.text  # the typed value is kept in the input
    assert "not a valid cron expression" in refused.text

    assert ui.post(f"/ui/schedules/{name}", data={**edit, "csrf": "wrong"}).status_code == 403
    assert ui.post("/ui/schedules/no-such-schedule", data=edit).status_code == 404
    assert client.get(f"/v1/schedules/{name}").json()["cron"] == "30 2 * * 1-5"

    # enable and disable from the page come back to it
    back = ui.post(f"/ui/schedules/{name}/disable", data={"csrf": token, "next": f"/ui/schedules/{name}"})
    assert back.status_code == 303 and back.headers["location"] == f"/ui/schedules/{name}"
    assert client.get(f"/v1/schedules/{name}").json()["enabled"] is False
    assert 'id="upcoming">Disabled' in ui.get(f"/ui/schedules/{name}").text


def test_the_describe_endpoint_says_what_the_ticker_will_do(ui: httpx.Client, stack: dict[str, str]) -> None:
    every = ui.get("/ui/cron/describe", params={"cron": "*/2 * * * * *", "timezone": "UTC"})
    assert every.status_code == 200 and every.headers["content-type"] == "application/json"
    body = every.json()
    assert body["description"] == "Every 2 seconds" and body["notes"] == []
    instants = [dt.datetime.fromisoformat(t["at"]) for t in body["next"]]
    assert len(instants) == 5 and all(b - a == dt.timedelta(seconds=2) for a, b in itertools.pairwise(instants))

    daily = ui.get("/ui/cron/describe", params={"cron": "30 2 * * *", "timezone": "Europe/Prague"}).json()
    assert daily["description"] == "At 02:30, every day"
    assert len(daily["next"]) == 5
    assert all(t["local"].endswith(("02:30:00 CET", "02:30:00 CEST")) for t in daily["next"])
    # within a year Prague's clocks go forward and back once each, both over 02:30
    assert any("02:30 does not exist that day; it runs at 03:00" in n for n in daily["notes"])
    assert any("02:30 happens twice that day; it runs once, at the first" in n for n in daily["notes"])

    for params, path in (
        ({"cron": "61 * * * *", "timezone": "UTC"}, "$.cron"),
        ({"cron": "H * * * *"}, "$.cron"),
        ({"cron": "0 0 30 2 *"}, "$.cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "$.timezone"),
        ({"cron": "*" * 300}, "$.cron"),
    ):
        refused = ui.get("/ui/cron/describe", params=params)
        assert refused.status_code == 422 and refused.json()["path"] == path, refused.text
        assert refused.json()["error"]
    with browser(stack) as stranger:
        assert stranger.get("/ui/cron/describe", params={"cron": "* * * * *"}).status_code == 303


def test_dst_notes_agree_with_the_slots_the_ticker_computes() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    prague = slots.zone("Europe/Prague")
    notes = crontext.dst_notes("30 2 * * *", "Europe/Prague", start)
    assert notes == [
        "2026-03-29: clocks go forward from 02:00 to 03:00; 02:30 does not exist that day; it runs at 03:00.",
        "2026-10-25: clocks go back from 03:00 to 02:00; 02:30 happens twice that day; it runs once, at the first.",
    ]
    spring = slots.after("30 2 * * *", "Europe/Prague", dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC))[0]
    assert spring.astimezone(prague).strftime("%Y-%m-%d %H:%M") == "2026-03-29 03:00"
    autumn = slots.between(
        "30 2 * * *",
        "Europe/Prague",
        dt.datetime(2026, 10, 24, 12, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 12, tzinfo=dt.UTC),
        10,
    )
    assert len(autumn) == 1 and autumn[0].astimezone(prague).utcoffset() == dt.timedelta(hours=2)  # the first pass
    # a schedule that no clock change touches, and a zone without any, get no note
    assert crontext.dst_notes("0 12 * * *", "Europe/Prague", start) == []
    assert crontext.dst_notes("30 2 * * *", "UTC", start) == []
    # six fields are seconds first, whatever the library would guess
    assert crontext.describe("15 30 2 * * *") == "At 02:30:15, every day"
    assert crontext.describe("0 */5 * * * *") == "Every 5 minutes"


def test_create_a_schedule_from_the_form_and_delete_it(ui: httpx.Client, client: httpx.Client, made: list[str]) -> None:
    name = new_name(made, "ui-new")
    listing = ui.get("/ui/schedules")
    assert listing.status_code == 200 and 'id="new-form"' in listing.text
    token = csrf_of(listing.text)
    form = {
        "csrf": token,
        "name": name,
        "cron": "0 4 * * *",
        "timezone": "Asia/Tokyo",
        "type": "system.sleep",
        "body": '{"seconds": 1}',
        "policy": "fire_once",
        "catch_up_limit": "10",
    }  # no "enabled": the box is unticked
    for bad, status, path in (
        ({"body": "{not json"}, 400, "$.command"),
        ({"body": "[1]"}, 422, "$.command"),
        ({"body": '{"seconds": -1}'}, 422, "$.command.seconds"),
        ({"body": "{}"}, 422, "$.command"),
        ({"type": "schedule.delete", "body": '{"name": "x"}'}, 422, "$.command.type"),
        ({"cron": "61 * * * *"}, 422, "$.cron"),
        ({"cron": "0 0 31 2 *"}, 422, "$.cron"),
        ({"timezone": "Mars/Olympus"}, 422, "$.timezone"),
        ({"name": "has space"}, 422, "$.name"),
    ):
        refused = ui.post("/ui/schedules", data={**form, **bad})
        assert refused.status_code == status, (bad, refused.text)
        assert f'<code id="error-path">{path}</code>' in refused.text, (bad, refused.text)
        assert '<details class="new" id="new" open>' in refused.text  # the form stays open with what was typed
        assert client.get(f"/v1/schedules/{name}").status_code == 404
    kept = ui.post("/ui/schedules", data={**form, "cron": "61 * * * *"})
    assert 'value="61 * * * *"' in kept.text and "{&#34;seconds&#34;: 1}" in kept.text

    created = ui.post("/ui/schedules", data=form)
    assert created.status_code == 303 and created.headers["location"] == f"/ui/schedules/{name}"
    view = client.get(f"/v1/schedules/{name}").json()
    assert view["command"]["type"] == "system.sleep" and view["command"]["seconds"] == 1
    assert (view["cron"], view["timezone"], view["enabled"], view["misfire"]["policy"]) == (
        "0 4 * * *",
        "Asia/Tokyo",
        False,
        "fire_once",
    )
    # the same name again is refused, not replaced (the API's POST would replace it)
    again = ui.post("/ui/schedules", data={**form, "cron": "0 5 * * *"})
    assert again.status_code == 409 and '<code id="error-path">$.name</code>' in again.text
    assert client.get(f"/v1/schedules/{name}").json()["cron"] == "0 4 * * *"

    listing = ui.get("/ui/schedules").text
    assert f'href="/ui/schedules/{name}"' in listing and "At 04:00, every day" in listing

    assert ui.post(f"/ui/schedules/{name}/delete", data={"csrf": "wrong"}).status_code == 403
    assert client.get(f"/v1/schedules/{name}").status_code == 200
    page = ui.get(f"/ui/schedules/{name}").text
    assert 'data-confirm="Delete the schedule' in page
    gone = ui.post(f"/ui/schedules/{name}/delete", data={"csrf": csrf_of(page)})
    assert gone.status_code == 303 and gone.headers["location"] == "/ui/schedules"
    assert client.get(f"/v1/schedules/{name}").status_code == 404
    assert ui.post(f"/ui/schedules/{name}/delete", data={"csrf": csrf_of(page)}).status_code == 404
    assert ui.get(f"/ui/schedules/{name}").status_code == 404


def test_a_cron_that_never_fires_is_refused_by_the_api_too(client: httpx.Client, made: list[str]) -> None:
    # well-formed for the parser, but no date matches: computing its next slot would fail, so it is refused
    name = new_name(made, "ui-never")
    body = {"name": name, "cron": "0 0 31 2 *", "command": {"type": "system.noop"}}
    refused = client.post("/v1/schedules", json=body)
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == "$.cron", refused.text
    assert "never fires" in refused.json()["detail"]["message"]
    assert client.post("/v1/schedules", json={**body, "cron": "0 0 29 2 *"}).status_code == 201  # leap days do
    patched = client.patch(f"/v1/schedules/{name}", json={"cron": "0 0 30 2 *"})
    assert patched.status_code == 422 and patched.json()["detail"]["path"] == "$.cron"
