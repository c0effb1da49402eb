"""A schedule's cron in words, its next slots, and what its zone's clock changes do to it.

The words are cron-descriptor's. Where our dialect (contracts/cron.py) and the library's guesses
could part, this module mends the input or adds what is missing rather than describing cron itself:

- six fields are seconds first, always; the library guesses between that and minutes first with a
  year last (a four-digit last field, or ``?`` in some places). Handed seven fields (a year ``*``
  added) it has nothing to guess;
- its clock follows the server's locale (``02:30 AM`` under en_US): pinned to 24-hour English;
- a slot is a wall time in the schedule's zone and, across a DST change, follows the rules of
  bus/slots.py (a skipped wall time fires once, after the gap; a repeated one at its first
  occurrence). The library knows no zones: the notes about the coming clock changes are ours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import msgspec
from cron_descriptor import ExpressionDescriptor, Options
from croniter import croniter

from bus import slots
from contracts import cron as cron_rules
from contracts.command import from_validation_error
from contracts.schedules import SchedulePatch

UTC = dt.UTC
#: how far ahead the clock changes of a zone are looked for
DST_HORIZON = dt.timedelta(days=366)


class BadCron(ValueError):
    """A cron or zone a schedule would refuse; ``path`` names the field as the API does."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def check(cron: str, timezone: str) -> None:
    """The API's own rules for these two fields (SchedulePatch's types, then contracts.cron)."""
    try:
        msgspec.convert({"cron": cron, "timezone": timezone}, SchedulePatch)
    except msgspec.ValidationError as err:
        bad = from_validation_error(err)
        raise BadCron(bad.path, bad.message) from None
    for path, rule, value in (("$.cron", cron_rules.check, cron), ("$.timezone", cron_rules.check_zone, timezone)):
        try:
            rule(value)
        except ValueError as err:
            raise BadCron(path, str(err)) from None


def describe(cron: str) -> str | None:
    """``30 2 * * *`` -> "At 02:30, every day"; None for what the library cannot put in words."""
    fields = cron.split()
    seven = (fields if len(fields) == 6 else ["0", *fields]) + ["*"]
    # "every day" helps after a time of day ("At 02:30, every day") and is noise after
    # "Every 2 seconds, every minute, every hour": the library's verbose form only for fixed hours
    fixed_hours = not any(mark in seven[2] for mark in "*/-?")
    options = Options(verbose=fixed_hours, use_24hour_time_format=True, locale_code="en_US")
    try:
        return ExpressionDescriptor(" ".join(seven), options).get_description()
    except Exception:  # noqa: BLE001 - a valid cron the library cannot word is shown without words
        return None


def _offset(tz: dt.tzinfo, instant: dt.datetime) -> dt.timedelta:
    return instant.astimezone(tz).utcoffset() or dt.timedelta(0)


def transitions(
    tz_name: str, start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[dt.datetime, dt.timedelta, dt.timedelta]]:
    """The zone's clock changes in [start, end): (UTC instant, offset before, offset after)."""
    tz = slots.zone(tz_name)
    day = dt.timedelta(days=1)
    at = start.astimezone(UTC)
    while at < end:
        before, after = _offset(tz, at), _offset(tz, at + day)
        if before != after:
            low, high = at, at + day  # the change is in (low, high]: bisect to the second
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if _offset(tz, middle) == before else (low, middle)
            yield high.replace(microsecond=0), before, after
        at += day


def _clock(wall: dt.datetime, seconds: bool) -> str:
    return wall.strftime("%H:%M:%S" if seconds else "%H:%M")


def dst_notes(cron: str, tz_name: str, start: dt.datetime, horizon: dt.timedelta = DST_HORIZON) -> list[str]:
    """What the coming clock changes do to this schedule's slots (nothing said where it has none there)."""
    seconds = cron_rules.has_seconds(cron)
    notes = []
    for instant, before, after in transitions(tz_name, start, start + horizon):
        naive = instant.replace(tzinfo=None)
        # the wall times skipped (clocks forward) or lived twice (clocks back)
        low, high = (naive + before, naive + after) if after > before else (naive + after, naive + before)
        first = croniter(cron, low - dt.timedelta(seconds=1), second_at_beginning=seconds).get_next(dt.datetime)
        if first >= high:
            continue
        last = croniter(cron, high, second_at_beginning=seconds).get_prev(dt.datetime)
        date, lo, hi = low.date().isoformat(), _clock(low, False), _clock(high, False)
        one = first == last
        which = _clock(first, seconds) if one else f"the slots from {_clock(first, seconds)} to {_clock(last, seconds)}"
        if after > before:
            fate = (
                f"does not exist that day; it runs at {hi}" if one else f"do not exist that day; they run once, at {hi}"
            )
            notes.append(f"{date}: clocks go forward from {lo} to {hi}; {which} {fate}.")
        else:
            fate = (
                "happens twice that day; it runs once, at the first"
                if one
                else "happen twice that day; each runs once, on the first pass"
            )
            notes.append(f"{date}: clocks go back from {hi} to {lo}; {which} {fate}.")
    return notes


def fire_times(cron: str, tz_name: str, start: dt.datetime, count: int = 5) -> list[dict[str, str]]:
    """The next slots after ``start``, as the schedule's zone and UTC show them."""
    tz = slots.zone(tz_name)
    return [
        {
            "local": t.astimezone(tz).strftime("%a %Y-%m-%d %H:%M:%S %Z"),
            "utc": t.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "at": t.isoformat(),
        }
        for t in slots.after(cron, tz_name, start, count)
    ]


def preview(cron: str, tz_name: str, start: dt.datetime | None = None, count: int = 5) -> dict[str, Any]:
    """All the page says about a cron in a zone. Raises BadCron when a schedule would refuse them."""
    check(cron, tz_name)
    start = start or dt.datetime.now(UTC)
    return {
        "cron": cron,
        "timezone": tz_name,
        "description": describe(cron),
        "notes": dst_notes(cron, tz_name, start),
        "next": fire_times(cron, tz_name, start, count),
    }
