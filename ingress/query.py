"""The query-string checks every listing shares: parameters it does not know, a page size, a time.

Each failure is a 422 naming the parameter, like every other bad input of the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from bus.jobstore import aware_time
from ingress.errors import invalid


def reject_unknown(q: Mapping[str, str], allowed: Collection[str]) -> None:
    unknown = set(q) - set(allowed)
    if unknown:
        raise invalid(sorted(unknown)[0], "unknown query parameter")


def read_limit(q: Mapping[str, str], default: int, most: int) -> int:
    raw = q.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise invalid("limit", f"a whole number from 1 to {most}")
    return int(raw)


def read_time(q: Mapping[str, str], name: str) -> dt.datetime | None:
    """An ISO 8601 time, UTC unless it names its offset; None when the parameter is absent or empty."""
    text = q.get(name) or None
    try:
        return None if text is None else aware_time(text)
    except ValueError:
        raise invalid(name, "an ISO 8601 time, e.g. 2026-11-22T08:00:00Z") from None
