"""The ``system`` pool: diagnostic commands for checking a deployment end to end, the schedule
commands, rule notifications (``system.notify``) and HTTP calls to other services (``system.http``)."""

from __future__ import annotations

import time
from typing import Any

from bus import rule_check, rule_store, schedule_store
from bus.errors import PermanentError
from contracts import rules, schedules, system
from workers import http_calls, notifications
from workers.actors import JobContext, handles
from workers.worker_broker import setup

setup()


@handles(system.Noop)
def noop(command: system.Noop, job: JobContext) -> dict[str, Any]:
    return {"echo": command.echo}


@handles(system.Sleep)
def sleep(command: system.Sleep, job: JobContext) -> dict[str, Any]:
    step = command.seconds / command.steps
    for done in range(1, command.steps + 1):
        time.sleep(step)
        job.progress(100.0 * done / command.steps, f"step {done} of {command.steps}")
    return {"slept_s": command.seconds}


class RequestedFailure(Exception):
    pass


@handles(system.Fail)
def fail(command: system.Fail, job: JobContext) -> dict[str, Any]:
    if command.permanent:
        raise PermanentError(command.message)
    if command.succeed_on_attempt is not None and job.attempt >= command.succeed_on_attempt:
        return {"succeeded_on_attempt": job.attempt}
    raise RequestedFailure(command.message)


@handles(schedules.ScheduleSet)
def set_schedule(command: schedules.ScheduleSet, job: JobContext) -> dict[str, Any]:
    try:
        return schedule_store.view(schedule_store.set_schedule(command.schedule))
    except schedule_store.BadSchedule as err:
        raise PermanentError(f"schedule.schedule: {err}") from None


@handles(schedules.ScheduleDelete)
def delete_schedule(command: schedules.ScheduleDelete, job: JobContext) -> dict[str, Any]:
    return {"name": command.name, "deleted": schedule_store.delete(command.name)}


@handles(rules.RuleSet)
def set_rule(command: rules.RuleSet, job: JobContext) -> dict[str, Any]:
    """The checks of ``POST /v1/rules`` (bus/rule_check.py); a refused rule ends the job dead saying why."""
    try:
        row = rule_store.set_rule(command.rule)
    except rule_check.BadRule as err:
        raise PermanentError(f"rule.rule: {err}") from None
    except rule_store.RuleOwned as err:
        raise PermanentError(str(err)) from None
    return {"name": row["name"], "created": row["created"], "enabled": row["enabled"]}


@handles(rules.RuleDelete)
def delete_rule(command: rules.RuleDelete, job: JobContext) -> dict[str, Any]:
    try:
        return {"name": command.name, "deleted": rule_store.delete(command.name)}
    except rule_store.RuleOwned as err:
        raise PermanentError(str(err)) from None


# Retries as every job: MAX_RETRIES with exponential backoff (MIN_BACKOFF_MS .. MAX_BACKOFF_MS) for
# the failures worth retrying; permanent ones (bus/errors.py) end dead at once.
@handles(system.Notify)
def notify(command: system.Notify, job: JobContext) -> dict[str, Any]:
    return notifications.send(command, notify_job_id=job.id, attempt=job.attempt)


@handles(system.Http)
def http(command: system.Http, job: JobContext) -> dict[str, Any]:
    return http_calls.call(command, job_id=job.id)
