"""/v1/schedules: any command on a cron, in a time zone; validation names the field."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg
import pytest

from tests.support import wait_for


def scheduled_jobs(database_url: str, name: str) -> list[dict]:
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT id, status, options, result FROM jobs WHERE options->>'schedule' = %s ORDER BY created_at", (name,)
        ).fetchall()


def test_a_schedule_emits_its_command_and_can_be_changed_and_deleted(
    client: httpx.Client, stack: dict[str, str]
) -> None:
    name = f"ping-{uuid.uuid4().hex[:8]}"
    body = {
        "name": name,
        "cron": "* * * * * *",
        "timezone": "Europe/Prague",
        "command": {"type": "system.noop", "echo": name},
    }
    created = client.post("/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["misfire"] == {"policy": "skip", "catch_up_limit": 10} and view["enabled"] is True
    assert len(view["next_fire_times"]) == 5 and view["next_fire_times_local"][0].endswith(("+01:00", "+02:00"))

    done = wait_for(
        lambda: [j for j in scheduled_jobs(stack["DATABASE_URL"], name) if j["status"] == "succeeded"],
        30,
        0.2,
        "a scheduled job to succeed",
    )
    assert done[0]["result"] == {"echo": name}
    assert done[0]["options"]["scheduled_at"]

    replaced = client.post("/v1/schedules", json={**body, "cron": "0 0 1 1 *"})
    assert replaced.status_code == 200  # replaced, not created
    first = replaced.json()
    assert first["next_fire_times_local"][0].endswith("-01-01T00:00:00+01:00")  # midnight in Prague
    assert first["next_fire_times"][0].endswith("-12-31T23:00:00+00:00")  # stored and emitted in UTC
    paused = client.patch(f"/v1/schedules/{name}", json={"enabled": False, "cron": "* * * * * *"})
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    assert paused.json()["next_fire_times"] == []
    settled = len(scheduled_jobs(stack["DATABASE_URL"], name))
    time.sleep(3)
    assert len(scheduled_jobs(stack["DATABASE_URL"], name)) <= settled + 1  # at most one slot already in flight

    listed = client.get("/v1/schedules", params={"limit": 500}).json()["items"]
    assert name in {s["name"] for s in listed}
    assert client.delete(f"/v1/schedules/{name}").status_code == 204
    assert client.delete(f"/v1/schedules/{name}").status_code == 404
    assert client.get(f"/v1/schedules/{name}").status_code == 404
    assert client.patch(f"/v1/schedules/{name}", json={"enabled": True}).status_code == 404


BAD = [
    ({"cron": "61 * * * *"}, "$.cron", "not a valid cron"),
    ({"cron": "* * *"}, "$.cron", "5 fields"),
    ({"cron": "H * * * *"}, "$.cron", "hashed"),
    ({"timezone": "Mars/Olympus"}, "$.timezone", "unknown IANA time zone"),
    ({"name": "has space"}, "$.name", "regex"),
    ({"misfire": {"policy": "sometimes"}}, "$.misfire.policy", "Invalid enum value"),
    ({"misfire": {"policy": "catch_up", "catch_up_limit": 0}}, "$.misfire.catch_up_limit", ">= 1"),
    ({"command": {"type": "system.sleep"}}, "$.command", "missing required field `seconds`"),
    ({"command": {"type": "schedule.delete", "name": "x"}}, "$.command.type", "Invalid value"),
    (
        {"alert": {"metric": "accuracy", "below": 0.8, "webhook_url": "http://h/x"}},
        "$.alert",
        "an alert needs a metrics.compute command",
    ),
    (
        {
            "command": {"type": "metrics.compute", "model_id": str(uuid.uuid4())},
            "alert": {"metric": "accuracy", "webhook_url": "http://h/x"},
        },
        "$.alert.below",
        "exactly one of",
    ),
    (
        {"alert": {"metric": "accuracy", "below": 1, "webhook_url": "file:///etc/passwd"}},
        "$.alert.webhook_url",
        "regex",
    ),
]


@pytest.mark.parametrize(("change", "path", "fragment"), BAD)
def test_bad_schedules_are_refused_with_the_field(
    client: httpx.Client, stack: dict[str, str], change: dict, path: str, fragment: str
) -> None:
    body = {"name": "bad-one", "cron": "* * * * *", "command": {"type": "system.noop"}, **change}
    refused = client.post("/v1/schedules", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"]["path"] == path
    assert fragment in refused.json()["detail"]["message"]
    assert client.get("/v1/schedules/bad-one").status_code == 404


def test_a_bad_patch_changes_nothing(client: httpx.Client) -> None:
    name = f"patch-{uuid.uuid4().hex[:8]}"
    client.post("/v1/schedules", json={"name": name, "cron": "0 0 1 1 *", "command": {"type": "system.noop"}})
    refused = client.patch(f"/v1/schedules/{name}", json={"cron": "not cron at all"})
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == "$.cron"
    assert client.get(f"/v1/schedules/{name}").json()["cron"] == "0 0 1 1 *"
    client.delete(f"/v1/schedules/{name}")


def test_schedules_can_be_set_over_the_bus_too(client: httpx.Client, stack: dict[str, str]) -> None:
    name = f"bus-{uuid.uuid4().hex[:8]}"
    command = {
        "type": "schedule.set",
        "schedule": {"name": name, "cron": "0 3 * * *", "command": {"type": "system.noop"}},
    }
    job_id = client.post("/v1/commands", json=command).json()["id"]
    wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded", 30, 0.2, "schedule.set")
    assert client.get(f"/v1/schedules/{name}").json()["cron"] == "0 3 * * *"
    gone = client.post("/v1/commands", json={"type": "schedule.delete", "name": name}).json()["id"]
    wait_for(lambda: client.get(f"/v1/jobs/{gone}").json()["status"] == "succeeded", 30, 0.2, "schedule.delete")
    assert client.get(f"/v1/schedules/{name}").status_code == 404
