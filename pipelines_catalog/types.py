"""The column types a catalog may declare, and what each accepts.

A closed list: a type is matched against these patterns and rendered from the match,
so a catalog's type text never reaches SQL as written.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class ColumnType(NamedTuple):
    #: canonical Postgres spelling, e.g. ``numeric(12,2)``, ``varchar(64)``, ``timestamptz``
    sql: str
    #: family: text, int, numeric, float, bool, date, timestamp, timestamptz, json, uuid
    kind: str
    #: varchar length, integer byte size, numeric (precision, scale)
    size: tuple[int, ...] = ()

    @property
    def is_temporal(self) -> bool:
        return self.kind in ("date", "timestamp", "timestamptz")


_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
    "float": "double precision",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "character varying": "varchar",
    "string": "text",
    "json": "jsonb",
}
_FIXED = {
    "text": "text",
    "smallint": "int",
    "integer": "int",
    "bigint": "int",
    "real": "float",
    "double precision": "float",
    "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "jsonb": "json",
    "uuid": "uuid",
}
_INT_BYTES = {"smallint": 2, "integer": 4, "bigint": 8}
_VARCHAR = re.compile(r"^varchar\s*\(\s*(\d{1,5})\s*\)$")
_NUMERIC = re.compile(r"^(?:numeric|decimal)\s*(?:\(\s*(\d{1,4})\s*(?:,\s*(\d{1,4})\s*)?\))?$")
SUPPORTED = "text, varchar(n), smallint, integer, bigint, numeric[(p[,s])], real, double precision, boolean, date, "
SUPPORTED += "timestamp, timestamptz, jsonb, uuid"


class UnknownType(ValueError):
    pass


def parse(text: str) -> ColumnType:
    name = " ".join(text.strip().lower().split())
    name = _ALIASES.get(name, name)
    if name in _FIXED:
        return ColumnType(name, _FIXED[name], (_INT_BYTES[name],) if name in _INT_BYTES else ())
    if match := _VARCHAR.match(name):
        length = int(match[1])
        if not 1 <= length <= 10485760:
            raise UnknownType(f"varchar length {length} is out of range")
        return ColumnType(f"varchar({length})", "text", (length,))
    if match := _NUMERIC.match(name):
        if match[1] is None:
            return ColumnType("numeric", "numeric")
        precision, scale = int(match[1]), int(match[2] or 0)
        if not 1 <= precision <= 1000 or scale > precision:
            raise UnknownType(f"numeric({precision},{scale}) is out of range")
        return ColumnType(f"numeric({precision},{scale})", "numeric", (precision, scale))
    raise UnknownType(f"{text!r} is not a supported type (one of: {SUPPORTED})")
