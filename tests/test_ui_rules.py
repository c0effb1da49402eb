"""The Rules page over HTTP (create with the API's checks, enable, disable, delete, firings, no
webhook shown) and a job's chain on its page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import httpx
import pytest
from markupsafe import escape

from bus.broker_adapter import enqueue
from contracts.publish import broker_for
from tests.support import wait_status
from tests.test_ui import csrf_of

SECRET = "T000/B000/secret-token-of-the-webhook"


@pytest.fixture()
def made(client: httpx.Client) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        client.delete(f"/v1/rules/{name}")


def test_a_rule_is_created_from_the_form_with_the_apis_checks(
    ui: httpx.Client, client: httpx.Client, made: list[str]
) -> None:
    name = f"ui-rule-{uuid.uuid4().hex[:8]}"
    made.append(name)
    listing = ui.get("/ui/rules")
    assert listing.status_code == 200 and 'id="new-form"' in listing.text
    form = {
        "csrf": csrf_of(listing.text),
        "name": name,
        "type": "system.fail",
        "status-dead": "on",
        "match": '{"/kind": "disk"}',
        "then": '{"command": {"type": "system.noop", "echo": {"$from": "/error/message"}}}',
        "enabled": "on",
    }
    for bad, status, path in (
        ({"type": "no.such.*"}, 422, "$.when.type"),
        ({"status-dead": ""}, 422, "$.when.status"),
        ({"match": "{not json"}, 400, "$.when.match"),
        ({"match": '{"/a~9": 1}'}, 422, '$.when.match["/a~9"]'),
        ({"then": "{not json"}, 400, "$.then"),
        ({"then": '{"command": {"type": "schedule.delete", "name": "x"}}'}, 422, "$.then.command.type"),
        ({"then": '{"command": {"type": "system.sleep", "seconds": -1}}'}, 422, "$.then.command.seconds"),
        (
            {"then": '{"command": {"type": "system.noop", "echo": {"$from": "nowhere"}}}'},
            422,
            '$.then.command.echo["$from"]',
        ),
        (
            {"then": '{"command": {"type": "system.sleep", "seconds": 0}}', "type": "system.sleep"},
            422,
            "$.then.command.type",
        ),
        ({"name": "has space"}, 422, "$.name"),
    ):
        refused = ui.post("/ui/rules", data={k: v for k, v in {**form, **bad}.items() if v})
        assert refused.status_code == status, (bad, refused.text[-2000:])
        assert f'<code id="error-path">{escape(path)}</code>' in refused.text, (bad, refused.text[-2000:])
        assert '<details class="new" id="new" open>' in refused.text
        assert client.get(f"/v1/rules/{name}").status_code == 404

    created = ui.post("/ui/rules", data=form)
    assert created.status_code == 303 and created.headers["location"] == f"/ui/rules#rule-{name}"
    view = client.get(f"/v1/rules/{name}").json()
    assert view["when"] == {"type": "system.fail", "status": ["dead"], "match": {"/kind": "disk"}}
    assert view["then"]["command"]["echo"] == {"$from": "/error/message"}
    again = ui.post("/ui/rules", data=form)
    assert again.status_code == 409 and '<code id="error-path">$.name</code>' in again.text

    page = ui.get("/ui/rules").text
    assert f'id="rule-{name}"' in page and "none yet" in page
    assert ui.post(f"/ui/rules/{name}/disable", data={"csrf": "wrong"}).status_code == 403
    assert ui.post(f"/ui/rules/{name}/disable", data={"csrf": csrf_of(page)}).status_code == 303
    assert client.get(f"/v1/rules/{name}").json()["enabled"] is False
    assert 'data-role="disabled"' in ui.get("/ui/rules").text
    assert ui.post(f"/ui/rules/{name}/enable", data={"csrf": csrf_of(page)}).status_code == 303
    assert client.get(f"/v1/rules/{name}").json()["enabled"] is True
    assert ui.post(f"/ui/rules/{name}/delete", data={"csrf": csrf_of(page)}).status_code == 303
    assert client.get(f"/v1/rules/{name}").status_code == 404
    assert ui.post(f"/ui/rules/{name}/delete", data={"csrf": csrf_of(page)}).status_code == 404


def test_enabling_a_rule_that_closes_a_cycle_is_refused_and_no_webhook_is_shown(
    ui: httpx.Client, client: httpx.Client, made: list[str]
) -> None:
    a, b, c = (f"ui-{x}-{uuid.uuid4().hex[:6]}" for x in "abc")
    made += [a, b, c]
    sleep = {"command": {"type": "system.sleep", "seconds": 0}}
    assert client.post("/v1/rules", json={"name": a, "when": {"type": "system.noop"}, "then": sleep}).status_code == 201
    back = {"name": b, "when": {"type": "system.sleep"}, "then": {"command": {"type": "system.noop"}}, "enabled": False}
    assert client.post("/v1/rules", json=back).status_code == 201
    hook = {"slack": f"https://hooks.example.com/services/{SECRET}"}
    assert (
        client.post("/v1/rules", json={"name": c, "when": {"type": "*"}, "then": {"notify": hook}}).status_code == 201
    )
    page = ui.get("/ui/rules").text
    assert SECRET not in page and "https://hooks.example.com/…" in page
    refused = ui.post(f"/ui/rules/{b}/enable", data={"csrf": csrf_of(page)})
    assert refused.status_code == 422 and "closes a cycle" in refused.text
    assert client.get(f"/v1/rules/{b}").json()["enabled"] is False


def test_a_jobs_page_shows_its_chain(ui: httpx.Client, client: httpx.Client, stack: dict[str, str]) -> None:
    first = client.post("/v1/commands", json={"type": "system.noop", "echo": "cause"}).json()["id"]
    wait_status(stack["DATABASE_URL"], first, {"succeeded"})
    # a follow-up published straight onto the bus keeps its origin (workers/lifecycle.py)
    follow = str(uuid.uuid4())
    options = {"schema_version": 1, "caused_by": first, "rule": "some-rule", "chain_depth": 1}
    message = dramatiq.Message(
        queue_name="system",
        actor_name="system.noop",
        args=({"type": "system.noop", "echo": "effect"},),
        kwargs={},
        options=options,
        message_id=follow,
        message_timestamp=dramatiq.common.current_millis(),
    )
    enqueue(broker_for(stack["REDIS_URL"], namespace=stack["BROKER_NAMESPACE"]), message)
    row = wait_status(stack["DATABASE_URL"], follow, {"succeeded"})
    assert {k: row["options"][k] for k in ("caused_by", "rule", "chain_depth")} == {
        "caused_by": first,
        "rule": "some-rule",
        "chain_depth": 1,
    }
    job = client.get(f"/v1/jobs/{follow}").json()
    assert (job["caused_by"], job["rule"], job["followed_by"]) == (first, "some-rule", [])
    assert client.get(f"/v1/jobs/{first}").json()["followed_by"] == [follow]
    effect = ui.get(f"/ui/jobs/{follow}").text
    assert f'<dd id="caused-by"><a href="/ui/jobs/{first}">' in effect and 'id="caused-by-rule"' in effect
    cause = ui.get(f"/ui/jobs/{first}").text
    assert 'id="followed-by"' in cause and f'href="/ui/jobs/{follow}"' in cause
