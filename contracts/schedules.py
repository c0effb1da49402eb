"""Schedules: a cron expression that makes the ticker emit a command on every slot."""

from __future__ import annotations

from typing import Annotated, Literal, Union

import msgspec

from contracts import cron, forecast, gooddata, metrics, pipelines, system
from contracts.base import CommandBase, Identifier, Model, WebhookUrl

#: every command a schedule may emit (a schedule never emits schedule commands)
SchedulableCommand = Union[  # noqa: UP007 - built from tuples, not written out
    system.COMMANDS + gooddata.COMMANDS + pipelines.COMMANDS + forecast.COMMANDS + metrics.COMMANDS
]

Cron = Annotated[str, msgspec.Meta(max_length=255)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Misfire(Model):
    """What the ticker does with slots it missed while it was down.

    skip: missed slots are dropped; fire_once: one message for the newest missed slot;
    catch_up: every missed slot, at most ``catch_up_limit`` of the newest.
    """

    policy: Literal["skip", "fire_once", "catch_up"] = "skip"
    catch_up_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 10


class Alert(Model):
    """Post a Slack-compatible webhook when a metric crosses a threshold (metrics.compute only)."""

    metric: metrics.MetricName
    webhook_url: WebhookUrl
    below: float | None = None
    above: float | None = None

    def __post_init__(self) -> None:
        if (self.below is None) == (self.above is None):
            raise ValueError("below: set exactly one of `below` and `above`")


class ScheduleSpec(Model):
    name: Identifier
    command: SchedulableCommand
    cron: Cron
    timezone: TimeZone = "UTC"
    misfire: Misfire = msgspec.field(default_factory=Misfire)
    enabled: bool = True
    alert: Alert | None = None

    def __post_init__(self) -> None:
        # "field: reason" lets the decoder report the field's path (contracts/command.py)
        try:
            cron.check(self.cron)
        except ValueError as err:
            raise ValueError(f"cron: {err}") from None
        try:
            cron.check_zone(self.timezone)
        except ValueError as err:
            raise ValueError(f"timezone: {err}") from None
        if self.alert is not None and not isinstance(self.command, metrics.Compute):
            raise ValueError("alert: an alert needs a metrics.compute command")


class SchedulePatch(Model):
    """A partial update: only the fields given change."""

    command: SchedulableCommand | None = None
    cron: Cron | None = None
    timezone: TimeZone | None = None
    misfire: Misfire | None = None
    enabled: bool | None = None
    alert: Alert | None = None


class ScheduleSet(CommandBase, tag="schedule.set"):
    """Create or atomically replace a schedule."""

    schedule: ScheduleSpec


class ScheduleDelete(CommandBase, tag="schedule.delete"):
    name: Identifier


COMMANDS = (ScheduleSet, ScheduleDelete)
