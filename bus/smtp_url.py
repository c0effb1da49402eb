"""What ``SMTP_URL`` says: the mail server, its credentials and how the connection is encrypted.

- ``smtp://[user:password@]host[:port]`` (port 25 by default): STARTTLS is required when the URL
  has credentials, not used otherwise; ``?starttls=1`` requires it, ``?starttls=0`` turns it off
  (refused with credentials: a password is never sent in the clear);
- ``smtps://[user:password@]host[:port]`` (port 465 by default): TLS from the first byte.

User and password are percent-decoded (``%40`` for an ``@`` in a user name). Certificates are
always verified, against ``SMTP_CA_FILE`` or the system's trust roots. Errors name SMTP_URL and
what is wrong with it, never the password; so does the server's ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class BadSmtpUrl(ValueError):
    """SMTP_URL cannot be used; the message says why (and never holds the password)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    #: TLS from the first byte (smtps://)
    implicit_tls: bool
    #: STARTTLS after EHLO, and refuse to go on if the server does not offer it
    starttls: bool
    user: str = ""
    password: str = field(default="", repr=False)

    @property
    def encrypted(self) -> bool:
        return self.implicit_tls or self.starttls

    def shown(self) -> str:
        """How the server may be named in a message: host and port, nothing else."""
        return f"{self.host}:{self.port}"


def _flag(values: dict[str, list[str]], name: str) -> bool | None:
    given = values.get(name)
    if not given:
        return None
    if given[-1] not in ("0", "1"):
        raise BadSmtpUrl(f"SMTP_URL: {name} must be 0 or 1")
    return given[-1] == "1"


def parse(url: str) -> SmtpServer:
    """The server ``url`` names, or ``BadSmtpUrl`` saying what is wrong (without echoing the URL)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BadSmtpUrl("SMTP_URL: not a URL (smtp://user:password@host:port or smtps://…); check the port") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise BadSmtpUrl("SMTP_URL: the scheme must be smtp:// (STARTTLS) or smtps:// (TLS from the start)")
    if not parts.hostname:
        raise BadSmtpUrl("SMTP_URL: no host")
    if parts.path not in ("", "/"):
        raise BadSmtpUrl("SMTP_URL: a mail server URL has no path")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise BadSmtpUrl(f"SMTP_URL: unknown parameter {sorted(unknown)[0]!r} (only starttls=0|1)")
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if password and not user:
        raise BadSmtpUrl("SMTP_URL: a password without a user")
    implicit = parts.scheme == "smtps"
    starttls = _flag(query, "starttls")
    if implicit:
        if starttls:
            raise BadSmtpUrl("SMTP_URL: smtps:// is TLS from the start: starttls=1 does not apply")
        starttls = False
    elif starttls is None:
        starttls = bool(user)
    if user and not (implicit or starttls):
        raise BadSmtpUrl("SMTP_URL: credentials are never sent unencrypted: use STARTTLS (starttls=1) or smtps://")
    return SmtpServer(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        implicit_tls=implicit,
        starttls=starttls,
        user=user,
        password=password,
    )
