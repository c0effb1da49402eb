"""The rules' pure parts: JSON Pointers, matching, the rule graph, placeholders and their checks."""

from __future__ import annotations

import msgspec
import pytest

from bus import placeholders, pointer, rule_graph
from bus.rule_check import BadRule, check
from contracts import InvalidCommand
from contracts.event import JobEvent
from contracts.rules import RuleSpec
from workers.rules import matching

FROM = "$from"


def as_spec(raw: dict) -> RuleSpec:
    return msgspec.convert(raw, RuleSpec)


def spec(name: str, when: str, then_type: str | None = None, **when_more: object) -> RuleSpec:
    then = {"command": {"type": then_type}} if then_type else {"notify": {"email": ["a@b.co"]}}
    return as_spec({"name": name, "when": {"type": when, **when_more}, "then": then})


def test_json_pointers_as_rfc_6901_reads_them() -> None:
    doc = {"a/b": 1, "m~n": 2, "list": [10, {"x": None}], "": 3}
    assert pointer.resolve(doc, pointer.parse("/a~1b")) == 1
    assert pointer.resolve(doc, pointer.parse("/m~0n")) == 2
    assert pointer.resolve(doc, pointer.parse("/list/1/x")) is None  # a null is a value
    assert pointer.resolve(doc, pointer.parse("/")) == 3
    assert pointer.resolve(doc, pointer.parse("")) == doc
    for missing in ("/list/2", "/list/01", "/list/-", "/nope", "/list/0/x"):
        with pytest.raises(pointer.Missing):
            pointer.resolve(doc, pointer.parse(missing))
    for bad in ("a", "/a~2", "/~"):
        with pytest.raises(pointer.BadPointer):
            pointer.parse(bad)


def test_results_match_as_json_values_compare() -> None:
    assert matching.same(1, 1.0) and not matching.same(True, 1) and not matching.same(0, False)
    assert matching.same({"a": [1, {"b": "c"}]}, {"a": [1.0, {"b": "c"}]})
    assert not matching.same([1, 2], [2, 1]) and not matching.same(None, 0) and not matching.same("1", 1)
    result = {"flagged": True, "per_series": [{"anomaly_count": 2}], "a/b": "x"}
    assert matching.result_matches({"flagged": True, "/per_series/0/anomaly_count": 2}, result)
    assert matching.result_matches({"a/b": "x", "/a~1b": "x"}, result)  # a plain key is one field, even with /
    assert not matching.result_matches({"flagged": 1}, result)
    assert not matching.result_matches({"/per_series/1/anomaly_count": 2}, result)
    assert not matching.result_matches({"flagged": True}, None)
    assert matching.result_matches(None, None) and matching.result_matches({}, "anything")


def event(**more: object) -> JobEvent:
    fields = {
        "id": "e",
        "event": "job.succeeded",
        "job_id": "j",
        "type": "pipelines.run",
        "queue": "pipelines",
        "status": "succeeded",
        "attempt": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        **more,
    }
    return msgspec.convert(fields, JobEvent)


def test_which_rules_an_event_wants() -> None:
    assert matching.wanted(spec("a", "pipelines.*", "system.noop"), event())
    assert matching.wanted(spec("a", "*", "system.noop"), event())
    assert not matching.wanted(spec("a", "pipelines.plan", "system.noop"), event())
    assert not matching.wanted(spec("a", "pipeline.*", "system.noop"), event())
    assert not matching.wanted(spec("a", "pipelines.run", "system.noop", status=["dead"]), event())
    assert not matching.wanted(spec("a", "*"), event(type="system.notify", queue="system"))
    # a summary answers for the top-level scalars it kept; anything else needs the job
    cut = event(result={"rows": 3}, result_truncated=True)
    assert matching.summary_suffices(spec("a", "*", match={"rows": 3}), cut)
    assert not matching.summary_suffices(spec("a", "*", match={"nodes": []}), cut)
    assert not matching.summary_suffices(spec("a", "*", match={"/rows": 3}), cut)
    assert matching.summary_suffices(spec("a", "*", match={"/rows": 3}), event(result={"rows": 3}))


def test_type_patterns() -> None:
    assert rule_graph.matches_type("system.*", "system.noop")
    assert rule_graph.matches_type("gooddata.workspace.*", "gooddata.workspace.create")
    assert not rule_graph.matches_type("gooddata.workspace.*", "gooddata.export.dashboard")
    assert not rule_graph.matches_type("system.*", "system")
    assert not rule_graph.matches_type("*", "system.notify") and not rule_graph.matches_type(
        "system.*", "system.notify"
    )


def test_the_graph_finds_cycles_and_the_longest_chain() -> None:
    rules = [spec("a", "system.noop", "system.sleep"), spec("b", "system.sleep", "system.fail"), spec("n", "*")]
    graph = rule_graph.edges(rules)
    assert graph == {"a": {"b", "n"}, "b": {"n"}, "n": set()}  # a notification triggers nothing
    rule_graph.check_acyclic(graph)
    assert rule_graph.longest_through(graph, "b") == ["a", "b", "n"]
    closing = rule_graph.edges([*rules, spec("c", "system.fail", "system.noop")])
    with pytest.raises(rule_graph.Cycle) as cycle:
        rule_graph.check_acyclic(closing)
    assert len(cycle.value.rules) == 4 and cycle.value.rules[0] == cycle.value.rules[-1]
    with pytest.raises(rule_graph.Cycle):
        rule_graph.check_acyclic(rule_graph.edges([spec("self", "system.*", "system.noop")]))


@pytest.mark.parametrize(
    "command",
    [
        {"type": "system.sleep", "seconds": {FROM: "/result/s"}, "steps": {FROM: "/result/n"}},
        {"type": "pipelines.run", "pipeline_id": "p", "mode": {FROM: "/result/mode"}},
        {"type": "pipelines.run", "pipeline_id": "p", "mode": "rerun", "start": {FROM: "/result/day"}},
        {"type": "metrics.compute", "model_id": {FROM: "/command/model_id"}, "metrics": [{FROM: "/result/m"}]},
        {"type": "forecast.forecast", "prediction_length": 3, "source": {FROM: "/result/source"}},
        {"type": "system.http", "url": "https://example.com/", "body": {"rows": {FROM: "/result/rows"}}},
        {"type": "gooddata.workspace.create", "workspace_id": {FROM: "/result/id"}, "parent_id": "demo"},
    ],
)
def test_a_placeholder_stands_for_any_value_its_field_takes(command: dict) -> None:
    assert placeholders.check_command(command, "$.then.command")


@pytest.mark.parametrize(
    ("command", "path", "fragment"),
    [
        ({"type": "system.sleep", "seconds": {FROM: "/result/s"}, "steps": 0}, "$.then.command.steps", ">= 1"),
        ({"type": "system.sleep", "seconds": {FROM: "/result/s"}, "nope": 1}, "$.then.command", "unknown field"),
        ({"type": {FROM: "/result/type"}}, "$.then.command.type", "no value"),
        ({"type": "system.noop", "echo": {FROM: "/result", "more": 1}}, "$.then.command.echo", "one key"),
        ({"type": "system.noop", "echo": {FROM: "/followed_by/0"}}, "$.then.command.echo", "starts with one of"),
        ({"type": "system.noop", "echo": {FROM: 7}}, '$.then.command.echo["$from"]', "a string"),
    ],
)
def test_a_command_with_placeholders_is_refused_naming_the_field(command: dict, path: str, fragment: str) -> None:
    with pytest.raises((placeholders.BadPlaceholder, InvalidCommand)) as caught:
        placeholders.check_command(command, "$.then.command")
    assert caught.value.path == path and fragment in caught.value.message  # type: ignore[union-attr]


def test_substitution_takes_values_from_the_job_at_any_depth() -> None:
    job = {"id": "j1", "result": {"rows": [1, 2], "name": "x"}, "command": {"pipeline_id": "p"}}
    command = {"type": "system.http", "body": {"ids": [{FROM: "/id"}], "rows": {FROM: "/result/rows"}}}
    assert placeholders.substitute(command, job) == {"type": "system.http", "body": {"ids": ["j1"], "rows": [1, 2]}}
    with pytest.raises(pointer.Missing) as missing:
        placeholders.substitute({"x": {FROM: "/result/none"}}, job)
    assert str(missing.value) == "/result/none"


def test_the_rule_alone_is_checked_whatever_the_others_are() -> None:
    check(
        as_spec(
            {
                "name": "ok",
                "when": {"type": "system.*"},
                "then": {"command": {"type": "pipelines.plan", "pipeline_id": "x"}},
            }
        )
    )
    for raw, path in (
        ({"name": "r", "when": {"type": "nothing.at.all"}, "then": {"notify": {"email": ["a@b.co"]}}}, "$.when.type"),
        ({"name": "r", "when": {"type": "system.notify"}, "then": {"notify": {"email": ["a@b.co"]}}}, "$.when.type"),
        (
            {"name": "r", "when": {"type": "*"}, "then": {"command": {"type": "rule.set", "rule": {}}}},
            "$.then.command.type",
        ),
        (
            {"name": "r", "when": {"type": "*", "match": {"/~": 1}}, "then": {"notify": {"email": ["a@b.co"]}}},
            '$.when.match["/~"]',
        ),
    ):
        with pytest.raises(BadRule) as caught:
            check(as_spec(raw))
        assert caught.value.path == path
