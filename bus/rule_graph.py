"""The graph of enabled rules: which rule's follow-up can trigger which rule.

An edge A -> B when the type of A's follow-up command matches B's ``when.type`` (whatever B's
statuses and ``match``: the follow-up may end any way and hold any result). A notification rule
has no outgoing edge: a ``system.notify`` job's end triggers no rule. So a rule that closes a cycle
(one that matches its own follow-up included) could fire forever, and a path of n rules makes a
chain n follow-ups deep: both are refused when a rule is written.
"""

from __future__ import annotations

import functools
import graphlib
from collections.abc import Iterable

from contracts.rules import RuleSpec

#: the type whose jobs trigger no rule (contracts/system.py Notify)
NOTIFY = "system.notify"


def matches_type(pattern: str, type_: str) -> bool:
    """``pipelines.run`` matches itself, ``pipelines.*`` and ``*``; never a notification's type."""
    if type_ == NOTIFY:
        return False
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return type_.startswith(pattern[:-1])
    return pattern == type_


def follow_up_type(spec: RuleSpec) -> str | None:
    command = spec.then.command
    return command.get("type") if isinstance(command, dict) and isinstance(command.get("type"), str) else None


def edges(rules: Iterable[RuleSpec]) -> dict[str, set[str]]:
    """rule -> the rules its follow-up can trigger."""
    listed = list(rules)
    graph: dict[str, set[str]] = {}
    for a in listed:
        made = follow_up_type(a)
        graph[a.name] = {b.name for b in listed if made is not None and matches_type(b.when.type, made)}
    return graph


class Cycle(ValueError):
    def __init__(self, rules: list[str]) -> None:
        super().__init__(" -> ".join(rules))
        self.rules = rules


def check_acyclic(graph: dict[str, set[str]]) -> None:
    """Raise ``Cycle`` naming one cycle (its first rule again at the end)."""
    # TopologicalSorter takes predecessors; the cycle it reports runs backwards along our edges
    predecessors: dict[str, set[str]] = {name: set() for name in graph}
    for a, targets in graph.items():
        for b in targets:
            predecessors.setdefault(b, set()).add(a)
    try:
        graphlib.TopologicalSorter(predecessors).prepare()
    except graphlib.CycleError as err:
        raise Cycle(list(reversed(err.args[1]))) from None


def longest_through(graph: dict[str, set[str]], name: str) -> list[str]:
    """The longest path of rules through ``name`` (the graph has no cycle)."""
    incoming: dict[str, set[str]] = {n: set() for n in graph}
    for a, targets in graph.items():
        for b in targets:
            incoming[b].add(a)

    @functools.cache
    def down(node: str) -> tuple[str, ...]:
        return max(((node, *down(b)) for b in sorted(graph[node])), key=len, default=(node,))

    @functools.cache
    def up(node: str) -> tuple[str, ...]:
        return max(((*up(a), node) for a in sorted(incoming[node])), key=len, default=(node,))

    return [*up(name), *down(name)[1:]]
