"""Rule notifications (``system.notify``) from a real system pool worker: a Slack-compatible webhook
to a local HTTP receiver, e-mail to a local SMTP server over STARTTLS with a password and a private
certificate authority. The message and the job's record; a failing receiver retried with backoff
then delivered; a 4xx, a refused destination and a refused recipient dead at once; a worker killed
mid-delivery; a redelivered message of a delivered notification; and the secrets (the webhook's
token, the SMTP password) in no job record, no API answer and no log line."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import dramatiq
import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from bus import rule_store
from bus.jobstore import to_job
from bus.submission import message_for
from contracts import publish, system
from contracts.publish import broker_for
from contracts.rules import Notification, RuleSpec, RuleThen, RuleWhen
from devservers import free_port
from tests.receivers import IMPLICIT_TLS_AUTH, Certificates, MailHandler, MailServer, WebhookReceiver, certificates
from tests.support import Proc, job_row, start_ticker, start_worker, stop_all, wait_for, wait_status

pytestmark = pytest.mark.filterwarnings(IMPLICIT_TLS_AUTH)

TOKEN = "secret-token-xyz"
PASSWORD = "mail-pw-7Kq#secret"
FINAL = {"succeeded", "dead", "cancelled"}


@dataclass
class Pool:
    """A system pool worker (and a ticker) on a broker namespace of this module's, configured for mail."""

    env: dict[str, str]
    smtp_port: int
    certs: Certificates
    procs: list[Proc] = field(default_factory=list)
    worker: Proc | None = None

    @property
    def broker(self) -> dramatiq.Broker:
        return broker_for(self.env.get("BROKER_URL") or self.env["REDIS_URL"], namespace=self.env["BROKER_NAMESPACE"])

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def start_worker(self) -> Proc:
        self.worker = start_worker(self.env, name=f"worker-notify-{len(self.procs)}", threads=2)
        self.procs.append(self.worker)
        return self.worker

    def logs(self) -> str:
        return "".join(p.output() for p in self.procs)

    def mail_server(self, **kwargs: Any) -> MailServer:
        options: dict[str, Any] = {
            "tls": "starttls",
            "certificate": self.certs.server,
            "user": "bot",
            "password": PASSWORD,
        }
        return MailServer(port=self.smtp_port, **(options | kwargs)).start()


def notify_env(base_env: dict[str, str], certs: Certificates, smtp_port: int, **extra: str) -> dict[str, str]:
    return (
        base_env
        | {
            "BROKER_NAMESPACE": "synotify-" + uuid.uuid4().hex[:6],
            "SMTP_URL": f"smtp://bot:{quote(PASSWORD, safe='')}@127.0.0.1:{smtp_port}",
            "SMTP_FROM": "switchyard@example.com",
            "SMTP_CA_FILE": str(certs.ca_file),
            "SMTP_TIMEOUT_S": "5",
            # room for a receiver to come back: 8 retries, 0.3 s doubling to 2 s
            "MAX_RETRIES": "8",
            "MIN_BACKOFF_MS": "300",
            "MAX_BACKOFF_MS": "2000",
            # a killed worker's messages are back within seconds
            "HEARTBEAT_TIMEOUT_MS": "2000",
            "LEASE_S": "6",
        }
        | extra
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates(tmp_path_factory.mktemp("notify-tls"))


@pytest.fixture(scope="module")
def pool(base_env: dict[str, str], certs: Certificates) -> Iterator[Pool]:
    port = free_port()
    running = Pool(env=notify_env(base_env, certs, port), smtp_port=port, certs=certs)
    running.start_worker()
    running.procs.append(start_ticker(running.env, name="ticker-notify"))
    yield running
    stop_all(running.procs)


def add_rule(database_url: str, notification: Notification, name: str | None = None) -> str:
    name = name or f"notify-{uuid.uuid4().hex[:8]}"
    # a type no job has: this module submits system.notify itself, and a rule processor running on the
    # session's database must find nothing here to fire on
    spec = RuleSpec(name=name, when=RuleWhen(type="tests.never_fired"), then=RuleThen(notify=notification))
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rule_store.upsert(conn, spec)
    return name


def run(pool: Pool, command: system.Noop | system.Fail) -> dict[str, Any]:
    """A job that ended, to notify about."""
    job_id = publish(command, broker=pool.broker)
    return wait_status(pool.database_url, job_id, FINAL, 60)


def notify(pool: Pool, rule: str, job: dict[str, Any]) -> str:
    return publish(system.Notify(rule=rule, job_id=job["id"], status=job["status"]), broker=pool.broker)


def ended(pool: Pool, job_id: str, timeout: float = 90) -> dict[str, Any]:
    return wait_status(pool.database_url, job_id, FINAL, timeout)


def test_a_slack_notification_carries_the_text_and_the_jobs_fields(pool: Pool) -> None:
    receiver = WebhookReceiver()
    try:
        rule = add_rule(
            pool.database_url, Notification(slack=receiver.url, text="$type ended $status on $job_id: $result")
        )
        job = run(pool, system.Noop(echo="<!channel> & co"))
        notify_id = notify(pool, rule, job)
        done = ended(pool, notify_id)
        assert done["status"] == "succeeded", done["error"]
        [request] = receiver.requests
        payload = request.json()
        # the job's values are escaped for Slack (no mention from a result); the rule's text is not
        assert payload["text"] == f'system.noop ended succeeded on {job["id"]}: {{"echo":"&lt;!channel&gt; &amp; co"}}'
        assert {k: payload[k] for k in ("rule", "job_id", "type", "status", "attempts", "notification_id")} == {
            "rule": rule,
            "job_id": job["id"],
            "type": "system.noop",
            "status": "succeeded",
            "attempts": 1,
            "notification_id": notify_id,
        }
        assert payload["result"] == {"echo": "<!channel> & co"} and payload["error"] is None
        assert request.headers["Idempotency-Key"] == notify_id
        assert request.headers["Content-Type"] == "application/json"
        assert request.path == f"/hooks/{TOKEN}"
        record = done["result"]
        assert {k: record[k] for k in ("channel", "destination", "attempts", "rule", "job_id", "answered")} == {
            "channel": "slack",
            "destination": "127.0.0.1",
            "attempts": 1,
            "rule": rule,
            "job_id": job["id"],
            "answered": 200,
        }
        assert dt.datetime.fromisoformat(record["delivered_at"]) <= dt.datetime.now(dt.UTC)

        plain = add_rule(pool.database_url, Notification(slack=receiver.url))
        assert ended(pool, notify(pool, plain, job))["status"] == "succeeded"
        assert receiver.requests[-1].json()["text"] == f"system.noop succeeded: job {job['id']} (rule {plain})"
    finally:
        receiver.close()


def test_a_failing_receiver_is_retried_with_backoff_then_delivered(pool: Pool) -> None:
    receiver = WebhookReceiver(statuses=[500, 503, 429])
    try:
        rule = add_rule(pool.database_url, Notification(slack=receiver.url))
        job = run(pool, system.Noop())
        done = ended(pool, notify(pool, rule, job))
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 4 and done["result"]["attempts"] == 4
        assert len(receiver.requests) == 4
        assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1  # one notification, 4 tries
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "webhook answered 404; not retried"),
        (f"http://169.254.169.254/hooks/{TOKEN}", "link-local address"),
        (f"http://10.0.0.1/hooks/{TOKEN}", "private or reserved address"),
    ],
)
def test_a_4xx_or_a_refused_destination_is_dead_without_retries(pool: Pool, url: str | None, reason: str) -> None:
    receiver = WebhookReceiver(statuses=[404])
    try:
        rule = add_rule(pool.database_url, Notification(slack=url or receiver.url))
        job = run(pool, system.Noop())
        done = ended(pool, notify(pool, rule, job))
        assert done["status"] == "dead" and done["attempts"] == 1
        assert reason in done["error"]["message"]
        assert len(receiver.requests) == (0 if url else 1)
    finally:
        receiver.close()


def test_a_rule_that_is_gone_ends_the_notification_dead_naming_it(pool: Pool) -> None:
    job = run(pool, system.Noop())
    done = ended(pool, notify(pool, "no-such-rule", job))
    assert done["status"] == "dead" and done["attempts"] == 1
    assert "rule 'no-such-rule' does not exist" in done["error"]["message"]


def test_an_email_notification_over_starttls_with_a_password(pool: Pool) -> None:
    server = pool.mail_server()
    try:
        rule = add_rule(
            pool.database_url,
            Notification(email=["ops@example.com", "data@example.com"], subject="Switchyard: $type $status"),
        )
        job = run(pool, system.Fail(message="disk full", permanent=True))
        assert job["status"] == "dead"
        notify_id = notify(pool, rule, job)
        done = ended(pool, notify_id)
        assert done["status"] == "succeeded", done["error"]
        [mail] = server.received
        assert server.logins == ["ok"]
        assert mail.sender == "switchyard@example.com"
        assert mail.recipients == ["ops@example.com", "data@example.com"]
        assert mail.message["Subject"] == "Switchyard: system.fail dead"
        assert mail.message["Message-ID"] == f"<{notify_id}@example.com>"
        body = mail.message.get_payload(decode=True).decode().replace("\r\n", "\n")
        assert body.startswith(f"system.fail dead: job {job['id']} (rule {rule})\n")
        assert f"Job:      {job['id']}" in body and "Error:    PermanentError: disk full" in body
        assert "http" not in body  # a summary without links
        record = done["result"]
        assert record["channel"] == "email" and record["attempts"] == 1
        assert record["recipients"] == ["ops@example.com", "data@example.com"]
        assert record["subject"] == "Switchyard: system.fail dead"

        default = add_rule(pool.database_url, Notification(email=["ops@example.com"]))
        assert ended(pool, notify(pool, default, job))["status"] == "succeeded"
        assert server.received[-1].message["Subject"] == f"[switchyard] system.fail dead: {job['id']}"
    finally:
        server.stop()


def test_a_mail_server_down_then_deferring_then_up_is_retried_until_delivered(pool: Pool) -> None:
    rule = add_rule(pool.database_url, Notification(email=["ops@example.com"]))
    job = run(pool, system.Noop())
    notify_id = notify(pool, rule, job)  # nothing listens on the SMTP port yet
    failed = wait_status(pool.database_url, notify_id, {"failed", *FINAL}, 60)
    assert failed["status"] == "failed" and "could not be reached" in failed["error"]["message"]
    server = pool.mail_server(handler=MailHandler(defer_first=1))  # up, and answers 451 once
    try:
        done = ended(pool, notify_id)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] >= 3 and server.handler.deferred == 1
        assert len(server.received) == 1
    finally:
        server.stop()


def test_a_refused_recipient_is_dead_without_retries(pool: Pool) -> None:
    server = pool.mail_server(handler=MailHandler(refused={"nobody@example.com"}))
    try:
        rule = add_rule(pool.database_url, Notification(email=["nobody@example.com"]))
        done = ended(pool, notify(pool, rule, run(pool, system.Noop())))
        assert done["status"] == "dead" and done["attempts"] == 1
        assert "nobody@example.com: 550" in done["error"]["message"]
        assert server.received == []
    finally:
        server.stop()


def test_a_worker_killed_mid_delivery_delivers_again_and_a_redelivered_message_sends_nothing(pool: Pool) -> None:
    receiver = WebhookReceiver()
    receiver.hold = threading.Event()
    try:
        rule = add_rule(pool.database_url, Notification(slack=receiver.url))
        job = run(pool, system.Noop())
        notify_id = notify(pool, rule, job)
        wait_for(lambda: receiver.requests, 60, 0.05, "the webhook to be called")
        assert pool.worker is not None
        pool.worker.kill()  # SIGKILL while the receiver holds the request
        pool.worker.popen.wait(10)
        receiver.hold.set()
        receiver.hold = None
        pool.start_worker()
        done = ended(pool, notify_id, 120)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 2 and done["result"]["attempts"] == 2
        # at least once: the receiver may see it twice, always under one Idempotency-Key
        assert len(receiver.requests) == 2
        assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {notify_id}

        row = job_row(pool.database_url, notify_id)
        assert row is not None
        pool.broker.enqueue(message_for(to_job(row), row["options"]))
        wait_for(
            lambda: f"skipping message {notify_id}: its job is already over" in pool.logs(),
            60,
            0.1,
            "the redelivered message to be skipped",
        )
        assert len(receiver.requests) == 2
        assert ended(pool, notify_id)["attempts"] == 2
    finally:
        receiver.close()


def test_the_secrets_reach_no_job_record_no_api_answer_and_no_log(pool: Pool, client: httpx.Client) -> None:
    receiver = WebhookReceiver(statuses=[500, 404])
    server = pool.mail_server(password="not-the-configured-one")  # refuses the worker's password
    ids = []
    try:
        job = run(pool, system.Noop())
        for notification in (
            Notification(slack=receiver.url),  # 500, retried, then 404: dead
            Notification(slack=f"http://169.254.169.254/hooks/{TOKEN}"),  # refused
            Notification(email=["ops@example.com"]),  # credentials refused
        ):
            ids.append(notify(pool, add_rule(pool.database_url, notification), job))
        done = [ended(pool, i) for i in ids]
        assert [d["status"] for d in done] == ["dead", "dead", "dead"], [d["error"] for d in done]
        assert "refused SMTP_URL's credentials" in done[2]["error"]["message"]
    finally:
        receiver.close()
        server.stop()
    receiver = WebhookReceiver()
    server = pool.mail_server()
    try:
        job = run(pool, system.Noop())
        for notification in (Notification(slack=receiver.url), Notification(email=["ops@example.com"])):
            ids.append(notify(pool, add_rule(pool.database_url, notification), job))
        assert [ended(pool, i)["status"] for i in ids[3:]] == ["succeeded", "succeeded"]
    finally:
        receiver.close()
        server.stop()

    secrets = (TOKEN, PASSWORD, quote(PASSWORD, safe=""))
    with psycopg.connect(pool.database_url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM jobs WHERE type = 'system.notify'").fetchall()
    assert {r["id"] for r in rows} >= set(ids)
    stored = json.dumps(rows, default=str)
    assert not [s for s in secrets if s in stored], "a secret is in a job record"
    answers = [client.get(f"/v1/jobs/{i}") for i in ids]
    assert all(a.status_code == 200 for a in answers)
    listed = client.get("/v1/jobs", params={"type": "system.notify", "limit": 500})
    shown = "".join(a.text for a in answers) + listed.text
    assert not [s for s in secrets if s in shown], "a secret is in an API answer"
    logs = pool.logs()
    assert ids[0] in logs  # the log is the worker's, and it speaks of these jobs
    assert not [s for s in secrets if s in logs], "a secret is in the worker's log"


def test_a_notification_on_rabbitmq_is_retried_then_delivered(
    base_env: dict[str, str], certs: Certificates, rabbitmq_url: str
) -> None:
    port = free_port()
    on_rabbit = Pool(env=notify_env(base_env, certs, port, BROKER_URL=rabbitmq_url), smtp_port=port, certs=certs)
    on_rabbit.start_worker()
    receiver = WebhookReceiver(statuses=[502])
    try:
        rule = add_rule(on_rabbit.database_url, Notification(slack=receiver.url))
        job = run(on_rabbit, system.Noop())
        done = ended(on_rabbit, notify(on_rabbit, rule, job))
        assert done["status"] == "succeeded" and done["attempts"] == 2, done["error"]
        assert len(receiver.requests) == 2
    finally:
        receiver.close()
        stop_all(on_rabbit.procs)


@pytest.mark.parametrize("mode", ["implicit", "plain"])
def test_an_email_over_tls_from_the_start_or_over_a_plain_relay(
    base_env: dict[str, str], certs: Certificates, mode: str
) -> None:
    """The other two ways SMTP_URL names a server, each from a worker of its own."""
    port = free_port()
    url = (
        f"smtps://bot:{quote(PASSWORD, safe='')}@127.0.0.1:{port}" if mode == "implicit" else f"smtp://127.0.0.1:{port}"
    )
    own = Pool(env=notify_env(base_env, certs, port, SMTP_URL=url), smtp_port=port, certs=certs)
    tls = {"tls": "implicit"} if mode == "implicit" else {"tls": None, "password": ""}
    server = own.mail_server(**tls)
    own.start_worker()
    try:
        rule = add_rule(own.database_url, Notification(email=["ops@example.com"], text="$rule: $type $status"))
        job = run(own, system.Noop())
        done = ended(own, notify(own, rule, job))
        assert done["status"] == "succeeded", done["error"]
        [mail] = server.received
        assert mail.message.get_payload(decode=True).decode().startswith(f"{rule}: system.noop succeeded")
        assert server.logins == (["ok"] if mode == "implicit" else [])
        assert PASSWORD not in own.logs() and quote(PASSWORD, safe="") not in own.logs()
    finally:
        server.stop()
        stop_all(own.procs)
