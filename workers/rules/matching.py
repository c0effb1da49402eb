"""Which rules a job event matches: its type (exact, ``prefix.*``, ``*``), its status, and the
equality tests of ``when.match`` on the job's result.

A ``match`` key is a field of the result (``flagged``) or a JSON Pointer into it
(``/per_series/0/anomaly_count``); the value found must equal the rule's as JSON values are equal:
``true`` is not ``1``, ``1`` is ``1.0``, objects and arrays compare member by member. A key that
names nothing does not match.
"""

from __future__ import annotations

from typing import Any

from bus import pointer
from bus.rule_graph import matches_type
from contracts.event import JobEvent
from contracts.rules import RuleSpec


def wanted(spec: RuleSpec, event: JobEvent) -> bool:
    """The rule listens for this event's type and status (its ``match`` is tested on the result)."""
    return matches_type(spec.when.type, event.type) and str(event.status) in spec.when.status


def summary_suffices(spec: RuleSpec, event: JobEvent) -> bool:
    """Whether the event's result is enough to test ``match``: a summary (a large result's top-level
    scalars) answers only for the fields it kept."""
    if not spec.when.match or not event.result_truncated:
        return True
    kept = event.result if isinstance(event.result, dict) else {}
    return all(not key.startswith("/") and key in kept for key in spec.when.match)


def result_matches(match: dict[str, Any] | None, result: Any) -> bool:
    for key, expected in (match or {}).items():
        try:
            found = pointer.resolve(result, pointer.parse(key) if key.startswith("/") else [key])
        except pointer.Missing:
            return False
        if not same(found, expected):
            return False
    return True


def same(a: Any, b: Any) -> bool:
    """JSON equality: a boolean equals only a boolean; numbers by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
