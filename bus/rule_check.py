"""The checks a rule passes before it is written, wherever it comes from: ``POST`` / ``PATCH
/v1/rules``, the bus command ``rule.set``, the catalog; all write through bus/rule_store.py, which
runs ``check`` (the rule alone: it may resolve the webhook's host, so it runs before the rules'
lock is taken) and then, holding the lock, ``check_graph`` (the rule among the enabled ones). A
refusal is a ``BadRule`` naming the field (the API's 422, a ``rule.set`` job's ``dead`` reason).

- ``when.type``: a command type, a prefix of some (``pipelines.*``) or ``*``; never
  ``system.notify`` alone (a notification's end triggers no rule, so such a rule could never fire);
- ``when.match``: a field name, or a valid JSON Pointer into the result;
- ``then.command``: not a control-plane command (``schedule.*``, ``rule.*``, ``system.notify``: a
  rule that writes rules or schedules could grow without bound), valid against its contract with
  each ``$from`` placeholder standing for a value its field accepts (bus/placeholders.py);
- ``then.notify``: a webhook our outbound client would call (bus/outbound.py);
- among the enabled rules, it closes no cycle and makes no chain longer than MAX_CHAIN_DEPTH
  (bus/rule_graph.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from bus import outbound, placeholders, pointer, rule_graph
from contracts import BY_TYPE, InvalidCommand, storable
from contracts.rules import RuleSpec

#: command types a rule may not submit: they change rules and schedules, or are the rule processor's own
CONTROL_PLANE = ("schedule.", "rule.", rule_graph.NOTIFY)


class BadRule(ValueError):
    """A rule its contract accepts but that may not be written (a 422 naming ``path``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} (at {path})")
        self.path = path
        self.message = message


def check(spec: RuleSpec) -> None:
    """Raise ``BadRule`` if ``spec`` may not be written, whatever the other rules are."""
    try:
        storable.check(msgspec.to_builtins(spec))
    except storable.Unstorable as err:
        raise BadRule(err.path, err.message) from None
    _check_when(spec)
    if spec.then.command is not None:
        _check_command(spec.then.command)
    if spec.then.notify is not None and spec.then.notify.slack is not None:
        try:
            outbound.check_destination(spec.then.notify.slack)
        except outbound.Refused as err:
            raise BadRule("$.then.notify.slack", f"the webhook is refused: {err}") from None


def check_graph(spec: RuleSpec, others: Iterable[RuleSpec], max_depth: int) -> None:
    """Raise ``BadRule`` if ``spec``, enabled beside the enabled ``others`` (the rules as they are
    now; one by its name is the rule it replaces), closes a cycle or makes a chain longer than
    ``max_depth``. A disabled rule fires nothing: it is checked when it is enabled."""
    if spec.enabled:
        _check_graph(spec, [r for r in others if r.enabled and r.name != spec.name], max_depth)


def _check_when(spec: RuleSpec) -> None:
    pattern = spec.when.type
    if pattern == rule_graph.NOTIFY:
        raise BadRule("$.when.type", "a notification's end triggers no rule (so it cannot notify about itself)")
    if not any(rule_graph.matches_type(pattern, t) for t in BY_TYPE):
        raise BadRule("$.when.type", f"{pattern!r} matches no command type (see /openapi.json)")
    for key in spec.when.match or {}:
        if key.startswith("/"):
            try:
                pointer.parse(key)
            except pointer.BadPointer as err:
                raise BadRule(placeholders.path_of(("when", "match", key)), str(err)) from None
        elif key == "":
            raise BadRule("$.when.match", "a field name, or a JSON Pointer into the result (/a/0/b)")


def _check_command(command: dict) -> None:  # type: ignore[type-arg]
    kind = command.get("type")
    if isinstance(kind, str) and kind.startswith(CONTROL_PLANE):
        raise BadRule(
            "$.then.command.type",
            f"{kind!r} is a control-plane command: a rule may not submit schedule.*, rule.* or system.notify "
            "(use then.notify for a notification)",
        )
    try:
        placeholders.check_command(command, "$.then.command")
    except (placeholders.BadPlaceholder, InvalidCommand) as err:
        raise BadRule(err.path, err.message) from None


def _check_graph(spec: RuleSpec, enabled: list[RuleSpec], max_depth: int) -> None:
    graph = rule_graph.edges([*enabled, spec])
    try:
        rule_graph.check_acyclic(graph)
    except rule_graph.Cycle as cycle:
        names = cycle.rules[:-1]
        if spec.name in names:  # told from the rule being written
            at = names.index(spec.name)
            names = names[at:] + names[:at]
        raise BadRule(
            "$.then.command.type",
            f"this rule closes a cycle of rules, which would fire without end: {' -> '.join([*names, names[0]])} "
            "(each rule's follow-up matches the next rule's when.type)",
        ) from None
    chain = rule_graph.longest_through(graph, spec.name)
    if len(chain) > max_depth:
        path = "$.then.command.type" if graph[spec.name] else "$.when.type"
        raise BadRule(
            path,
            f"this rule makes a chain of {len(chain)} rules, longer than MAX_CHAIN_DEPTH={max_depth}: "
            + " -> ".join(chain),
        )
