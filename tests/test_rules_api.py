"""/v1/rules and the rule.* bus commands: create, read, change, delete; every refusal a 422 naming the
field (or a 409) that changes nothing; the webhook never shown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import wait_for


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rule(name: str, when_type: str = "system.noop", command: dict | None = None, **more: object) -> dict:
    then = {"command": command or {"type": "system.sleep", "seconds": 0}}
    return {"name": name, "when": {"type": when_type}, "then": then, **more}


@pytest.fixture()
def made(client: httpx.Client) -> Iterator[list[str]]:
    """Names of the rules a test creates: deleted after it (the session's database is shared)."""
    names: list[str] = []
    yield names
    for name in names:
        client.delete(f"/v1/rules/{name}")


def create(client: httpx.Client, made: list[str], body: dict) -> httpx.Response:
    answer = client.post("/v1/rules", json=body)
    if answer.status_code == 201:
        made.append(body["name"])
    return answer


def test_a_rule_is_created_read_listed_changed_and_deleted(client: httpx.Client, made: list[str]) -> None:
    name = unique("crud")
    body = rule(name)
    body["when"] = {"type": "pipelines.*", "status": ["succeeded", "dead"], "match": {"/per_series/0/flagged": True}}
    created = create(client, made, body)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["name"] == name and view["enabled"] is True and view["source"] == "api"
    assert view["when"]["match"] == {"/per_series/0/flagged": True}
    assert view["then"]["command"]["type"] == "system.sleep" and view["last_firings"] == []

    again = client.post("/v1/rules", json={**body, "enabled": False})
    assert again.status_code == 409 and again.json()["detail"]["rule"] == name
    assert client.get(f"/v1/rules/{name}").json()["enabled"] is True  # the refused one changed nothing

    paused = client.patch(f"/v1/rules/{name}", json={"enabled": False})
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    assert paused.json()["when"] == view["when"]  # the fields not given stay as they were
    changed = client.patch(f"/v1/rules/{name}", json={"then": {"command": {"type": "system.noop", "echo": "x"}}})
    assert changed.status_code == 200 and changed.json()["then"]["command"] == {"type": "system.noop", "echo": "x"}

    others = [unique("crud") for _ in range(3)]
    for other in others:
        assert create(client, made, rule(other)).status_code == 201
    names = sorted([name, *others])
    first = client.get("/v1/rules", params={"limit": 2, "after": names[0][:-1]}).json()
    assert len(first["items"]) == 2 and first["next_after"] == first["items"][-1]["name"]
    seen = [r["name"] for r in first["items"]]
    rest = client.get("/v1/rules", params={"limit": 500, "after": first["next_after"]}).json()
    seen += [r["name"] for r in rest["items"]]
    assert [n for n in seen if n in names] == names and rest["next_after"] is None

    assert client.delete(f"/v1/rules/{name}").status_code == 204
    assert client.delete(f"/v1/rules/{name}").status_code == 404
    assert client.get(f"/v1/rules/{name}").status_code == 404
    assert client.patch(f"/v1/rules/{name}", json={"enabled": True}).status_code == 404


def test_every_rule_route_needs_the_key(stack: dict[str, str]) -> None:
    with httpx.Client(base_url=stack["url"], timeout=10) as anonymous:
        for method, path in (
            ("GET", "/v1/rules"),
            ("POST", "/v1/rules"),
            ("GET", "/v1/rules/x"),
            ("DELETE", "/v1/rules/x"),
        ):
            assert anonymous.request(method, path).status_code == 401, (method, path)
        wrong = anonymous.get("/v1/rules", headers={"Authorization": "Bearer not-the-key-at-all-xxxxxxxx"})
        assert wrong.status_code == 403


FROM = "$from"
BAD = [
    ({"when": {"type": "System.noop"}}, "$.when.type", "regex"),
    ({"when": {"type": "nothing.*"}}, "$.when.type", "matches no command type"),
    ({"when": {"type": "system.notify"}}, "$.when.type", "triggers no rule"),
    ({"when": {"type": "system.noop", "status": ["finished"]}}, "$.when.status[0]", "Invalid enum value"),
    ({"when": {"type": "system.noop", "match": {"/a~2": 1}}}, '$.when.match["/a~2"]', "JSON Pointer"),
    ({"then": {"command": {"type": "system.sleep"}}}, "$.then.command", "missing required field `seconds`"),
    (
        {"then": {"command": {"type": "system.sleep", "seconds": {FROM: "/result/s"}, "steps": 0}}},
        "$.then.command.steps",
        ">= 1",
    ),
    (
        {"then": {"command": {"type": "system.sleep", "seconds": {FROM: "result/s"}}}},
        '$.then.command.seconds["$from"]',
        "starts with '/'",
    ),
    (
        {"then": {"command": {"type": "system.sleep", "seconds": {FROM: "/rezult/s"}}}},
        "$.then.command.seconds",
        "starts with one of",
    ),
    (
        {"then": {"command": {"type": "system.sleep", "seconds": {FROM: "/result", "x": 1}}}},
        "$.then.command.seconds",
        "one key",
    ),
    ({"then": {"command": {"type": "schedule.delete", "name": "nightly"}}}, "$.then.command.type", "control-plane"),
    ({"then": {"command": {"type": "rule.delete", "name": "x"}}}, "$.then.command.type", "control-plane"),
    (
        {"then": {"command": {"type": "system.notify", "rule": "x", "job_id": "y", "status": "dead"}}},
        "$.then.command.type",
        "control-plane",
    ),
    ({"then": {"notify": {"slack": "http://169.254.169.254/latest/meta-data"}}}, "$.then.notify.slack", "refused"),
    ({"then": {"notify": {"slack": "http://10.1.2.3/hook"}}}, "$.then.notify.slack", "refused"),
    (
        {"then": {"notify": {"slack": "https://hooks.example.com/x", "email": ["a@b.co"]}}},
        "$.then.notify.slack",
        "exactly one",
    ),
    ({"then": {"command": {"type": "system.noop"}, "notify": {"email": ["a@b.co"]}}}, "$.then.command", "exactly one"),
    ({"name": "has space"}, "$.name", "regex"),
]


@pytest.mark.parametrize(("change", "path", "fragment"), BAD)
def test_bad_rules_are_refused_naming_the_field(
    client: httpx.Client, made: list[str], change: dict, path: str, fragment: str
) -> None:
    name = "bad-rule"
    body = {**rule(name), **change}
    for key in ("when", "then"):
        if key in change:
            body[key] = change[key]
    refused = create(client, made, body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"]["path"] == path, refused.json()
    assert fragment in refused.json()["detail"]["message"]
    assert client.get(f"/v1/rules/{name}").status_code == 404


def test_a_bad_patch_changes_nothing(client: httpx.Client, made: list[str]) -> None:
    name = unique("patch")
    assert create(client, made, rule(name)).status_code == 201
    before = client.get(f"/v1/rules/{name}").json()
    refused = client.patch(f"/v1/rules/{name}", json={"then": {"command": {"type": "schedule.delete", "name": "x"}}})
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == "$.then.command.type"
    refused = client.patch(f"/v1/rules/{name}", json={"when": {"type": "no.such.type"}})
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == "$.when.type"
    refused = client.patch(f"/v1/rules/{name}", json={"enabled": "yes"})
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == "$.enabled"
    assert client.get(f"/v1/rules/{name}").json() == before


def test_placeholders_stand_for_any_value_their_field_accepts(client: httpx.Client, made: list[str]) -> None:
    command = {
        "type": "pipelines.run",
        "pipeline_id": {FROM: "/command/pipeline_id"},
        "mode": {FROM: "/result/mode"},
        "start": {FROM: "/result/window/start"},
    }
    name = unique("from")
    created = create(client, made, rule(name, when_type="pipelines.ingest", command=command))
    assert created.status_code == 201, created.text
    assert created.json()["then"]["command"]["mode"] == {FROM: "/result/mode"}  # kept as written
    forecast = {
        "type": "forecast.anomalies",
        "source": {"kind": "inline", "series": {FROM: "/result/series"}},
    }
    assert create(client, made, rule(unique("from"), when_type="pipelines.run", command=forecast)).status_code == 201


def test_the_webhook_of_a_notification_is_never_shown(client: httpx.Client, made: list[str]) -> None:
    secret = "T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
    name = unique("notify")
    body = {
        "name": name,
        "when": {"type": "*", "status": ["dead"]},
        "then": {"notify": {"slack": f"https://hooks.example.com/services/{secret}", "text": "$type $job_id died"}},
    }
    created = create(client, made, body)
    assert created.status_code == 201, created.text
    for answer in (created, client.get(f"/v1/rules/{name}"), client.get("/v1/rules", params={"limit": 500})):
        assert secret not in answer.text
    assert client.get(f"/v1/rules/{name}").json()["then"]["notify"]["slack"] == "https://hooks.example.com/…"
    emails = {**body, "name": unique("notify"), "then": {"notify": {"email": ["ops@example.com"]}}}
    assert create(client, made, emails).json()["then"]["notify"]["email"] == ["ops@example.com"]  # not secret


def test_a_cycle_of_rules_is_refused_naming_it(client: httpx.Client, made: list[str]) -> None:
    a, b = unique("cycle-a"), unique("cycle-b")
    sleep = {"type": "system.sleep", "seconds": 0}
    assert create(client, made, rule(a, "system.noop", sleep)).status_code == 201
    closing = create(client, made, rule(b, "system.sleep", {"type": "system.noop"}))
    assert closing.status_code == 422
    detail = closing.json()["detail"]
    assert detail["path"] == "$.then.command.type" and f"{b} -> {a} -> {b}" in detail["message"]

    selfish = create(client, made, rule(unique("self"), "system.sleep", sleep))
    assert selfish.status_code == 422 and "closes a cycle" in selfish.json()["detail"]["message"]
    everything = create(client, made, rule(unique("all"), "*", {"type": "system.noop"}))
    assert everything.status_code == 422 and "closes a cycle" in everything.json()["detail"]["message"]

    # written disabled it fires nothing; enabling it is refused as creating it was
    paused = create(client, made, rule(b, "system.sleep", {"type": "system.noop"}, enabled=False))
    assert paused.status_code == 201
    enabling = client.patch(f"/v1/rules/{b}", json={"enabled": True})
    assert enabling.status_code == 422 and "closes a cycle" in enabling.json()["detail"]["message"]
    assert client.get(f"/v1/rules/{b}").json()["enabled"] is False
    # a notification has no follow-up to trigger: never a cycle
    notify = {"name": unique("notify-all"), "when": {"type": "*"}, "then": {"notify": {"email": ["ops@example.com"]}}}
    assert create(client, made, notify).status_code == 201


def test_rules_are_set_and_deleted_over_the_bus_too(client: httpx.Client, made: list[str]) -> None:
    name = unique("bus")
    made.append(name)

    def run(command: dict) -> dict:
        job_id = client.post("/v1/commands", json=command).json()["id"]
        return wait_for(
            lambda: (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("succeeded", "dead") and job,
            30,
            0.2,
            command["type"],
        )

    assert run({"type": "rule.set", "rule": rule(name)})["status"] == "succeeded"
    assert client.get(f"/v1/rules/{name}").json()["then"]["command"]["type"] == "system.sleep"
    fail = {"type": "system.fail", "permanent": True}
    replaced = run({"type": "rule.set", "rule": rule(name, command=fail)})
    assert replaced["status"] == "succeeded" and replaced["result"]["created"] is False
    assert client.get(f"/v1/rules/{name}").json()["then"]["command"] == fail

    refused = run({"type": "rule.set", "rule": rule(name, command={"type": "schedule.delete", "name": "x"})})
    assert refused["status"] == "dead" and "$.then.command.type" in refused["error"]["message"]
    assert client.get(f"/v1/rules/{name}").json()["then"]["command"] == fail  # unchanged

    gone = run({"type": "rule.delete", "name": name})
    assert gone["status"] == "succeeded" and gone["result"] == {"name": name, "deleted": True}
    assert client.get(f"/v1/rules/{name}").status_code == 404


def test_two_rules_written_at_once_cannot_close_a_cycle_together(client: httpx.Client, made: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sleep = {"type": "system.sleep", "seconds": 0}
    for round_ in range(10):
        a, b = unique(f"race{round_}-a"), unique(f"race{round_}-b")
        made += [a, b]
        bodies = [rule(a, "system.noop", sleep), rule(b, "system.sleep", {"type": "system.noop"})]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda body: client.post("/v1/rules", json=body), bodies))
        assert sorted(r.status_code for r in answers) == [201, 422], [r.text for r in answers]
        for name in (a, b):
            client.delete(f"/v1/rules/{name}")
