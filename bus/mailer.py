"""E-mail over SMTP (smtplib) to the server ``SMTP_URL`` names (bus/smtp_url.py).

TLS is verified always (``SMTP_CA_FILE`` or the system's trust roots, the host name checked):
STARTTLS where the URL asks for it (a server that does not offer it is refused, never a silent
downgrade), or TLS from the first byte for ``smtps://``. The password is sent only over TLS and
never appears in an error: messages name the server by host and port and quote its answer with
the password taken out.

Failures are classified for the job lifecycle: ``MailFailed`` (the server unreachable or gone
mid-conversation, a 4xx answer: greylisting, a full queue) is worth retrying; ``PermanentError``
(no SMTP_URL, refused credentials, a certificate that does not verify, a 5xx answer such as an
unknown recipient) is not.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from bus import settings
from bus.errors import PermanentError
from bus.smtp_url import SmtpServer

#: the most of a server's answer an error quotes
MAX_ANSWER = 300


class MailFailed(Exception):
    """A failure worth retrying: the server unreachable, gone mid-conversation, or a 4xx answer."""


@dataclass(frozen=True)
class Sent:
    #: recipients the server accepted
    accepted: list[str]
    #: recipients it refused while accepting others: address -> "550 user unknown"
    refused: dict[str, str]


def server() -> SmtpServer:
    """The configured mail server, or a PermanentError naming SMTP_URL."""
    configured = settings.get().smtp
    if configured is None:
        raise PermanentError("e-mail is not configured: set SMTP_URL (and SMTP_FROM) for the system pool")
    return configured


def compose(*, to: list[str], subject: str, text: str, message_id: str) -> EmailMessage:
    """A plain-text message from SMTP_FROM. ``message_id`` is stable for one notification, so a
    mail client shows a repeated delivery (at least once) as one message."""
    sender = settings.get().smtp_from
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    # a header holds one line: a template's line breaks become spaces
    message["Subject"] = " ".join(subject.split())[:255]
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{message_id}@{sender.rpartition('@')[2]}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(text)
    return message


def _context() -> ssl.SSLContext:
    ca_file = settings.get().smtp_ca_file or None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        raise PermanentError(f"SMTP_CA_FILE: cannot be read as PEM trust roots ({err.__class__.__name__})") from None


def _answer(err: smtplib.SMTPResponseException, password: str) -> str:
    text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
    if password:
        text = text.replace(password, "***")
    return f"{err.smtp_code} {' '.join(text.split())}"[:MAX_ANSWER]


def _classify(code: int, what: str) -> Exception:
    if 400 <= code < 500:
        return MailFailed(f"{what}; retried")
    return PermanentError(f"{what}; not retried")


def send(message: EmailMessage, *, mail_server: SmtpServer | None = None) -> Sent:
    """Send ``message`` to its ``To`` addresses. Raises ``MailFailed`` (retry) or ``PermanentError``."""
    at = mail_server or server()
    timeout = settings.get().smtp_timeout_s
    shown = at.shown()
    recipients = [a.strip() for a in str(message["To"]).split(",") if a.strip()]
    try:
        context = _context() if at.encrypted else None
        if at.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(at.host, at.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(at.host, at.port, timeout=timeout)
        with client:
            client.ehlo()
            if at.starttls:
                if not client.has_extn("starttls"):
                    raise PermanentError(f"the mail server {shown} does not offer STARTTLS, which SMTP_URL requires")
                client.starttls(context=context)
                client.ehlo()
            if at.user:
                client.login(at.user, at.password)
            refused = client.send_message(message, to_addrs=recipients)
    except PermanentError:
        raise
    except smtplib.SMTPAuthenticationError as err:
        raise PermanentError(
            f"the mail server {shown} refused SMTP_URL's credentials ({_answer(err, at.password)}); not retried"
        ) from None
    except smtplib.SMTPRecipientsRefused as err:  # every recipient refused: nothing was sent
        answers = {
            addr: f"{code} {msg.decode(errors='replace')}"[:MAX_ANSWER] for addr, (code, msg) in err.recipients.items()
        }
        what = "the mail server refused every recipient: " + "; ".join(f"{a}: {t}" for a, t in answers.items())
        temporary = all(400 <= code < 500 for code, _ in err.recipients.values())
        raise _classify(450 if temporary else 550, what) from None
    except smtplib.SMTPResponseException as err:  # sender refused, data refused, any other answer
        raise _classify(err.smtp_code, f"the mail server {shown} answered {_answer(err, at.password)}") from None
    except smtplib.SMTPNotSupportedError:
        raise PermanentError(f"the mail server {shown} does not support what SMTP_URL asks (AUTH?)") from None
    except ssl.SSLCertVerificationError as err:
        raise PermanentError(
            f"TLS with the mail server {shown}: its certificate does not verify ({err.verify_message}); "
            "set SMTP_CA_FILE for a private certificate authority; not retried"
        ) from None
    except ssl.SSLError as err:
        raise MailFailed(f"TLS with the mail server {shown} failed ({err.__class__.__name__})") from None
    except (OSError, smtplib.SMTPException) as err:
        # refused, reset, timed out, disconnected: the server may be back on the next attempt
        raise MailFailed(f"the mail server {shown} could not be reached ({err.__class__.__name__})") from None
    return Sent(
        accepted=[r for r in recipients if r not in refused],
        refused={addr: f"{code} {msg.decode(errors='replace')}"[:MAX_ANSWER] for addr, (code, msg) in refused.items()},
    )
