"""Schedules: a cron expression that makes the ticker emit a command on every slot."""

from __future__ import annotations

from typing import Annotated, Literal, Union

import msgspec

from contracts import forecast, gooddata, metrics, pipelines, system
from contracts.base import CommandBase, Identifier, Model

#: every command a schedule may emit (a schedule never emits schedule commands)
SchedulableCommand = Union[  # noqa: UP007 - built from tuples, not written out
    system.COMMANDS + gooddata.COMMANDS + pipelines.COMMANDS + forecast.COMMANDS + metrics.COMMANDS
]

Cron = Annotated[str, msgspec.Meta(min_length=9, max_length=255)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Misfire(Model):
    """What the ticker does with slots it missed while it was down."""

    policy: Literal["skip", "fire_once", "catch_up"] = "skip"
    #: with catch_up: at most this many missed slots are emitted
    catch_up_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 10


class ScheduleSet(CommandBase, tag="schedule.set"):
    """Create or atomically replace the schedule called ``name``."""

    name: Identifier
    command: SchedulableCommand
    cron: Cron  # 5 fields, or 6 with seconds first
    timezone: TimeZone = "UTC"
    misfire: Misfire = msgspec.field(default_factory=Misfire)
    enabled: bool = True


class ScheduleDelete(CommandBase, tag="schedule.delete"):
    name: Identifier


COMMANDS = (ScheduleSet, ScheduleDelete)
