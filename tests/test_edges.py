"""The web process's edges, against real web processes: the failed-key throttle (shared through Redis,
per client address, never refusing the right key), X-Forwarded-For believed only from configured
proxies, a trickling request body cut, and schedules firing more often than the deployment allows.

Clients here connect from their own loopback addresses (127.0.0.x), so each is a different client
address to the server and no other test's wrong keys count against them.
"""

from __future__ import annotations

import select
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import pytest
import redis

from devservers import free_port
from tests.support import API_KEY, Proc, start_web, stop_all, wait_for
from tests.test_ui import csrf_of

LIMIT = 5
#: the edge web processes' settings: a low failed-key limit, a short body timeout, a 5 s schedule floor
EDGE_ENV = {
    "API_KEY_FAILURE_LIMIT": str(LIMIT),
    "API_KEY_FAILURE_WINDOW_S": "60",
    "BODY_READ_TIMEOUT_S": "1",
    "MIN_SCHEDULE_INTERVAL_S": "5",
}
KEYS = "switchyard:api:key-failures"


@pytest.fixture(scope="module")
def edge(base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Two web processes with EDGE_ENV on the session's Redis and Postgres (FORWARDED_ALLOW_IPS unset)."""
    env = {k: v for k, v in base_env.items() if k != "FORWARDED_ALLOW_IPS"} | EDGE_ENV
    procs: list[Proc] = []
    urls = {}
    for name in ("a", "b"):
        proc, urls[name] = start_web(env, free_port(), name=f"web-edge-{name}")
        procs.append(proc)
    yield {**base_env, **EDGE_ENV, "url_a": urls["a"], "url_b": urls["b"]}
    stop_all(procs)


@pytest.fixture(scope="module")
def proxied(base_env: dict[str, str]) -> Iterator[str]:
    """A web process that believes the proxy on 127.0.0.1."""
    proc, url = start_web({**base_env, **EDGE_ENV, "FORWARDED_ALLOW_IPS": "127.0.0.1"}, free_port(), "web-proxied")
    yield url
    proc.stop()


def client_from(url: str, address: str, key: str | None = None) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.0.0.x reaches a server on 127.0.0.1)."""
    headers = {"X-API-Key": key} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=10, transport=httpx.HTTPTransport(local_address=address))


def failures(stack_env: dict[str, str], address: str) -> int:
    raw = redis.Redis.from_url(stack_env["REDIS_URL"]).get(f"{KEYS}:{address}")
    return int(raw or 0)


def forget(stack_env: dict[str, str], *addresses: str) -> None:
    redis.Redis.from_url(stack_env["REDIS_URL"]).delete(*(f"{KEYS}:{a}" for a in addresses))


def test_wrong_keys_are_throttled_across_web_processes_and_the_right_key_still_works(edge: dict[str, str]) -> None:
    guesser, bystander = "127.0.0.2", "127.0.0.3"
    forget(edge, guesser, bystander)
    with (
        client_from(edge["url_a"], guesser, "wrong-a") as on_a,
        client_from(edge["url_b"], guesser, "wrong-b") as on_b,
    ):
        # the limit is shared through Redis: failures on either process count together
        for i in range(LIMIT):
            refused = (on_a if i % 2 else on_b).get("/v1/jobs?limit=1")
            assert refused.status_code == 403, refused.text
        for throttled in (on_a.get("/v1/jobs?limit=1"), on_b.post("/v1/commands", json={"type": "system.noop"})):
            assert throttled.status_code == 429, throttled.text
            assert throttled.json()["error"] == "too_many_failures"
            assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # the right key from the same address is not refused, on either process
        for url in (edge["url_a"], edge["url_b"]):
            with client_from(url, guesser, API_KEY) as right:
                assert right.get("/v1/jobs?limit=1").status_code == 200
    assert failures(edge, guesser) == LIMIT + 2
    with client_from(edge["url_a"], bystander, "wrong") as other:  # another address has its own count
        assert other.get("/v1/jobs?limit=1").status_code == 403
    # a missing key guesses nothing and is not counted
    with client_from(edge["url_a"], bystander) as keyless:
        for _ in range(LIMIT + 2):
            assert keyless.get("/v1/jobs?limit=1").status_code == 401
    assert failures(edge, bystander) == 1


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_configured(edge: dict[str, str], proxied: str) -> None:
    rotating = "127.0.0.4"
    forget(edge, rotating, "203.0.113.7")
    with client_from(edge["url_a"], rotating, "wrong") as c:
        answers = [
            c.get("/v1/jobs?limit=1", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
            for i in range(LIMIT + 1)
        ]
    # a new forged address per request does not reset the count: it is the peer's address that counts
    assert answers == [403] * LIMIT + [429]
    assert failures(edge, rotating) == LIMIT + 1
    assert failures(edge, "198.51.100.0") == 0

    # the dashboard's sign-in counts the same address
    signin_key = f"switchyard:ui:login-failures:{rotating}"
    redis.Redis.from_url(edge["REDIS_URL"]).delete(signin_key)
    with client_from(edge["url_a"], rotating) as browser:
        for i in range(3):
            form = browser.get("/ui/login")
            forged = {"X-Forwarded-For": f"198.51.100.{i}"}
            data = {"csrf": csrf_of(form.text), "api_key": "guess", "next": "/ui"}
            assert browser.post("/ui/login", data=data, headers=forged).status_code == 403
    assert int(redis.Redis.from_url(edge["REDIS_URL"]).get(signin_key) or 0) == 3

    # behind a configured proxy, the address it forwards is the client's
    with client_from(proxied, "127.0.0.1", "wrong") as via_proxy:
        assert via_proxy.get("/v1/jobs?limit=1", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403
    assert failures(edge, "203.0.113.7") == 1
    forget(edge, "203.0.113.7")


def _request_head(body_length: int) -> bytes:
    return (
        "POST /v1/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Length: {body_length}\r\n\r\n"
    ).encode()


def _read_all(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends until it closes the connection (an AssertionError after ``seconds``)."""
    sock.settimeout(seconds)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the connection was still open after {seconds:.0f} s: {received!r}") from None
        if not chunk:
            return received
        received += chunk


def test_a_body_that_stops_arriving_is_cut_and_its_connection_closed(edge: dict[str, str]) -> None:
    body = b'{"type": "system.noop", "echo": "trickled"}'
    port = int(edge["url_a"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_request_head(len(body)) + body[:10])
        started = time.monotonic()
        answer = _read_all(sock, 20)  # seconds, not minutes: BODY_READ_TIMEOUT_S is 1
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"error":"request_timeout"' in answer and b"connection: close" in answer.lower()
    assert waited >= 1  # not cut before the silence lasted the timeout

    # a slow body whose chunks keep coming (each within the timeout) is read whole
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_request_head(len(body)))
        for start in range(0, len(body), 15):
            time.sleep(0.3)
            sock.sendall(body[start : start + 15])
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 202 "), answer


def test_schedules_firing_more_often_than_the_minimum_are_refused(
    edge: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"too-often-{uuid.uuid4().hex[:8]}"
    spec = {"name": name, "cron": "*/2 * * * * *", "command": {"type": "system.noop"}}
    with client_from(edge["url_a"], "127.0.0.1", API_KEY) as api:
        # every 2 s; 3 s apart; 59 s of one minute and 0 s of the next, 1 s apart
        # a "*" inside a list allows every value of its field (croniter keeps it as it is)
        for cron in ("*/2 * * * * *", "0,3 * * * * *", "0,59 * * * * *", "*/7,*,3 * * * * *"):
            refused = api.post("/v1/schedules", json={**spec, "cron": cron})
            assert refused.status_code == 422, (cron, refused.text)
            assert refused.json()["detail"]["path"] == "$.cron"
            assert "MIN_SCHEDULE_INTERVAL_S" in refused.json()["detail"]["message"]
        assert api.get(f"/v1/schedules/{name}").status_code == 404
        # the slot after the last of a minute counts too: 55 s and then 0 s of the next minute, 5 s apart
        assert api.post("/v1/schedules", json={**spec, "cron": "0,55 * * * * *"}).status_code == 201
        try:
            changed = api.patch(f"/v1/schedules/{name}", json={"cron": "* * * * * *"})
            assert changed.status_code == 422 and changed.json()["detail"]["path"] == "$.cron"
            assert api.get(f"/v1/schedules/{name}").json()["cron"] == "0,55 * * * * *"
        finally:
            api.delete(f"/v1/schedules/{name}")
        model = str(uuid.uuid4())
        metrics = api.post("/schedule", json={"model_id": model, "cron_expression": "*/2 * * * * *"})
        assert metrics.status_code == 422 and metrics.json()["detail"]["path"] == "$.cron_expression"
        assert api.delete(f"/schedule/{model}").status_code == 404

    # the dashboard's form answers it beside the field
    with httpx.Client(base_url=edge["url_a"], timeout=10) as ui:
        form = ui.get("/ui/login")
        data = {"csrf": csrf_of(form.text), "api_key": API_KEY, "next": "/ui/schedules"}
        assert ui.post("/ui/login", data=data).status_code == 303
        listing = ui.get("/ui/schedules")
        fields = {"name": name, "cron": "*/2 * * * * *", "timezone": "UTC", "type": "system.noop", "body": "{}"}
        refused = ui.post(
            "/ui/schedules",
            data={"csrf": csrf_of(listing.text), **fields, "policy": "skip", "catch_up_limit": "10"},
        )
        assert refused.status_code == 422 and '<code id="error-path">$.cron</code>' in refused.text

    # the schedule.set bus command writes through the same store: the worker's process refuses it alike
    from bus import schedule_store, settings
    from contracts.schedules import ScheduleSpec

    monkeypatch.setenv("MIN_SCHEDULE_INTERVAL_S", "5")
    settings.get.cache_clear()
    try:
        with pytest.raises(schedule_store.BadSchedule) as refused_set:
            schedule_store.set_schedule(msgspec.convert(spec, ScheduleSpec))
        assert refused_set.value.path == "$.cron"
        assert schedule_store.get(name) is None
    finally:
        monkeypatch.delenv("MIN_SCHEDULE_INTERVAL_S")
        settings.get.cache_clear()


def test_the_default_minimum_allows_every_second(client: httpx.Client) -> None:
    name = f"every-second-{uuid.uuid4().hex[:8]}"
    made = client.post("/v1/schedules", json={"name": name, "cron": "* * * * * *", "command": {"type": "system.noop"}})
    try:
        assert made.status_code == 201, made.text
        wait_for(lambda: client.get(f"/v1/schedules/{name}").json()["last_fired_at"], 30, 0.2, "a slot fired")
    finally:
        client.delete(f"/v1/schedules/{name}")


def test_connections_that_never_finish_their_request_head_are_closed(edge: dict[str, str]) -> None:
    """Slowloris: 200 connections each send half a request head, then a header line every 2 s.
    uvicorn's keep-alive timeout (5 s) closes each; a client meanwhile is served as usual."""
    port = int(edge["url_a"].rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    try:
        for sock in slow:
            sock.sendall(b"POST /v1/commands HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
        opened = time.monotonic()
        closed: set[int] = set()

        def all_closed() -> bool:
            for n, sock in enumerate(slow):
                if n in closed:
                    continue
                try:
                    if sock.recv(1024) == b"":
                        closed.add(n)
                except BlockingIOError:
                    try:  # still open: the slow client goes on with its head
                        sock.send(b"X-Slow: 1\r\n")
                    except OSError:
                        closed.add(n)
                except OSError:
                    closed.add(n)
            return len(closed) == len(slow)

        served = httpx.get(edge["url_a"] + "/healthz", timeout=10)
        assert served.status_code == 200
        # seconds, not minutes: each head had --timeout-keep-alive (5 s) to complete
        wait_for(all_closed, 60, 2, f"the server to close slow connections ({len(closed)} of {len(slow)} so far)")
        print(f"200 slow request heads closed {time.monotonic() - opened:.1f} s after they opened")
    finally:
        for sock in slow:
            sock.close()


def test_a_request_head_that_grows_past_16_kib_is_refused_and_its_connection_closed(edge: dict[str, str]) -> None:
    """An endless header would grow the web process's memory: past 16 KiB of head, 431 and closed."""
    port = int(edge["url_a"].rsplit(":", 1)[1])
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        for _ in range(128):  # 256 KiB at most; the server answers after about 16 KiB
            # a piece at a time, and only while the server has not answered: it reads each before
            # it closes, so nothing of ours is left unread there (a reset could lose its answer)
            if select.select([sock], [], [], 0.05)[0]:
                answer = _read_all(sock, 10)
                break
            sock.sendall(b"a" * 2048)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert b"connection: close" in answer.lower()
    # a large head that fits is served
    padded = httpx.get(edge["url_a"] + "/healthz", headers={"X-Padding": "p" * 12_000}, timeout=10)
    assert padded.status_code == 200
