"""Cron expressions as schedules accept them: 5 fields, or 6 with seconds first.

``*/2 * * * * *`` fires every two seconds; ``30 2 * * *`` at 02:30. Parsing is
croniter's; this module only fixes the dialect (no year field, no hash ``H``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo

from croniter import CroniterBadDateError, croniter

_HASHED = re.compile(r"(^|[^A-Z])H")


def _field(value: str) -> str:
    item = f"(?:\\*|{value}(?:-{value})?)(?:/[1-9][0-9]?)?"
    return f"{item}(?:,{item})*"


_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "sun|mon|tue|wed|thu|fri|sat"
#: the dialect as the OpenAPI document states it: values in range, lists, ranges, * and steps of 1 to 99,
#: names of months and days in lower or upper case. ``check`` is the judge: it also takes croniter's
#: rarer forms (``L``, ``#``, ``?``, longer steps), and refuses a well-formed cron that never fires.
DOCUMENTED_PATTERN = (
    "^"
    + " ".join(
        [
            f"(?:{_field('[0-5]?[0-9]')} )?{_field('[0-5]?[0-9]')}",
            _field("(?:[01]?[0-9]|2[0-3])"),
            _field("(?:0?[1-9]|[12][0-9]|3[01])"),
            _field(f"(?:0?[1-9]|1[0-2]|{_MONTHS}|{_MONTHS.upper()})"),
            _field(f"(?:[0-7]|{_DAYS}|{_DAYS.upper()})"),
        ]
    )
    + "$"
)
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


def _field_values(field: list[object], low: int, high: int) -> list[int]:
    # croniter keeps a "*" inside a list ("*/1,*,5") as it is: the field then allows every value
    if "*" in field:
        return list(range(low, high + 1))
    return sorted({int(str(v)) for v in field})


def _steps(values: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(values)]


def _shortest_day_step(expr: str, years: int = 4) -> int:
    """Fewest days between two days ``expr``'s day fields (day of month, month, weekday) allow, over
    ``years`` calendar years (a leap cycle); a large number when it fires on fewer than two days."""
    dom, month, dow = expr.split()[-3:]
    days = croniter(f"0 0 {dom} {month} {dow}", _EPOCH)
    last = days.get_next(dt.datetime)
    end = last + dt.timedelta(days=366 * years)
    shortest = 1 << 30
    while shortest > 1:
        day = days.get_next(dt.datetime)
        if day > end:
            break
        shortest = min(shortest, (day - last).days)
        last = day
    return shortest


def shortest_interval_s(expr: str, below: float) -> int | None:
    """The shortest wall-clock time between two slots of ``expr`` in seconds, when it is shorter
    than ``below``; None when no two slots are that close.

    The fires are a product of the fields, so the shortest step is found level by level: between
    seconds of a minute, minutes of an hour (last second of one to the first of the next), hours of
    a day, and days (only computed when it could be shorter than ``below``). Wall-clock time: a
    DST change can bring two slots closer for one night.
    """
    if below <= 1:
        return None  # no cron fires more often than every second
    six = has_seconds(expr)
    expanded = croniter(expr, _EPOCH, second_at_beginning=six).expanded
    seconds = _field_values(expanded[5], 0, 59) if six else [0]
    minutes, hours = _field_values(expanded[0], 0, 59), _field_values(expanded[1], 0, 23)
    span_minute = seconds[-1] - seconds[0]
    span_hour = (minutes[-1] - minutes[0]) * 60 + span_minute
    span_day = (hours[-1] - hours[0]) * 3600 + span_hour
    steps = [
        *_steps(seconds),
        *(60 * step - span_minute for step in _steps(minutes)),
        *(3600 * step - span_hour for step in _steps(hours)),
    ]
    if 86400 - span_day < below:
        steps.append(86400 * _shortest_day_step(expr) - span_day)
    shortest = min(steps, default=None)
    return shortest if shortest is not None and shortest < below else None
