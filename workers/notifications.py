"""Rule notifications (``system.notify``): a Slack-compatible webhook or an e-mail about a job's end.

The rule processor submits ``system.notify {rule, job_id, status}`` when a rule with
``then.notify`` fires. The destination is read from the rule here, when the message is sent, so
no job record holds a webhook URL (a secret). The job is the delivery's record: its result says
the channel, where it went (a webhook's host only; the recipients), the attempt that delivered it
and when; a failure is its error. Retryable failures (bus/webhooks.py, bus/mailer.py) are retried
with the pool's backoff; permanent ones end the job dead at once.

Delivery is at least once: a redelivered notify job that already succeeded is skipped by the
lifecycle, but a worker killed between the send and the recorded finish sends again. So every
message carries the notify job's id: the webhook's ``Idempotency-Key`` header and payload
``notification_id``, the e-mail's ``Message-ID``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from string import Template
from typing import Any

from bus import mailer, rule_store, webhooks
from bus.errors import PermanentError
from bus.jobstore import shared
from contracts import Job
from contracts.event import summarize
from contracts.rules import Notification
from contracts.system import Notify

log = logging.getLogger(__name__)

#: the first line of a message when the rule gives no ``text``
DEFAULT_TEXT = "$type $status: job $job_id (rule $rule)"
DEFAULT_SUBJECT = "[switchyard] $type $status: $job_id"
#: how much of a job's result ``$result`` shows, and of its error ``$error``
RESULT_CHARS = 500
ERROR_CHARS = 1000


def values(command: Notify, job: Job) -> dict[str, str]:
    """What a template's ``$names`` stand for."""
    result = "" if job.result is None else json.dumps(summarize(job.result)[0], separators=(",", ":"), default=str)
    if len(result) > RESULT_CHARS:
        result = result[:RESULT_CHARS] + "…"
    error = "" if job.error is None else f"{job.error.type}: {job.error.message}"[:ERROR_CHARS]
    return {
        "job_id": job.id,
        "type": job.type,
        "status": command.status,
        "rule": command.rule,
        "error": error,
        "result": result,
    }


def render(template: str | None, default: str, names: dict[str, str]) -> str:
    """The template with its ``$names`` replaced; unknown ones stay as written (safe_substitute)."""
    return Template(template or default).safe_substitute(names)


def _slack_escaped(names: dict[str, str]) -> dict[str, str]:
    """Slack reads ``<…>`` as links and mentions (``<!channel>``): a job's values are escaped as its
    documentation says, so a result cannot ping a channel; the rule's own text is left as written."""
    return {k: v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for k, v in names.items()}


def slack_payload(command: Notify, job: Job, notification: Notification, notification_id: str) -> dict[str, Any]:
    names = values(command, job)
    text = render(notification.text, DEFAULT_TEXT, _slack_escaped(names))
    if notification.text is None and names["error"]:
        text += "\n" + _slack_escaped(names)["error"]
    return {
        "text": text,
        "rule": command.rule,
        "job_id": job.id,
        "type": job.type,
        "queue": job.queue,
        "status": command.status,
        "attempts": job.attempts,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": None if job.error is None else {"type": job.error.type, "message": job.error.message},
        "result": summarize(job.result)[0],
        "notification_id": notification_id,
    }


def email_body(command: Notify, job: Job, notification: Notification) -> tuple[str, str]:
    """(subject, plain text): the rule's text, then a summary of the job without links (the
    dashboard's address is not known here, and a mail with links reads as phishing)."""
    names = values(command, job)
    subject = render(notification.subject, DEFAULT_SUBJECT, names)
    lines = [render(notification.text, DEFAULT_TEXT, names), ""]
    lines += [
        f"Job:      {job.id}",
        f"Type:     {job.type}",
        f"Status:   {command.status}",
        f"Rule:     {command.rule}",
    ]
    lines.append(f"Attempts: {job.attempts}")
    if job.finished_at is not None:
        lines.append(f"Finished: {job.finished_at.astimezone(dt.UTC).isoformat(timespec='seconds')}")
    if names["error"]:
        lines.append(f"Error:    {names['error']}")
    if names["result"]:
        lines.append(f"Result:   {names['result']}")
    lines += ["", "-- ", "Sent by switchyard because of the rule named above."]
    return subject, "\n".join(lines) + "\n"


def _load(command: Notify) -> tuple[Notification, Job]:
    rule = rule_store.get(command.rule)
    if rule is None:
        raise PermanentError(f"rule {command.rule!r} does not exist (deleted since it fired): nothing sent")
    if rule.then.notify is None:
        raise PermanentError(f"rule {command.rule!r} no longer notifies (its `then` is a command): nothing sent")
    if not rule.enabled:
        raise PermanentError(f"rule {command.rule!r} is disabled: nothing sent")
    job = shared().get(command.job_id)
    if job is None:
        raise PermanentError(f"job {command.job_id!r} does not exist (deleted by retention?): nothing sent")
    return rule.then.notify, job


def send(command: Notify, *, notify_job_id: str, attempt: int) -> dict[str, Any]:
    """Deliver the notification; the delivery's record (the job's result)."""
    notification, job = _load(command)
    if notification.slack is not None:
        status = webhooks.post(
            notification.slack,
            slack_payload(command, job, notification, notify_job_id),
            idempotency_key=notify_job_id,
        )
        record: dict[str, Any] = {"channel": "slack", "destination": webhooks.host_of(notification.slack)}
        record["answered"] = status
    else:
        assert notification.email is not None  # the contract holds exactly one of the two
        subject, text = email_body(command, job, notification)
        message = mailer.compose(to=list(notification.email), subject=subject, text=text, message_id=notify_job_id)
        sent = mailer.send(message)
        record = {"channel": "email", "recipients": sent.accepted, "subject": str(message["Subject"])}
        if sent.refused:
            record["refused"] = sent.refused
    record |= {
        "rule": command.rule,
        "job_id": command.job_id,
        "attempts": attempt,
        "delivered_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    log.info("notification of rule %s about job %s sent by %s", command.rule, command.job_id, record["channel"])
    return record
