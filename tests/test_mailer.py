"""E-mail (bus/mailer.py) against a real SMTP server on loopback: plain, STARTTLS and TLS from the
start with a private certificate authority, a password; and every way it fails, classified retry or
not, without the password in any message. SMTP_URL's reading (bus/smtp_url.py) and its checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus import mailer, settings, smtp_url
from bus.errors import PermanentError
from devservers import free_port
from tests.receivers import IMPLICIT_TLS_AUTH, Certificates, MailHandler, MailServer, certificates

pytestmark = pytest.mark.filterwarnings(IMPLICIT_TLS_AUTH)

PASSWORD = "pw-Zq8#mail-secret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates(tmp_path_factory.mktemp("mail-tls"))


@pytest.fixture()
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def set_env(**values: str) -> None:
        for name, value in {"SMTP_FROM": "switchyard@example.com", **values}.items():
            monkeypatch.setenv(name, value)
        settings.get.cache_clear()

    yield set_env
    settings.get.cache_clear()


def message(*to: str) -> mailer.EmailMessage:
    return mailer.compose(to=list(to), subject="[switchyard] a\nsubject", text="the body\n", message_id="job-1")


@pytest.mark.parametrize("mode", ["plain", "starttls", "implicit"])
def test_a_message_arrives_in_every_mode(mode: str, certs: Certificates, configure: Callable[..., None]) -> None:
    tls = None if mode == "plain" else mode
    password = "" if mode == "plain" else PASSWORD
    server = MailServer(tls=tls, certificate=certs.server, user="bot", password=password).start()
    try:
        scheme = "smtps" if mode == "implicit" else "smtp"
        credentials = "" if mode == "plain" else f"bot:{PASSWORD.replace('#', '%23')}@"
        configure(SMTP_URL=f"{scheme}://{credentials}127.0.0.1:{server.port}", SMTP_CA_FILE=str(certs.ca_file))
        sent = mailer.send(message("ops@example.com", "data@example.com"))
        assert sent.accepted == ["ops@example.com", "data@example.com"] and sent.refused == {}
        [mail] = server.received
        assert mail.recipients == ["ops@example.com", "data@example.com"]
        assert mail.message["Subject"] == "[switchyard] a subject"  # one line: no header injection
        assert mail.message["Message-ID"] == "<job-1@example.com>"
        assert mail.message.get_payload().strip() == "the body"
        assert server.logins == ([] if mode == "plain" else ["ok"])
    finally:
        server.stop()


def test_starttls_is_required_with_credentials_never_skipped(certs: Certificates, configure: Callable) -> None:
    server = MailServer(handler=MailHandler()).start()  # offers no STARTTLS
    try:
        configure(SMTP_URL=f"smtp://bot:{PASSWORD.replace('#', '%23')}@127.0.0.1:{server.port}")
        with pytest.raises(PermanentError, match="does not offer STARTTLS") as refused:
            mailer.send(message("ops@example.com"))
        assert PASSWORD not in str(refused.value)
        assert server.received == [] and server.logins == []
    finally:
        server.stop()


def test_a_certificate_that_does_not_verify_is_refused_naming_smtp_ca_file(
    certs: Certificates, configure: Callable
) -> None:
    server = MailServer(tls="implicit", certificate=certs.server, user="bot", password=PASSWORD).start()
    try:
        configure(SMTP_URL=f"smtps://bot:pw@127.0.0.1:{server.port}", SMTP_CA_FILE="")  # the system's roots
        with pytest.raises(PermanentError, match="SMTP_CA_FILE"):
            mailer.send(message("ops@example.com"))
        assert server.logins == []  # no password was sent to an unverified server
    finally:
        server.stop()


def test_wrong_credentials_are_permanent_and_never_quoted(certs: Certificates, configure: Callable) -> None:
    server = MailServer(tls="starttls", certificate=certs.server, user="bot", password="the-right-one").start()
    try:
        configure(
            SMTP_URL=f"smtp://bot:{PASSWORD.replace('#', '%23')}@127.0.0.1:{server.port}",
            SMTP_CA_FILE=str(certs.ca_file),
        )
        with pytest.raises(PermanentError, match="refused SMTP_URL's credentials") as refused:
            mailer.send(message("ops@example.com"))
        assert PASSWORD not in str(refused.value) and "%23" not in str(refused.value)
        assert server.logins and "ok" not in server.logins  # smtplib tries each mechanism the server offers
    finally:
        server.stop()


def test_a_server_down_or_deferring_is_retried(configure: Callable) -> None:
    configure(SMTP_URL=f"smtp://127.0.0.1:{free_port()}", SMTP_TIMEOUT_S="5")
    with pytest.raises(mailer.MailFailed, match="could not be reached"):
        mailer.send(message("ops@example.com"))
    server = MailServer(handler=MailHandler(defer_first=1)).start()
    try:
        configure(SMTP_URL=f"smtp://127.0.0.1:{server.port}")
        with pytest.raises(mailer.MailFailed, match="451"):
            mailer.send(message("ops@example.com"))
        assert mailer.send(message("ops@example.com")).accepted == ["ops@example.com"]
    finally:
        server.stop()


def test_refused_recipients_permanent_when_all_recorded_when_some(configure: Callable) -> None:
    server = MailServer(handler=MailHandler(refused={"nobody@example.com"})).start()
    try:
        configure(SMTP_URL=f"smtp://127.0.0.1:{server.port}")
        with pytest.raises(PermanentError, match=r"nobody@example.com: 550"):
            mailer.send(message("nobody@example.com"))
        sent = mailer.send(message("ops@example.com", "nobody@example.com"))
        assert sent.accepted == ["ops@example.com"]
        assert sent.refused["nobody@example.com"].startswith("550")
        assert [m.recipients for m in server.received] == [["ops@example.com"]]
    finally:
        server.stop()


def test_no_smtp_url_ends_dead_naming_it(configure: Callable) -> None:
    configure(SMTP_URL="", SMTP_FROM="")
    with pytest.raises(PermanentError, match="SMTP_URL"):
        mailer.server()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://bot:pw@mail.example.com", "scheme"),
        ("smtp://bot:pw@mail.example.com?starttls=0", "never sent unencrypted"),
        ("smtp://bot:pw@mail.example.com:99999", "port"),
        ("smtp://bot:pw@mail.example.com?tls=1", "unknown parameter"),
        ("smtp://bot:pw@mail.example.com/x", "no path"),
        ("smtps://bot:pw@mail.example.com?starttls=1", "does not apply"),
        ("smtp://:pw@mail.example.com", "without a user"),
    ],
)
def test_a_bad_smtp_url_stops_the_process_naming_it_not_its_password(url: str, reason: str) -> None:
    with pytest.raises(settings.SettingsError, match=reason) as bad:
        settings.from_env({"SMTP_URL": url, "SMTP_FROM": "a@example.com"})
    assert "SMTP_URL" in str(bad.value) and "pw" not in str(bad.value).replace("password", "")


def test_smtp_url_defaults_and_a_percent_encoded_password() -> None:
    server = smtp_url.parse("smtp://bot%40example.com:p%40ss%3Aword@mail.example.com")
    assert (server.host, server.port, server.starttls, server.implicit_tls) == ("mail.example.com", 25, True, False)
    assert (server.user, server.password) == ("bot@example.com", "p@ss:word")
    assert "p@ss" not in repr(server)
    assert not smtp_url.parse("smtp://relay.internal").starttls  # no credentials: plain, unless starttls=1
    assert smtp_url.parse("smtp://relay.internal?starttls=1").starttls
    assert smtp_url.parse("smtps://bot:pw@mail.example.com").port == 465
    with pytest.raises(settings.SettingsError, match="SMTP_FROM"):
        settings.from_env({"SMTP_URL": "smtp://relay.internal"})
    assert "pw" not in repr(settings.from_env({"SMTP_URL": "smtps://bot:pw@mail.example.com", "SMTP_FROM": "a@b.co"}))


def test_the_ca_file_must_be_readable(configure: Callable, tmp_path: Path) -> None:
    configure(SMTP_URL="smtps://bot:pw@127.0.0.1:1", SMTP_CA_FILE=str(tmp_path / "missing.pem"))
    with pytest.raises(PermanentError, match="SMTP_CA_FILE"):
        mailer.send(message("ops@example.com"))
