"""Outbound calls (bus/outbound.py) cannot be turned at our own network: every encoding of a
loopback, private, link-local or metadata address is refused before any connection, redirects are
not followed, and errors do not tell an open port from a closed one. Real sockets on loopback."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bus import outbound, settings

REFUSED_ADDRESSES = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::", "64:ff9b::a00:1",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",
]  # fmt: skip
REFUSED_URLS = [
    "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "http://127.1:6379/", "http://[::ffff:7f00:1]:5432/",
    "http://localhost/", "http://LOCALHOST./x", "http://db.internal/", "http://169.254.169.254/latest/meta-data/",
    "http://[fd00::1]/", "ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO",
    "http://user:secret@example.com/", "http:///nohost",
]  # fmt: skip


@pytest.fixture()
def allow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """OUTBOUND_ALLOW empty, as in production by default (the shared test env allows loopback)."""

    def set_allow(value: str) -> None:
        monkeypatch.setenv("OUTBOUND_ALLOW", value)
        settings.get.cache_clear()

    set_allow("")
    yield set_allow  # type: ignore[misc]
    settings.get.cache_clear()


class Listener:
    """A TCP listener on loopback that records whether anything connected."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0

    def poll(self) -> int:
        try:
            conn, _ = self.sock.accept()
            self.connections += 1
            conn.close()
        except TimeoutError:
            pass
        return self.connections

    def close(self) -> None:
        self.sock.close()


class Redirecting(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_every_inward_address_is_refused(address: str) -> None:
    assert outbound.why_not(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address: str) -> None:
    assert outbound.why_not(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_urls_pointing_inward_or_off_http_are_refused_without_a_lookup(url: str, allow: None) -> None:
    with pytest.raises(outbound.Refused):
        outbound.check_destination(url)


def test_nothing_reaches_a_loopback_listener_unless_allowed(allow) -> None:  # type: ignore[no-untyped-def]
    listener = Listener()
    try:
        for host in ("127.0.0.1", "2130706433", "localhost", "[::ffff:127.0.0.1]"):
            with pytest.raises(outbound.Refused):
                outbound.request("POST", f"http://{host}:{listener.port}/hook", json={"text": "x"}, timeout=2)
        assert listener.poll() == 0, "a refused call connected anyway"
        allow("127.0.0.1/32")
        with pytest.raises(outbound.Unreachable):  # allowed now: it connects (the listener speaks no HTTP)
            outbound.request("POST", f"http://127.0.0.1:{listener.port}/hook", json={"text": "x"}, timeout=1)
        assert listener.poll() == 1
    finally:
        listener.close()


def test_redirects_are_not_followed(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.1/32")
    inner = Listener()
    Redirecting.target = f"http://127.0.0.1:{inner.port}/internal"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = outbound.request("POST", f"http://127.0.0.1:{server.server_address[1]}/hook", json={}, timeout=2)
        assert answer.status == 302
        assert inner.poll() == 0, "the redirect was followed"
    finally:
        server.shutdown()
        inner.close()


def test_a_closed_port_and_a_silent_one_fail_alike(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.1/32")
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        errors = []
        for port in (closed_port, silent.getsockname()[1]):
            with pytest.raises(outbound.Unreachable) as caught:
                outbound.request("POST", f"http://127.0.0.1:{port}/hook", json={}, timeout=1)
            errors.append(str(caught.value))
        assert errors[0] == errors[1] == "127.0.0.1 could not be reached"
    finally:
        silent.close()


def test_a_schedule_whose_webhook_points_inward_is_refused_naming_the_field(client: httpx.Client) -> None:
    # the test stack allows 127.0.0.1/32 only (its webhook receivers): every other inward address is refused
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/hook", "http://2130706434/", "ftp://x.y/"):
        answer = client.post(
            "/v1/schedules",
            json={
                "name": "ssrf-probe",
                "cron": "0 * * * *",
                "command": {"type": "metrics.compute", "model_id": "6d6a8224-de68-4603-b2db-63e01d34f020"},
                "alert": {"metric": "accuracy", "below": 0.5, "webhook_url": url},
            },
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["detail"]["path"] == "$.alert.webhook_url", answer.text
    assert client.get("/v1/schedules/ssrf-probe").status_code == 404
