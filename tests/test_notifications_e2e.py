"""A rule with ``then.notify`` end to end: a real job ends, the ticker relays its event, the rule
processor fires and the system pool sends the message, to a local webhook receiver and to a local
SMTP server over STARTTLS. On a database and broker namespace of this module's own: rules fire on
every job of their type."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devservers import free_port
from tests.receivers import Certificates, MailServer, WebhookReceiver, certificates
from tests.support import (
    API_KEY,
    Proc,
    drop_database,
    fresh_database,
    start_rules,
    start_ticker,
    start_web,
    start_worker,
    stop_all,
    wait_for,
    wait_status,
)

TOKEN = "secret-token-e2e"
PASSWORD = "e2e-mail-pw#1"
FINAL = {"succeeded", "dead", "cancelled"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates(tmp_path_factory.mktemp("notify-e2e-tls"))


@pytest.fixture(scope="module")
def e2e(postgres_server: str, base_env: dict[str, str], certs: Certificates) -> Iterator[dict[str, Any]]:
    url = fresh_database(postgres_server, "notify")
    smtp_port = free_port()
    env = base_env | {
        "DATABASE_URL": url,
        "BROKER_NAMESPACE": "synotifye2e-" + uuid.uuid4().hex[:6],
        "SMTP_URL": f"smtp://bot:{quote(PASSWORD, safe='')}@127.0.0.1:{smtp_port}",
        "SMTP_FROM": "switchyard@example.com",
        "SMTP_CA_FILE": str(certs.ca_file),
    }
    web, base = start_web(env, free_port(), name="web-notify-e2e")
    procs: list[Proc] = [
        web,
        start_worker(env, name="worker-system-notify-e2e"),
        start_rules(env, name="worker-rules-notify-e2e"),
        start_ticker(env, name="ticker-notify-e2e"),
    ]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15) as api:
        yield {"env": env, "api": api, "smtp_port": smtp_port, "procs": procs}
    stop_all(procs)
    drop_database(postgres_server, url)


def fired(e2e: dict[str, Any], failing: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A system.fail job that ends dead, and the notification its rule made of it, once it ended."""
    api: httpx.Client = e2e["api"]
    database_url = e2e["env"]["DATABASE_URL"]
    accepted = api.post("/v1/commands", json={"type": "system.fail", "permanent": True, "message": failing})
    job = wait_status(database_url, accepted.json()["id"], FINAL, 60)
    assert job["status"] == "dead"
    followed = wait_for(lambda: api.get(f"/v1/jobs/{job['id']}").json()["followed_by"], 60, 0.2, "the notification")
    [notify_id] = [f["id"] if isinstance(f, dict) else f for f in followed]
    return job, wait_status(database_url, notify_id, FINAL, 60)


def test_a_rule_notifies_slack_when_a_job_ends(e2e: dict[str, Any]) -> None:
    api: httpx.Client = e2e["api"]
    receiver = WebhookReceiver(path=f"/hooks/{TOKEN}")
    rule = {
        "name": "tell-slack",
        "when": {"type": "system.fail", "status": ["dead"]},
        "then": {"notify": {"slack": receiver.url, "text": "$type is $status: $error"}},
    }
    try:
        created = api.post("/v1/rules", json=rule)
        assert created.status_code == 201, created.text
        assert TOKEN not in created.text and TOKEN not in api.get("/v1/rules/tell-slack").text
        job, notification = fired(e2e, "slack boom")
        assert notification["status"] == "succeeded", notification["error"]
        assert notification["type"] == "system.notify"
        assert notification["options"]["caused_by"] == job["id"] and notification["options"]["rule"] == "tell-slack"
        [request] = receiver.requests
        assert request.json()["text"] == "system.fail is dead: PermanentError: slack boom"
        assert request.json()["job_id"] == job["id"]
        assert notification["result"]["destination"] == "127.0.0.1"
        assert TOKEN not in json.dumps(api.get(f"/v1/jobs/{notification['id']}").json())
    finally:
        api.delete("/v1/rules/tell-slack")
        receiver.close()


def test_a_rule_notifies_by_email_when_a_job_ends(e2e: dict[str, Any], certs: Certificates) -> None:
    api: httpx.Client = e2e["api"]
    server = MailServer(
        tls="starttls", certificate=certs.server, user="bot", password=PASSWORD, port=e2e["smtp_port"]
    ).start()
    rule = {
        "name": "tell-ops",
        "when": {"type": "system.fail", "status": ["dead"]},
        "then": {"notify": {"email": ["ops@example.com"], "subject": "[ops] $type $status"}},
    }
    try:
        assert api.post("/v1/rules", json=rule).status_code == 201
        job, notification = fired(e2e, "mail boom")
        assert notification["status"] == "succeeded", notification["error"]
        [mail] = server.received
        assert mail.message["Subject"] == "[ops] system.fail dead" and mail.recipients == ["ops@example.com"]
        body = mail.message.get_payload(decode=True).decode()
        assert job["id"] in body and "PermanentError: mail boom" in body
        logs = "".join(p.output() for p in e2e["procs"])
        assert PASSWORD not in logs and quote(PASSWORD, safe="") not in logs
    finally:
        api.delete("/v1/rules/tell-ops")
        server.stop()
