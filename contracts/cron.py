"""Cron expressions as schedules accept them: 5 fields, or 6 with seconds first.

``*/2 * * * * *`` fires every two seconds; ``30 2 * * *`` at 02:30. Parsing is
croniter's; this module only fixes the dialect (no year field, no hash ``H``).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from croniter import CroniterBadDateError, croniter

_HASHED = re.compile(r"(^|[^A-Z])H")
_EPOCH = dt.datetime(2000, 1, 1)


def has_seconds(expr: str) -> bool:
    return len(expr.split()) == 6


def check(expr: str) -> None:
    """Raises ValueError with a readable reason when ``expr`` is not a schedule's cron."""
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"cron needs 5 fields (minute hour day month weekday) or 6 with seconds first, got {len(fields)}"
        )
    if any(_HASHED.search(f.upper()) for f in fields):
        raise ValueError("hashed (H) cron fields are not supported")
    if not croniter.is_valid(expr, second_at_beginning=len(fields) == 6):
        raise ValueError(f"not a valid cron expression: {expr!r}")
    try:
        # well-formed yet never matching (``0 0 31 2 *``): refused here, or computing its next slot fails later
        croniter(expr, _EPOCH, second_at_beginning=len(fields) == 6).get_next(dt.datetime)
    except CroniterBadDateError:
        raise ValueError(f"{expr!r} never fires: no date matches all its fields") from None


def check_zone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
