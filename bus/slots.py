"""Slots: the UTC instants at which a schedule fires.

A cron expression is read in the schedule's time zone, as wall-clock time, and each
matching wall-clock time fires once:

- spring forward (a skipped hour): wall times inside the gap do not exist; they fire
  once, at the first instant after the gap (a daily 02:30 job runs at 03:00 that day);
- fall back (a repeated hour): a wall time that occurs twice fires at its first
  occurrence only, so a daily 02:30 job does not run twice.

Use the time zone UTC for a fixed real-time interval across DST changes.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterator

from croniter import croniter

from contracts.cron import has_seconds

UTC = dt.UTC


@functools.lru_cache(maxsize=512)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _exists(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> bool:
    back = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back == wall


def to_utc(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant a naive wall time of ``tz`` fires at (see the module's DST rules)."""
    if not _exists(wall, tz):
        # inside a spring-forward gap: the first wall time after it (gaps start on a minute)
        wall = wall.replace(second=0, microsecond=0)
        while not _exists(wall, tz):
            wall += dt.timedelta(minutes=1)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _walls(expr: str, start: dt.datetime, *, backwards: bool) -> Iterator[dt.datetime]:
    it = croniter(expr, start, second_at_beginning=has_seconds(expr), is_prev=backwards)
    step = it.get_prev if backwards else it.get_next
    while True:
        yield step(dt.datetime)


def after(expr: str, tz_name: str, instant: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The next ``count`` slots strictly after ``instant`` (aware), ascending."""
    tz = zone(tz_name)
    wall = instant.astimezone(tz).replace(tzinfo=None)
    # in the second pass of a repeated hour, later wall times map to their first
    # occurrence, before `instant`: they are skipped (they fired already)
    found: list[dt.datetime] = []
    for w in _walls(expr, wall, backwards=False):
        slot = to_utc(w, tz)
        if slot > instant and (not found or slot > found[-1]):
            found.append(slot)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")  # pragma: no cover


def between(expr: str, tz_name: str, start: dt.datetime, end: dt.datetime, limit: int) -> list[dt.datetime]:
    """The newest ``limit`` slots in [start, end], ascending."""
    tz = zone(tz_name)
    wall = end.astimezone(tz).replace(tzinfo=None)
    found: list[dt.datetime] = []
    # croniter's get_prev excludes its start: begin just after `end` in wall time
    for w in _walls(expr, wall + dt.timedelta(seconds=1), backwards=True):
        slot = to_utc(w, tz)
        if slot > end:
            continue
        if slot < start or len(found) >= limit:
            break
        if not found or slot < found[-1]:
            found.append(slot)
    return found[::-1]
