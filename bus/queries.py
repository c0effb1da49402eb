"""Named SQL queries loaded from ``sql/queries/*.sql`` (blocks headed ``-- name: x``)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import sql

SQL_DIR: Path = sql.ROOT
_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def load(group: str) -> dict[str, str]:
    """``load("jobs")["start"]`` is the ``start`` block of ``sql/queries/jobs.sql``."""
    text = (SQL_DIR / "queries" / f"{group}.sql").read_text()
    parts = _HEADER.split(text)[1:]
    return {name: body.strip() for name, body in zip(parts[::2], parts[1::2], strict=True)}
