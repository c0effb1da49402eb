"""The wire contract: schema freshness, routing, validation with field paths."""

from __future__ import annotations

import json
import time
import uuid

import msgspec
import pytest

import contracts
from contracts import InvalidCommand, decode, job_id_for, route, system
from contracts.message import FIELDS, build
from contracts.schema import PATH, render


def test_schema_json_is_generated_from_the_code() -> None:
    assert PATH.read_text() == render(), "contracts/schema.json is stale: run `make schema`"


def test_every_command_type_has_a_queue_and_an_entry_in_the_schema() -> None:
    schema = json.loads(render())
    assert set(schema["routes"]) == set(contracts.BY_TYPE)
    for tag, cls in contracts.BY_TYPE.items():
        assert route(cls).queue in contracts.QUEUES
        assert tag.split(".")[0] in {"system", "gooddata", "pipelines", "forecast", "metrics", "schedule", "rule"}
        assert cls.__name__ in schema["$defs"]


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [
        ({"type": "system.sleep", "seconds": 1, "colour": "red"}, "$", "unknown field `colour`"),
        ({"type": "system.sleep", "seconds": "one"}, "$.seconds", "Expected `float`"),
        ({"type": "system.sleep", "seconds": -1}, "$.seconds", ">= 0"),
        ({"type": "system.sleep", "seconds": 1, "steps": 0}, "$.steps", ">= 1"),
        ({"type": "system.nope"}, "$.type", "Invalid value 'system.nope'"),
        ({"seconds": 1}, "$", "missing required field `type`"),
        ({"type": "metrics.compute", "model_id": "not-a-uuid"}, "$.model_id", "Invalid UUID"),
        (
            {"type": "gooddata.workspace.create", "workspace_id": "bad id with spaces"},
            "$.workspace_id",
            "Expected `str` matching regex",
        ),
        (
            {
                "type": "forecast.forecast",
                "prediction_length": 3,
                "source": {
                    "kind": "inline",
                    "series": [{"start": "2024-01-01T00:00:00Z", "freq": "D", "values": [1, "x"]}],
                },
            },
            "$.source.series[0].values[1]",
            "Expected `float | null`",
        ),
        (
            {
                "type": "schedule.set",
                "schedule": {"name": "n", "cron": "* * * * *", "command": {"type": "schedule.delete", "name": "x"}},
            },
            "$.schedule.command.type",
            "Invalid value 'schedule.delete'",
        ),
    ],
)
def test_invalid_commands_name_the_offending_field(body: dict, path: str, fragment: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        decode(json.dumps(body))
    assert caught.value.path == path
    assert fragment in caught.value.message


def test_malformed_json_is_a_decode_error_not_a_validation_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode(b"{not json")


def test_message_has_exactly_dramatiqs_seven_fields_and_metadata_in_options() -> None:
    message = build(system.Noop(echo="x"), job_id="j-1", idempotency_key="k", trace_id="t")
    assert tuple(message) == FIELDS
    assert message["message_id"] == "j-1"
    assert message["queue_name"] == "system"
    assert message["actor_name"] == "system.noop"
    assert message["args"] == [{"type": "system.noop", "echo": "x"}]
    assert message["options"] == {"schema_version": contracts.SCHEMA_VERSION, "idempotency_key": "k", "trace_id": "t"}


def test_an_idempotency_key_always_maps_to_the_same_job_id() -> None:
    assert job_id_for("order-42") == job_id_for("order-42")
    assert job_id_for("order-42") != job_id_for("order-43")
    assert job_id_for() != job_id_for()


def test_a_new_job_id_is_a_uuid7_ordered_by_the_time_it_was_made() -> None:
    made = []
    for _ in range(3):
        made.append(job_id_for())
        now_ms = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 <= now_ms:  # the next id in a later millisecond
            pass
    ids = [uuid.UUID(i) for i in made]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert made == sorted(made)
    # the first 48 bits are the Unix time in milliseconds
    assert abs((ids[-1].int >> 80) - time.time_ns() // 1_000_000) < 60_000


def test_commands_round_trip_through_json() -> None:
    raw = {
        "type": "schedule.set",
        "schedule": {
            "name": "nightly",
            "cron": "0 3 * * *",
            "timezone": "Europe/Prague",
            "command": {"type": "metrics.compute", "model_id": "6d6a8224-de68-4603-b2db-63e01d34f020"},
        },
    }
    command = decode(json.dumps(raw))
    again = decode(msgspec.json.encode(command))
    assert again == command
    assert str(again.schedule.command.model_id) == raw["schedule"]["command"]["model_id"]  # type: ignore[attr-defined]
