"""The JSON Schemas of /openapi.json: the contracts' own (msgspec), plus what the server enforces beyond them.

msgspec states the types and ranges. The server also refuses, at the edge:

- what the job store cannot keep (contracts/storable.py): NUL in any string or key, dates outside
  the years 1000 to 8999. Every string of a request gets a pattern without NUL, every date a year;
- cron expressions and time zones it cannot read (contracts/cron.py): a pattern, an enum;
- rules between fields, stated here where JSON Schema can (exactly one of ``below``/``above``, a
  rerun's window, ...) and in words where it cannot (an id used twice in one list, a provision's
  target equal to its source, a series too short for its horizon): these answer 422 naming the field.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

import msgspec

from contracts.cron import DOCUMENTED_PATTERN as CRON
from contracts.forecast import MIN_ANOMALY_POINTS, MIN_FIT_POINTS
from contracts.schema import command_schema

#: a string the job store can keep
NO_NUL = "^[^\\x00]*$"
#: a date (or date-time) the job store keeps: the years 1000 to 8999 (contracts/storable.py)
STORED_YEAR = "^[1-8][0-9]{3}-"
REF = "#/components/schemas/"
#: a series' start as contracts/forecast.py parses it (its own pattern only shapes it): a date within
#: the forecast pool's timestamps (from 1678, pandas' nanoseconds; the document stops at 2199, the
#: series must also end before 2262), optionally a time and an offset
SERIES_START = (
    "^(?:167[89]|16[89][0-9]|1[7-9][0-9]{2}|2[01][0-9]{2})-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    "(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,6})?)?(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9])?)?$"
)
CRON_SCHEMA = {
    "type": "string",
    "maxLength": 255,
    "pattern": CRON,
    "description": "5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; each a "
    "list of values, ranges (a-b), * and steps (/n)",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


@functools.cache
def zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def request_schemas() -> dict[str, Any]:
    """Every schema a request body may use: commands, schedules and what they are made of."""
    from contracts.rules import RulePatch
    from contracts.schedules import SchedulePatch, ScheduleSpec

    parts = command_schema()
    schemas = dict(parts["defs"])
    schemas["Command"] = parts["command"]
    _, defs = msgspec.json.schema_components([ScheduleSpec, SchedulePatch, RulePatch], ref_template="#/$defs/{name}")
    schemas.update(defs)
    schemas = _rewrite_refs(schemas)
    schemas.pop("Job", None)  # a response, below
    for name in list(schemas):
        schemas[name] = _storable(schemas[name])
    _between_fields(schemas)
    _rule_bodies(schemas)
    schemas["StorableValue"] = {
        "description": "any JSON value the job store can keep: no NUL in a string or a key",
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": ref("StorableValue")},
            ref("StorableObject"),
        ],
    }
    schemas["StorableObject"] = {
        "type": "object",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": ref("StorableValue"),
    }
    return schemas


def response_schemas() -> dict[str, Any]:
    from bus.rejections import Rejected

    parts = command_schema()
    _, rejected = msgspec.json.schema_components([Rejected], ref_template="#/$defs/{name}")
    wanted = ("Job", "JobStatus", "Progress", "JobError")
    schemas = {name: parts["defs"][name] for name in wanted}
    schemas["RejectedMessage"] = rejected["Rejected"]
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {}},
    }
    firing = {
        "type": "object",
        "required": ["event_id", "job_id", "follow_up_id", "outcome", "reason", "fired_at"],
        "properties": {
            "event_id": {"type": "string"},
            "job_id": {"type": "string", "description": "the triggering job"},
            "follow_up_id": {"type": ["string", "null"], "description": "the job the rule submitted"},
            "outcome": {"enum": ["submitted", "stopped", "failed"]},
            "reason": {"type": ["string", "null"], "description": "why nothing was submitted"},
            "fired_at": {"type": "string", "format": "date-time"},
        },
    }
    schemas["Rule"] = {
        "type": "object",
        "required": ["name", "when", "then", "enabled", "source", "created_at", "updated_at", "last_firings"],
        "properties": {
            "name": {"type": "string"},
            "when": {"type": "object"},
            "then": {"type": "object"},
            "enabled": {"type": "boolean"},
            "source": {"enum": ["api", "catalog"]},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "last_firings": {"type": "array", "items": firing},
        },
    }
    schemas["Accepted"] = {
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": ref("JobStatus"),
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    return _rewrite_refs(schemas)


def _storable(node: Any) -> Any:
    """``node`` with the job store's limits on every string, key and date in it."""
    if isinstance(node, list):
        return [_storable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _storable(v) if k != "enum" else v for k, v in node.items()}
    if node.get("type") == "string":
        if node.get("format") in ("date", "date-time"):
            node.setdefault("pattern", STORED_YEAR)
        elif not {"pattern", "enum", "const", "format"} & node.keys():
            node["pattern"] = NO_NUL
    if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
        return ref("StorableObject") | ({"description": node["description"]} if "description" in node else {})
    return node


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` less its null branch (and its default of null)."""
    rest = [s for s in schema["anyOf"] if s.get("type") != "null"]
    kept = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return rest[0] | kept if len(rest) == 1 else {**kept, "anyOf": rest}


def _nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"anyOf": [{"type": kind, **more}, {"type": "null"}]}


def _one_of(first: str, second: str, kind: str) -> list[dict[str, Any]]:
    """Exactly one of two fields set (not null): a pair of branches that exclude each other."""
    return [
        {"properties": {first: {"type": kind}, second: {"type": "null"}}, "required": [first]},
        {"properties": {second: {"type": kind}, first: {"type": "null"}}, "required": [second]},
    ]


def _between_fields(schemas: dict[str, Any]) -> None:
    """The contracts' checks between fields (their ``__post_init__``), in JSON Schema where it can say them."""

    def add(name: str, description: str | None = None, **keywords: Any) -> None:
        schema = schemas[name]
        schema.update(keywords)
        if description:
            schema["description"] = (schema.get("description", "") + "\n\n" + description).strip()

    # a change sets the fields it gives; null is a value only for alert (null removes it)
    patch = schemas["SchedulePatch"]["properties"]
    for field in ("command", "misfire", "enabled"):
        patch[field] = _not_null(patch[field])
    zone = {"type": "string", "enum": zones(), "description": "an IANA time zone"}
    schemas["ScheduleSpec"]["properties"] |= {"cron": CRON_SCHEMA, "timezone": {**zone, "default": "UTC"}}
    patch |= {"cron": CRON_SCHEMA, "timezone": zone}
    add(
        "ScheduleSpec",
        "An alert needs a metrics.compute command. A cron firing more often than the deployment's "
        "MIN_SCHEDULE_INTERVAL_S, a cron that never fires (0 0 30 2 *: February 30th) and a webhook pointing "
        "at a private address are refused with 422 naming the field.",
        **{
            "if": {"properties": {"alert": {"type": "object"}}, "required": ["alert"]},
            "then": {"properties": {"command": ref("Compute")}},
        },
    )
    add("Alert", "Exactly one of below and above.", anyOf=_one_of("below", "above", "number"))
    add("Ingest", "Exactly one of rows and staged.", anyOf=_one_of("rows", "staged", "array"))
    schemas["Ingest"]["anyOf"][1]["properties"]["staged"] = {"type": "string"}
    add(
        "Window",
        "last_n or since, not both.",
        **{
            "not": {
                "properties": {"last_n": {"type": "integer"}, "since": {"type": "string"}},
                "required": ["last_n", "since"],
            }
        },
    )
    add(
        "Setup",
        "drop_before_create deletes the tables' data: it needs confirm_drop too.",
        **{
            "if": {"properties": {"drop_before_create": {"const": True}}, "required": ["drop_before_create"]},
            "then": {"properties": {"confirm_drop": {"const": True}}, "required": ["confirm_drop"]},
        },
    )
    add(
        "Run",
        "A rerun needs start (end defaults to it and may not be before it); an incremental run takes neither.",
        **{
            "if": {"properties": {"mode": {"const": "rerun"}}, "required": ["mode"]},
            "then": {"properties": {"start": {"type": "string"}}, "required": ["start"]},
            "else": {"properties": {"start": {"type": "null"}, "end": {"type": "null"}}},
        },
    )
    schemas["Series"]["properties"]["start"]["pattern"] = SERIES_START
    add("Series", "Its values, one freq apart from start, end before 2262 (the forecast pool's timestamps).")
    since = {"type": "string", "format": "date-time", "pattern": STORED_YEAR}
    schemas["Window"]["properties"]["since"] = {"anyOf": [since, {"type": "null"}], "default": None}
    schemas["Forecast"]["properties"]["quantiles"]["uniqueItems"] = True
    add(
        "Forecast",
        f"The local backend fits on at least {MIN_FIT_POINTS} points (context_length). An inline series "
        "needs prediction_length + max(prediction_length, 8) values (the last prediction_length are held "
        "out for the backtest); its series_id appear once and its series share one freq.",
        **{
            "if": {"properties": {"backend": {"const": "sagemaker"}}, "required": ["backend"]},
            "else": {"properties": {"context_length": _nullable("integer", minimum=MIN_FIT_POINTS)}},
        },
    )
    add(
        "Anomalies",
        f"An inline series needs at least {MIN_ANOMALY_POINTS} values; its series_id appear once and its "
        "series share one freq.",
        properties={
            **schemas["Anomalies"]["properties"],
            "source": {
                **schemas["Anomalies"]["properties"]["source"],
                "if": {"properties": {"kind": {"const": "inline"}}, "required": ["kind"]},
                "then": {
                    "properties": {"series": {"items": {"properties": {"values": {"minItems": MIN_ANOMALY_POINTS}}}}}
                },
            },
        },
    )
    add(
        "Http",
        "A GET or DELETE request sends no body. The URL is called through the outbound client: an address "
        "of our own network (loopback, private, link-local) unless OUTBOUND_ALLOW lists it ends the job dead.",
        **{
            "if": {"properties": {"method": {"enum": ["GET", "DELETE"]}}, "required": ["method"]},
            "then": {"properties": {"body": {"type": "null"}}},
        },
    )
    add("WorkspaceProvision", "target_id must differ from source_id: the source is never written.")
    add("WorkspaceSync", "Each workspace_id appears once.")
    add("RuleThen", "Exactly one of command and notify.", anyOf=_one_of("command", "notify", "object"))
    add("Notification", "Exactly one of slack and email.")
    schemas["Notification"]["anyOf"] = [
        {"properties": {"slack": {"type": "string"}, "email": {"type": "null"}}, "required": ["slack"]},
        {"properties": {"email": {"type": "array"}, "slack": {"type": "null"}}, "required": ["email"]},
    ]


#: a ``when.match`` key: a field name, or a JSON Pointer (``~`` escaped as ``~0`` and ``~1``); no NUL
MATCH_KEY = "^(?:[^/\\x00][^\\x00]*|(?:/(?:[^~/\\x00]|~[01])*)+)$"


def _rule_bodies(schemas: dict[str, Any]) -> None:
    """What ``POST`` / ``PATCH /v1/rules`` take: a rule (``RuleSpec``, as ``rule.set`` carries it) less
    what the API refuses at the door (bus/rule_check.py): a ``when.type`` that matches no command
    type, a follow-up that is a control-plane command or no command at all."""
    from bus.rule_check import CONTROL_PLANE
    from bus.rule_graph import NOTIFY
    from contracts import BY_TYPE

    types = [t for t in BY_TYPE if t != NOTIFY]
    prefixes = {".".join(t.split(".")[:i]) + ".*" for t in types for i in range(1, t.count(".") + 1)}
    command = schemas["Command"]
    allowed = {k: v for k, v in command["discriminator"]["mapping"].items() if not k.startswith(CONTROL_PLANE)}
    schemas["RuleCommand"] = {
        "description": "The follow-up: any command but the control plane's (schedule.*, rule.*, system.notify). "
        'Any value in it may instead be {"$from": "<JSON Pointer into the triggering job>"} (e.g. /result/rows), '
        "its first step a Job field; checked when the rule is written, the command valid with each placeholder "
        "standing for a value its field accepts.",
        "anyOf": [{"$ref": ref} for ref in allowed.values()],
        "discriminator": {**command["discriminator"], "mapping": allowed},
    }
    when = schemas["RuleWhen"]
    schemas["RuleWhenBody"] = {
        **when,
        "title": "RuleWhenBody",
        "properties": {
            **when["properties"],
            "type": {
                "type": "string",
                "enum": sorted({*types, *prefixes, "*"}),
                "description": "a command type, a prefix of some (pipelines.*) or * (system.notify triggers no rule)",
            },
            "match": {
                "anyOf": [
                    {
                        "type": "object",
                        "maxProperties": 32,
                        "propertyNames": {"pattern": MATCH_KEY},
                        "additionalProperties": ref("StorableValue"),
                        "description": "result field (or JSON Pointer into the result) -> the value it must equal",
                    },
                    {"type": "null"},
                ],
                "default": None,
            },
        },
    }
    then = schemas["RuleThen"]
    schemas["RuleThenBody"] = {
        **then,
        "title": "RuleThenBody",
        "properties": {
            **then["properties"],
            "command": {"anyOf": [ref("RuleCommand"), {"type": "null"}], "default": None},
        },
    }
    spec = schemas["RuleSpec"]
    schemas["RuleBody"] = {
        **spec,
        "title": "RuleBody",
        "description": "A rule. Refused with 422 naming the field besides what the schema says: one that closes a "
        "cycle of enabled rules (its follow-up matching its own when.type included) or makes a chain longer than "
        "MAX_CHAIN_DEPTH, a webhook pointing at a private address, a placeholder no value fits.",
        "properties": {**spec["properties"], "when": ref("RuleWhenBody"), "then": ref("RuleThenBody")},
    }
    patch = schemas["RulePatch"]["properties"]
    patch["when"] = ref("RuleWhenBody")
    patch["then"] = ref("RuleThenBody")
    patch["enabled"] = _not_null(patch["enabled"])


def _rewrite_refs(node: Any) -> Any:
    """msgspec writes #/$defs/X (in $ref and discriminator mappings); OpenAPI wants #/components/schemas/X."""
    if isinstance(node, dict):
        return {k: _rewrite_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    if isinstance(node, str) and node.startswith("#/$defs/"):
        return REF + node.removeprefix("#/$defs/")
    return node
