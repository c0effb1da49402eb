"""JSON Schema of the wire format, generated from the contracts.

``python -m contracts.schema`` rewrites ``contracts/schema.json``; a test fails when
the committed file differs from what the code generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from contracts.base import SCHEMA_VERSION
from contracts.command import QUEUES, ROUTES, Command
from contracts.job import Job

PATH = Path(__file__).with_name("schema.json")


def command_schema() -> dict[str, Any]:
    (command, job), components = msgspec.json.schema_components([Command, Job], ref_template="#/$defs/{name}")
    return {"command": command, "job": job, "defs": components}


def wire_schema() -> dict[str, Any]:
    parts = command_schema()
    routes = {cls.__struct_config__.tag: {"queue": r.queue} for cls, r in ROUTES.items()}
    message = {
        "title": "Message",
        "description": "A bus message: exactly Dramatiq's seven fields. message_id is the job id.",
        "type": "object",
        "additionalProperties": False,
        "required": ["queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp"],
        "properties": {
            "queue_name": {"enum": list(QUEUES)},
            "actor_name": {"enum": sorted(routes), "description": "the command's type"},
            "args": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"$ref": "#/$defs/Command"}},
            "kwargs": {"type": "object", "maxProperties": 0},
            "options": {
                "type": "object",
                "required": ["schema_version"],
                "properties": {
                    "schema_version": {"const": SCHEMA_VERSION},
                    "idempotency_key": {"type": "string"},
                    "trace_id": {"type": "string"},
                    "scheduled_at": {"type": "string", "format": "date-time"},
                    "redis_message_id": {"type": "string"},
                    "caused_by": {"type": "string", "description": "a follow-up: the job whose event caused it"},
                    "rule": {"type": "string", "description": "a follow-up: the rule that fired"},
                    "chain_depth": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "rule firings that led to this job; one MAX_CHAIN_DEPTH deep triggers no rule",
                    },
                },
            },
            "message_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "message_timestamp": {"type": "integer", "minimum": 0},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Switchyard wire format",
        "schema_version": SCHEMA_VERSION,
        "$ref": "#/$defs/Message",
        "routes": routes,
        "$defs": {"Message": message, "Command": parts["command"], "Job": parts["job"], **parts["defs"]},
    }


def render() -> str:
    return json.dumps(wire_schema(), indent=2, sort_keys=True) + "\n"


def command_types() -> list[str]:
    return sorted(cls.__struct_config__.tag for cls in ROUTES)


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH.name}: {len(ROUTES)} command types")
