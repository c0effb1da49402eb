"""``system.http`` on the shared stack's system worker against a local HTTP server: the expected status
succeeds with a bounded record of the answer, a JSON body makes the round trip, an unexpected 4xx or a
redirect is dead at once, a 5xx, a timeout or a refused connection is retried, a destination on our own
network is refused without a connection, and bad input is a 422 naming the field."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import httpx
import pytest

from devservers import free_port
from tests.receivers import Request, WebhookReceiver
from tests.support import wait_status

FINAL = {"succeeded", "dead", "cancelled"}


def call(client: httpx.Client, stack: dict[str, str], **command: Any) -> dict[str, Any]:
    accepted = client.post("/v1/commands", json={"type": "system.http", **command})
    assert accepted.status_code == 202, accepted.text
    return wait_status(stack["DATABASE_URL"], accepted.json()["id"], FINAL, 60)


def echo(request: Request) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "Set-Cookie": "session=s3cr3t", "X-Request-Id": "r-1"}
    return 201, headers | {"X-Api-Token": "tok-s3cr3t"}, request.body


def test_the_expected_status_succeeds_and_a_json_body_makes_the_round_trip(
    client: httpx.Client, stack: dict[str, str]
) -> None:
    receiver = WebhookReceiver(respond=echo, path="/api/runs?source=switchyard")
    body = {"pipeline": "daily_sales", "rows": [1, 2.5, None], "nested": {"ok": True, "name": "zürich"}}
    try:
        job = call(client, stack, url=receiver.url, method="PUT", body=body, expect_status=[201, 202])
        assert job["status"] == "succeeded", job["error"]
        [request] = receiver.requests
        assert (request.method, request.path) == ("PUT", "/api/runs?source=switchyard")
        assert request.json() == body and request.headers["Content-Type"] == "application/json"
        assert request.headers["Idempotency-Key"] == job["id"]
        result = job["result"]
        assert result["status"] == 201 and result["body"] == body and result["body_truncated"] is False
        assert result["elapsed_ms"] >= 0
        # an allowlist of headers: the cookie and the token are not recorded
        assert result["headers"] == {
            "content-type": "application/json",
            "content-length": str(len(request.body)),
            "x-request-id": "r-1",
        }
        assert "s3cr3t" not in json.dumps(job, default=str)
        assert "s3cr3t" not in client.get(f"/v1/jobs/{job['id']}").text
    finally:
        receiver.close()


def test_a_get_succeeds_on_any_2xx_and_sends_no_body(client: httpx.Client, stack: dict[str, str]) -> None:
    receiver = WebhookReceiver(
        respond=lambda r: (204 if r.method == "DELETE" else 200, {}, b"" if r.method == "DELETE" else b"hello")
    )
    try:
        job = call(client, stack, url=receiver.url, method="GET")
        assert job["status"] == "succeeded", job["error"]
        assert job["result"]["body"] == "hello" and job["result"]["status"] == 200
        deleted = call(client, stack, url=receiver.url, method="DELETE")
        assert deleted["status"] == "succeeded" and deleted["result"]["body"] is None
        assert [(r.method, r.body) for r in receiver.requests] == [("GET", b""), ("DELETE", b"")]
    finally:
        receiver.close()


def test_an_unexpected_4xx_is_dead_without_retries(client: httpx.Client, stack: dict[str, str]) -> None:
    receiver = WebhookReceiver(respond=lambda r: (404, {"Content-Type": "text/plain"}, b"no such run"))
    try:
        job = call(client, stack, url=receiver.url, body={"a": 1})
        assert job["status"] == "dead" and job["attempts"] == 1
        assert job["error"]["message"] == "answered 404, expected 2xx: no such run; not retried"
        assert len(receiver.requests) == 1
        # the same answer is a success when expected
        assert call(client, stack, url=receiver.url, expect_status=[404])["status"] == "succeeded"
    finally:
        receiver.close()


def test_a_redirect_is_not_followed(client: httpx.Client, stack: dict[str, str]) -> None:
    inner = WebhookReceiver()
    receiver = WebhookReceiver(respond=lambda r: (302, {"Location": inner.url}, b""))
    try:
        job = call(client, stack, url=receiver.url)
        assert job["status"] == "dead" and "redirects are not followed" in job["error"]["message"]
        assert inner.requests == []
        assert call(client, stack, url=receiver.url, expect_status=[302])["result"]["status"] == 302
    finally:
        receiver.close()
        inner.close()


def test_a_5xx_is_retried_with_backoff_then_succeeds(client: httpx.Client, stack: dict[str, str]) -> None:
    receiver = WebhookReceiver(statuses=[503, 500])  # then 200; the shared stack retries twice
    try:
        job = call(client, stack, url=receiver.url, body={"n": 1})
        assert job["status"] == "succeeded" and job["attempts"] == 3, job["error"]
        assert len(receiver.requests) == 3
        assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {job["id"]}
    finally:
        receiver.close()


def test_a_timeout_is_retried(client: httpx.Client, stack: dict[str, str]) -> None:
    receiver = WebhookReceiver()
    receiver.hold = threading.Event()
    try:
        accepted = client.post("/v1/commands", json={"type": "system.http", "url": receiver.url, "timeout_s": 0.5})
        job_id = accepted.json()["id"]
        failed = wait_status(stack["DATABASE_URL"], job_id, {"failed", *FINAL}, 60)
        assert failed["status"] == "failed" and "could not be reached" in failed["error"]["message"]
        receiver.hold.set()
        receiver.hold = None
        job = wait_status(stack["DATABASE_URL"], job_id, FINAL, 60)
        assert job["status"] == "succeeded" and job["attempts"] >= 2
    finally:
        receiver.close()


def test_a_refused_connection_is_retried_then_dead(client: httpx.Client, stack: dict[str, str]) -> None:
    job = call(client, stack, url=f"http://127.0.0.1:{free_port()}/hook")
    assert job["status"] == "dead" and job["attempts"] == 3  # MAX_RETRIES=2 in the tests
    assert "could not be reached" in job["error"]["message"]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "link-local address"),
        ("10.0.0.1", "private or reserved address"),
        ("2130706434", "loopback"),  # 127.0.0.2 spelled as one number; the tests allow 127.0.0.1 only
    ],
)
def test_our_own_network_is_refused(client: httpx.Client, stack: dict[str, str], host: str, reason: str) -> None:
    job = call(client, stack, url=f"http://{host}/latest/meta-data/")
    assert job["status"] == "dead" and job["attempts"] == 1
    assert job["error"]["message"].startswith("url: refused: ") and reason in job["error"]["message"]


def test_a_loopback_address_outside_outbound_allow_is_refused_before_connecting(
    client: httpx.Client, stack: dict[str, str]
) -> None:
    listener = socket.create_server(("127.0.0.2", 0))  # OUTBOUND_ALLOW is 127.0.0.1/32 in the tests
    listener.settimeout(0.5)
    try:
        job = call(client, stack, url=f"http://127.0.0.2:{listener.getsockname()[1]}/")
        assert job["status"] == "dead" and "loopback" in job["error"]["message"]
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected
    finally:
        listener.close()


def test_a_big_answer_is_cut_and_flagged(client: httpx.Client, stack: dict[str, str]) -> None:
    big_json = json.dumps({"items": list(range(3000))}).encode()
    answers = {"/text": b"x" * 200_000, "/json": big_json, "/small": b'{"ok": true}'}
    receiver = WebhookReceiver(respond=lambda r: (200, {"Content-Type": "application/json"}, answers[r.path]), path="")
    try:
        text = call(client, stack, url=receiver.url + "/text", method="GET")["result"]
        assert text["body"] == "x" * 4096 and text["body_truncated"] is True
        cut = call(client, stack, url=receiver.url + "/json", method="GET")["result"]
        assert cut["body"] == big_json[:4096].decode() and cut["body_truncated"] is True
        small = call(client, stack, url=receiver.url + "/small", method="GET")["result"]
        assert small["body"] == {"ok": True} and small["body_truncated"] is False
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("command", "path"),
    [
        ({}, "$"),
        ({"url": "ftp://example.com/x"}, "$.url"),
        ({"url": "https://user:pw@example.com/x"}, "$.url"),
        ({"url": "http://[::1]/x"}, "$.url"),
        ({"url": "https://example.com/x", "method": "TRACE"}, "$.method"),
        ({"url": "https://example.com/x", "expect_status": [600]}, "$.expect_status[0]"),
        ({"url": "https://example.com/x", "expect_status": []}, "$.expect_status"),
        ({"url": "https://example.com/x", "timeout_s": 0}, "$.timeout_s"),
        ({"url": "https://example.com/x", "method": "GET", "body": {"a": 1}}, "$.body"),
        ({"url": "https://example.com/x", "headers": {"Authorization": "x"}}, "$"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    client: httpx.Client, command: dict[str, Any], path: str
) -> None:
    before = client.get("/v1/jobs", params={"type": "system.http", "limit": 500}).json()["items"]
    answer = client.post("/v1/commands", json={"type": "system.http", **command})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]["path"] == path, answer.json()
    if path == "$.url" and "pw@" in json.dumps(command):
        assert "pw" not in answer.json()["detail"]["message"]
    assert client.get("/v1/jobs", params={"type": "system.http", "limit": 500}).json()["items"] == before


def test_the_readmes_call_of_the_web_process_succeeds_where_outbound_allow_lists_it(
    client: httpx.Client, stack: dict[str, str]
) -> None:
    job = call(client, stack, method="GET", url=stack["url"] + "/healthz")  # OUTBOUND_ALLOW=127.0.0.1/32 here
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert (result["status"], result["body"], result["body_truncated"]) == (200, {"status": "ok"}, False)
    assert result["headers"] == {"content-type": "application/json", "content-length": "15"}
