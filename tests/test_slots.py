"""Slot arithmetic: cron in a time zone, DST days, misfire policies. Pure functions."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from bus import slots
from workers.emitter import plan, slot_job_id

UTC = dt.UTC
PRAGUE = "Europe/Prague"  # spring forward 2026-03-29 02:00 -> 03:00, fall back 2026-10-25 03:00 -> 02:00
NEW_YORK = "America/New_York"  # spring forward 2026-03-08, fall back 2026-11-01


def local(instants: list[dt.datetime], zone: str) -> list[str]:
    return [t.astimezone(slots.zone(zone)).strftime("%m-%d %H:%M%z") for t in instants]


def test_five_and_six_field_expressions() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert slots.after("*/15 * * * *", "UTC", start, 3) == [start + dt.timedelta(minutes=m) for m in (15, 30, 45)]
    assert slots.after("*/2 * * * * *", "UTC", start, 3) == [start + dt.timedelta(seconds=s) for s in (2, 4, 6)]


def test_a_daily_job_in_the_skipped_hour_runs_once_right_after_the_gap() -> None:
    fires = slots.after("30 2 * * *", PRAGUE, dt.datetime(2026, 3, 27, 12, tzinfo=UTC), 3)
    assert local(fires, PRAGUE) == ["03-28 02:30+0100", "03-29 03:00+0200", "03-30 02:30+0200"]


def test_slots_inside_the_skipped_hour_collapse_into_one() -> None:
    fires = slots.after("*/30 * * * *", PRAGUE, dt.datetime(2026, 3, 29, 0, 20, tzinfo=UTC), 4)
    assert local(fires, PRAGUE) == ["03-29 01:30+0100", "03-29 03:00+0200", "03-29 03:30+0200", "03-29 04:00+0200"]


def test_a_daily_job_in_the_repeated_hour_runs_once_at_its_first_occurrence() -> None:
    fires = slots.after("30 1 * * *", NEW_YORK, dt.datetime(2026, 10, 31, 12, tzinfo=UTC), 3)
    assert local(fires, NEW_YORK) == ["11-01 01:30-0400", "11-02 01:30-0500", "11-03 01:30-0500"]


def test_the_repeated_hour_is_not_fired_twice() -> None:
    fires = slots.after("*/30 * * * *", PRAGUE, dt.datetime(2026, 10, 24, 23, 20, tzinfo=UTC), 5)
    assert local(fires, PRAGUE) == [
        "10-25 01:30+0200",
        "10-25 02:00+0200",
        "10-25 02:30+0200",
        "10-25 03:00+0100",  # 02:00 and 02:30 of the second pass (+0100) already fired
        "10-25 03:30+0100",
    ]
    # asked from inside the second pass, the next slot is after it
    inside = dt.datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10+0100
    assert local(slots.after("*/30 * * * *", PRAGUE, inside, 1), PRAGUE) == ["10-25 03:00+0100"]


def test_utc_schedules_keep_real_time_across_dst() -> None:
    fires = slots.after("0 * * * *", "UTC", dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 3)
    assert [b - a for a, b in itertools.pairwise(fires)] == [dt.timedelta(hours=1)] * 2


def test_between_returns_the_newest_slots_in_order() -> None:
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC)
    assert slots.between("*/2 * * * * *", "UTC", start, end, 100) == [
        start + dt.timedelta(seconds=s) for s in range(0, 10, 2)
    ]
    assert slots.between("*/2 * * * * *", "UTC", start, end, 2) == [start + dt.timedelta(seconds=s) for s in (6, 8)]


NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
GRACE = dt.timedelta(seconds=60)


def row(policy: str, down_for: dt.timedelta, limit: int = 3) -> dict:
    return {
        "name": "s",
        "cron": "* * * * *",
        "timezone": "UTC",
        "misfire": {"policy": policy, "catch_up_limit": limit},
        "next_fire_at": NOW - down_for,
    }


@pytest.mark.parametrize("policy", ["skip", "fire_once", "catch_up"])
def test_slots_within_the_grace_period_always_fire(policy: str) -> None:
    assert plan(row(policy, dt.timedelta(seconds=30)), NOW, GRACE) == [NOW - dt.timedelta(seconds=0)]
    late = plan(row(policy, dt.timedelta(seconds=59)), NOW + dt.timedelta(seconds=30), GRACE)
    assert late == [NOW]  # the 11:59:01 slot does not exist; 12:00 does


def test_misfire_policies_after_a_long_outage() -> None:
    # slots 11:50 .. 12:00; within the 60 s grace: 11:59 and 12:00; older ones are misfires
    down = dt.timedelta(minutes=10)
    minutes = lambda *ms: [NOW - dt.timedelta(minutes=m) for m in ms]  # noqa: E731
    assert plan(row("skip", down), NOW, GRACE) == minutes(1, 0)
    assert plan(row("fire_once", down), NOW, GRACE) == minutes(2, 1, 0)
    assert plan(row("catch_up", down, limit=3), NOW, GRACE) == minutes(4, 3, 2, 1, 0)


def test_a_slot_always_maps_to_the_same_job_id() -> None:
    slot = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert slot_job_id("a", slot) == slot_job_id("a", slot.astimezone(slots.zone(PRAGUE)))
    assert slot_job_id("a", slot) != slot_job_id("b", slot)
    assert slot_job_id("a", slot) != slot_job_id("a", slot + dt.timedelta(seconds=1))
