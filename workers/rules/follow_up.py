"""What a rule does when an event matches it: submit its follow-up, exactly once.

The follow-up's job id is derived from (rule, event id) (its idempotency key is
``rule:<name>:<event id>``, bus/submission.py), and the event id from (job, attempt, status)
(contracts/event.py). The follow-up job and the firing's row are inserted in one transaction, each
``ON CONFLICT DO NOTHING``; the message is sent after the commit. So an event delivered twice, or
handled by two rule processors at once, makes one follow-up; a processor killed between the commit
and the send leaves a queued job whose message the ticker's sweeper sends (workers/sweeper.py). A
job that fails twice fires a ``failed`` rule twice, once for each attempt: two events.

A firing that submits nothing is recorded too, with its reason, and logged in one line:
``stopped`` when the triggering job is MAX_CHAIN_DEPTH firings deep (a chain cut at run time, e.g.
rules written in two places at once, or a message published with a chain_depth), ``failed`` when a
``$from`` pointer names nothing in the job or the command it makes breaks its contract.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import msgspec

from bus import broker_adapter, db, placeholders, pointer, rule_store, settings
from bus.jobstore import SQL as JOBS
from bus.jobstore import to_job
from bus.submission import Submission, prepare, record
from contracts import InvalidCommand, convert, system
from contracts.event import JobEvent
from contracts.rules import RuleSpec
from workers.rules import matching

log = logging.getLogger(__name__)


def idempotency_key(rule: str, event_id: str) -> str:
    """The follow-up's idempotency key, from which its job id is derived."""
    return f"rule:{rule}:{event_id}"


class Triggering:
    """The triggering job as a pointer sees it: read from Postgres once, when a rule needs more than
    the event carries, with the event's own status, attempt, result and error over the row's (the
    row may have moved on since)."""

    def __init__(self, event: JobEvent) -> None:
        self.event = event
        self._document: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        if self._document is None:
            with db.pool().connection() as conn:
                row = conn.execute(JOBS["get"], {"id": self.event.job_id}).fetchone()
            job = msgspec.to_builtins(to_job(row)) if row is not None else {}
            job.update({"id": self.event.job_id, "type": self.event.type, "queue": self.event.queue})
            job.update({"status": str(self.event.status), "attempts": self.event.attempt})
            if not self.event.result_truncated:
                job["result"] = self.event.result
            if self.event.error is not None:
                job["error"] = msgspec.to_builtins(self.event.error)
            job.pop("followed_by", None)
            self._document = job
        return self._document

    def result(self, spec: RuleSpec) -> Any:
        if matching.summary_suffices(spec, self.event):
            return self.event.result
        return self.document().get("result")


def handle(event: JobEvent, rules: list[RuleSpec], broker: dramatiq.Broker) -> int:
    """Fire every rule ``event`` matches; how many follow-ups were submitted now."""
    job = Triggering(event)
    submitted = 0
    for spec in rules:
        if matching.wanted(spec, event) and matching.result_matches(spec.when.match, job.result(spec)):
            submitted += fire(spec, job, broker)
    return submitted


def fire(spec: RuleSpec, job: Triggering, broker: dramatiq.Broker) -> int:
    event = job.event
    depth = event.chain_depth
    limit = settings.get().max_chain_depth
    if depth >= limit:
        return _refused(
            spec, event, "stopped", f"job {event.job_id} is {depth} rule firings deep (MAX_CHAIN_DEPTH={limit})"
        )
    try:
        command = _command(spec, job)
    except pointer.Missing as missing:
        return _refused(spec, event, "failed", f"$from {missing} names nothing in job {event.job_id}")
    except InvalidCommand as err:
        return _refused(spec, event, "failed", f"the follow-up command is invalid: {err.message} (at {err.path})")
    origin = {"caused_by": event.job_id, "rule": spec.name, "chain_depth": depth + 1}
    sub = prepare(command, idempotency_key=idempotency_key(spec.name, event.id), origin=origin)
    with db.pool().connection() as conn, conn.transaction():
        created = record(conn, sub)
        rule_store.record_firing(
            conn, rule=spec.name, event_id=event.id, job_id=event.job_id, outcome="submitted", follow_up_id=sub.job_id
        )
    if not created:
        return 0  # submitted before: this event was delivered again, or another processor had it
    _send(broker, sub)
    return 1


def _command(spec: RuleSpec, job: Triggering) -> Any:
    event = job.event
    if spec.then.notify is not None:
        return system.Notify(rule=spec.name, job_id=event.job_id, status=str(event.status))  # type: ignore[arg-type]
    raw = spec.then.command
    if placeholders.find(raw):
        raw = placeholders.substitute(raw, job.document())
    return convert(raw, "$.then.command")


def _send(broker: dramatiq.Broker, sub: Submission) -> None:
    try:
        broker_adapter.enqueue(broker, sub.message())
    except Exception as err:  # noqa: BLE001 - the job is recorded: the sweeper sends it
        log.warning("follow-up %s recorded, not sent (%s): the sweeper sends it", sub.job_id, type(err).__name__)
        return
    with db.pool().connection() as conn:
        conn.execute(JOBS["mark_enqueued"], {"ids": [sub.job_id]})


def _refused(spec: RuleSpec, event: JobEvent, outcome: str, reason: str) -> int:
    with db.pool().connection() as conn, conn.transaction():
        new = rule_store.record_firing(
            conn, rule=spec.name, event_id=event.id, job_id=event.job_id, outcome=outcome, reason=reason
        )
    if new:
        log.warning("rule %s on event %s (%s): %s, no follow-up: %s", spec.name, event.id, event.event, outcome, reason)
    return 0
