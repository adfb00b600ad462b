"""Business seconds (`calendar.business_seconds`) on cases worked out by hand, and the checks that
keep anything but validated constants out of its SQL twin."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.service_metrics.calendar import (
    UTC_ALWAYS_OPEN,
    Calendar,
    CalendarError,
    business_seconds,
)
from services.service_metrics.calendar_sql import business_seconds_sql

MADRID = ZoneInfo("Europe/Madrid")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {d: [["09:00", "14:00"], ["15:00", "18:00"]] for d in WEEKDAYS}
HOUR = 3600.0


def madrid(*fields: int) -> int:
    """Epoch micros of a Madrid wall time (none of these is skipped or repeated)."""
    return int(datetime(*fields, tzinfo=MADRID).timestamp()) * 1_000_000


def calendar(hours: dict[str, list[list[str]]], holidays: tuple[str, ...] = ()) -> Calendar:
    value = {"time_zone": "Europe/Madrid", "hours": hours, "holidays": list(holidays)}
    return Calendar.from_json(value)


def test_a_weekend_is_closed() -> None:
    # Friday 2026-03-27 17:00 (CET) to Monday 10:00 (CEST): Friday's last hour, Monday's first.
    office = calendar(OFFICE)
    assert business_seconds(madrid(2026, 3, 27, 17), madrid(2026, 3, 30, 10), office) == 2 * HOUR


def test_the_lunch_break_is_closed() -> None:
    office = calendar(OFFICE)
    assert business_seconds(madrid(2026, 3, 31, 13, 30), madrid(2026, 3, 31, 15, 30), office) == (
        HOUR
    )
    # Asked and answered during lunch: nothing.
    assert business_seconds(madrid(2026, 3, 31, 14, 5), madrid(2026, 3, 31, 14, 55), office) == 0


def test_a_holiday_is_closed_all_day() -> None:
    office = calendar(OFFICE, holidays=("2026-03-30",))
    # Friday 17:00 to Tuesday 10:00, Monday a holiday: Friday's last hour and Tuesday's first.
    assert business_seconds(madrid(2026, 3, 27, 17), madrid(2026, 3, 31, 10), office) == 2 * HOUR


def test_the_spring_forward_day_has_23_hours() -> None:
    sundays = calendar({"sun": [["00:00", "24:00"]]})
    day = madrid(2026, 3, 29), madrid(2026, 3, 30)
    assert business_seconds(*day, sundays) == 23 * HOUR
    # 01:00 CET to 04:00 CEST is two hours: 02:00–03:00 does not exist.
    night = calendar({"sun": [["01:00", "04:00"]]})
    assert business_seconds(*day, night) == 2 * HOUR


def test_an_opening_time_the_clocks_skip_is_read_in_the_old_offset() -> None:
    # 02:30 does not exist on 2026-03-29; fold=0 reads it as 02:30 CET, which is 03:30 CEST.
    skipped = calendar({"sun": [["02:30", "04:00"]]})
    assert business_seconds(madrid(2026, 3, 29), madrid(2026, 3, 30), skipped) == HOUR / 2
    # An interval wholly inside the gap opens no time at all.
    gap = calendar({"sun": [["02:00", "03:00"]]})
    assert business_seconds(madrid(2026, 3, 29), madrid(2026, 3, 30), gap) == 0


def test_the_fall_back_day_has_25_hours() -> None:
    sundays = calendar({"sun": [["00:00", "24:00"]]})
    day = madrid(2026, 10, 25), madrid(2026, 10, 26)
    assert business_seconds(*day, sundays) == 25 * HOUR
    # 02:00–03:00 happens twice: both count.
    twice = calendar({"sun": [["02:00", "03:00"]]})
    assert business_seconds(*day, twice) == 2 * HOUR


def test_an_opening_time_the_clocks_repeat_is_the_first_one() -> None:
    # 02:30 happens at 00:30 UTC (CEST) and at 01:30 UTC (CET); fold=0 opens at the first, and
    # 04:00 CET is 03:00 UTC: two and a half hours.
    repeated = calendar({"sun": [["02:30", "04:00"]]})
    assert business_seconds(madrid(2026, 10, 25), madrid(2026, 10, 26), repeated) == 2.5 * HOUR


def test_an_overnight_shift_spans_midnight() -> None:
    nights = calendar({"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]})
    asked, answered = madrid(2026, 3, 30, 23), madrid(2026, 3, 31, 5, 30)
    assert business_seconds(asked, answered, nights) == 6.5 * HOUR
    # Asked Monday 20:00, answered Tuesday 07:00: the whole shift, 8 hours.
    assert business_seconds(madrid(2026, 3, 30, 20), madrid(2026, 3, 31, 7), nights) == 8 * HOUR


def test_an_end_before_the_start_is_zero() -> None:
    office = calendar(OFFICE)
    at = madrid(2026, 3, 31, 10)
    assert business_seconds(at, at - 1_000_000, office) == 0
    assert business_seconds(at, at, office) == 0
    assert business_seconds(at, at - 1, UTC_ALWAYS_OPEN) == 0


def test_always_open_is_the_wall_clock_to_the_microsecond() -> None:
    at = madrid(2026, 3, 29, 1)
    assert business_seconds(at, at + 1_234_567, UTC_ALWAYS_OPEN) == 1.234567
    assert business_seconds(at, at + 800 * 86_400_000_000, UTC_ALWAYS_OPEN) == 800 * 86_400.0


def test_only_400_local_days_are_looked_at() -> None:
    # Open all day every day but one holiday: from a midnight, the day before and 399 more days
    # are scanned, so the start's day and 398 after it count (none is the holiday, in 2020).
    daily = Calendar("UTC", UTC_ALWAYS_OPEN.hours, (date(2020, 1, 1),))
    start = int(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()) * 1_000_000
    assert business_seconds(start, start + 1000 * 86_400_000_000, daily) == 399 * 86_400.0
    assert business_seconds(start, start + 30 * 86_400_000_000, daily) == 30 * 86_400.0


def test_only_checked_constants_reach_the_sql() -> None:
    with pytest.raises(CalendarError, match="time_zone"):
        business_seconds_sql("s", "e", Calendar("UTC'; DROP TABLE x; --", (((0, 60),),) * 7))
    with pytest.raises(CalendarError, match="hours"):
        business_seconds_sql("s", "e", Calendar("UTC", (((0, "60) OR (1"),),) * 7))  # type: ignore[arg-type]
    with pytest.raises(CalendarError, match="holidays"):
        business_seconds_sql("s", "e", Calendar("UTC", (((0, 60),),) * 7, ("2026-01-01",)))  # type: ignore[arg-type]
    sql = business_seconds_sql("s", "e", calendar(OFFICE, ("2026-12-25",)))
    assert "Europe" not in sql and "7200" in sql and "[540, 900]" in sql and "20812" in sql


def test_always_open_needs_no_calendar_sql() -> None:
    assert (
        business_seconds_sql("a", "b", UTC_ALWAYS_OPEN) == "if((b) > (a), ((b) - (a)) / 1000000, 0)"
    )
