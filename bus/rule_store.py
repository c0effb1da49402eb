"""The rule store: rules (contracts/rules.py) as rows of the ``rules`` table."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from bus import db
from bus.queries import load
from contracts.rules import RuleSpec

SQL = load("rules")


def to_spec(row: dict[str, Any]) -> RuleSpec:
    return msgspec.convert(
        {"name": row["name"], "when": row["when"], "then": row["then"], "enabled": row["enabled"]}, RuleSpec
    )


def upsert(conn: psycopg.Connection, spec: RuleSpec, source: str = "api") -> dict[str, Any]:
    """Create or replace ``spec`` as it is (checks are the caller's); the row."""
    row = conn.execute(
        SQL["upsert"],
        {
            "name": spec.name,
            "when": Jsonb(msgspec.to_builtins(spec.when)),
            "then": Jsonb(msgspec.to_builtins(spec.then)),
            "enabled": spec.enabled,
            "source": source,
        },
    ).fetchone()
    assert row is not None
    return row


def get(name: str) -> RuleSpec | None:
    with db.pool().connection() as conn:
        row = conn.execute(SQL["get"], {"name": name}).fetchone()
    return None if row is None else to_spec(row)
