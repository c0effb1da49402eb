"""The far ends of outbound calls, real servers on loopback: a webhook receiver (HTTP) and a mail
server (aiosmtpd: plain, STARTTLS or TLS from the start, with a trustme certificate and a password).

They stand in for Slack, another service and a mail provider at their network edge; everything in
between (the worker process, the outbound client, smtplib, TLS) is the real thing."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devservers import free_port

#: for a module serving TLS from the first byte: that is TLS too, though aiosmtpd's check sees only STARTTLS
IMPLICIT_TLS_AUTH = "ignore:Requiring AUTH while not requiring TLS:UserWarning"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every request. It answers ``statuses`` in turn (then
    200), or what ``respond(request) -> (status, headers, body)`` returns; ``hold`` makes requests
    wait until it is set (a receiver that has the request while the caller dies)."""

    def __init__(
        self,
        fail_first: int = 0,
        *,
        statuses: list[int] | None = None,
        respond: Callable[[Request], tuple[int, dict[str, str], bytes]] | None = None,
        path: str = "/hooks/secret-token-xyz",
    ) -> None:
        self.requests: list[Request] = []
        self.statuses = list(statuses or []) or [500] * fail_first
        self.respond = respond
        self.hold: threading.Event | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                with receiver.lock:
                    receiver.requests.append(request)
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.hold is not None:
                    receiver.hold.wait(120)
                headers, body = {}, b""
                if receiver.respond is not None:
                    status, headers, body = receiver.respond(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def posts(self) -> list[Any]:
        """The JSON bodies received (the metrics pool's alert test reads them)."""
        return [r.json() for r in self.requests if r.body]

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    raw: bytes


@dataclass
class MailHandler:
    """aiosmtpd's handler: keeps every message; refuses ``refused`` recipients (550), answers the
    first ``defer_first`` messages 451 (try again later)."""

    refused: set[str] = field(default_factory=set)
    defer_first: int = 0
    received: list[Mail] = field(default_factory=list)
    deferred: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.deferred < self.defer_first:
            self.deferred += 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content
        self.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(raw), raw))
        return "250 OK queued"


class MailServer:
    """A real SMTP server on 127.0.0.1: ``tls`` is ``None`` (plain), ``"starttls"`` (required before
    AUTH and MAIL) or ``"implicit"`` (TLS from the first byte); with ``password`` it needs AUTH."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        certificate: ssl.SSLContext | None = None,
        user: str = "",
        password: str = "",
        port: int = 0,
        handler: MailHandler | None = None,
    ) -> None:
        self.handler = handler or MailHandler()
        self.user, self.password = user, password
        self.port = port or free_port()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            kwargs.update(tls_context=certificate, require_starttls=True)
        elif tls == "implicit":
            kwargs.update(ssl_context=certificate)
        if password:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
            # aiosmtpd offers AUTH only over TLS by default; a TLS-from-the-start session counts as TLS
            kwargs["auth_require_tls"] = tls == "starttls"
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            self.user,
            self.password,
        )
        self.logins.append("ok" if ok else "refused")
        return AuthResult(success=ok, handled=False)

    def start(self) -> MailServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Mail]:
        return self.handler.received


@dataclass
class Certificates:
    """A private certificate authority (trustme) and a certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    server: ssl.SSLContext


def certificates(directory: Path) -> Certificates:
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(server)
    ca_file = directory / "mail-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca_file=ca_file, server=server)
