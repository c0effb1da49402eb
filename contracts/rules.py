"""Rules: when a job event matches, submit a follow-up command or send a notification.

A rule is written through ``POST /v1/rules``, the bus commands ``rule.set`` / ``rule.delete``, or
the catalog YAML (``rules:``). A follow-up command may take values from the triggering job: any
value ``{"$from": "<JSON Pointer into the job>"}`` (e.g. ``"/result/rows"``) is replaced by what
the pointer names when the rule fires.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from contracts.base import INVISIBLE, CommandBase, Identifier, Model, WebhookUrl

#: a command type (``pipelines.run``), a prefix (``pipelines.*``) or every type (``*``)
TypePattern = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^(\*|[a-z][a-z0-9_.]*(\.\*)?)$")]
EventStatus = Literal["succeeded", "failed", "dead", "cancelled"]
_PART = rf"[^@{INVISIBLE}<>,;\"]+"
EmailAddress = Annotated[str, msgspec.Meta(max_length=254, pattern=rf"^{_PART}@{_PART}\.{_PART}$")]
#: the key of a value that a follow-up command takes from the triggering job
FROM = "$from"


class RuleWhen(Model):
    type: TypePattern
    status: Annotated[list[EventStatus], msgspec.Meta(min_length=1, max_length=4)] = msgspec.field(
        default_factory=lambda: ["succeeded"]
    )
    #: equality tests on the job's result: a field name, or a JSON Pointer into the result
    #: (``/per_series/0/anomalies``), and the value it must equal
    match: Annotated[dict[str, Any], msgspec.Meta(max_length=32)] | None = None


class Notification(Model):
    """A Slack-compatible webhook (``slack``) or an e-mail (``email``): exactly one."""

    slack: WebhookUrl | None = None
    email: Annotated[list[EmailAddress], msgspec.Meta(min_length=1, max_length=50)] | None = None
    subject: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    #: the message; ``$job_id``, ``$type``, ``$status``, ``$rule``, ``$error`` and ``$result``
    #: are replaced (string.Template), default: a line naming the job and how it ended
    text: Annotated[str, msgspec.Meta(max_length=4000)] | None = None

    def __post_init__(self) -> None:
        if (self.slack is None) == (self.email is None):
            raise ValueError("slack: give exactly one of `slack` (a webhook URL) and `email` (addresses)")


class RuleThen(Model):
    """A follow-up command (``command``, checked like any command, ``$from`` values allowed) or a
    notification (``notify``): exactly one."""

    command: Annotated[dict[str, Any], msgspec.Meta(max_length=64)] | None = None
    notify: Notification | None = None

    def __post_init__(self) -> None:
        if (self.command is None) == (self.notify is None):
            raise ValueError("command: give exactly one of `command` and `notify`")


class RuleSpec(Model):
    name: Identifier
    when: RuleWhen
    then: RuleThen
    enabled: bool = True


class RulePatch(Model):
    """A partial update: only the fields given change."""

    when: RuleWhen | None = None
    then: RuleThen | None = None
    enabled: bool | None = None


class RuleSet(CommandBase, tag="rule.set"):
    """Create or atomically replace a rule."""

    rule: RuleSpec


class RuleDelete(CommandBase, tag="rule.delete"):
    name: Identifier


COMMANDS = (RuleSet, RuleDelete)
