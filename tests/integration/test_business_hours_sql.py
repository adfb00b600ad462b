"""The business-seconds SQL (`calendar_sql.business_seconds_sql`) gives exactly what the Python
reference (`calendar.business_seconds`) gives, on chdb and on a ClickHouse server (18.16 where the
CI provisions it): random calendars in zones with and without clock changes, random spans around
the changes of 2026, from a microsecond to beyond the 400-day bound."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from kernel.ports import Warehouse
from services.service_metrics.calendar import (
    DAY_MINUTES,
    UTC_ALWAYS_OPEN,
    Calendar,
    business_seconds,
)
from services.service_metrics.calendar_sql import business_seconds_sql

# Clock changes forward and back, north and south, at 00:00 (Santiago), by 30 minutes (Lord Howe),
# with a 45-minute offset (Chatham) or none at all.
ZONES = (
    "Europe/Madrid", "America/New_York", "Australia/Sydney", "America/Santiago",
    "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "Asia/Kolkata", "UTC",
)  # fmt: skip
# Days the clocks change in 2026 in some of those zones, and plain days.
CHANGES = (
    date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 9, 6), date(2026, 9, 27),
    date(2026, 10, 4), date(2026, 10, 25), date(2026, 11, 1), date(2026, 6, 17), date(2027, 1, 1),
)  # fmt: skip
TABLE = "business_hours_cases"
SEEDS = range(30)
CASES = 60


def random_day(rnd: random.Random) -> tuple[tuple[int, int], ...]:
    # Boundaries on the half hour (the clocks change at 00:00, 02:00, 02:30 or 03:00 local) or
    # anywhere; sorted and apart, as Calendar.from_json keeps them.
    step = rnd.choice([30, 30, 1])
    cuts = sorted(rnd.sample(range(0, DAY_MINUTES + 1, step), 2 * rnd.choice([0, 1, 1, 2, 3])))
    return tuple(zip(cuts[::2], cuts[1::2], strict=True))


def random_calendar(rnd: random.Random) -> Calendar:
    hours = tuple(random_day(rnd) for _ in range(7))
    if rnd.random() < 0.2:  # an overnight shift
        hours = ((*hours[0], (1320, 1440)) if not hours[0] else hours[0], ((0, 360),), *hours[2:])
    holidays = sorted({rnd.choice(CHANGES) + timedelta(days=rnd.randint(-2, 2)) for _ in range(3)})
    return Calendar(rnd.choice(ZONES), hours, tuple(holidays) if rnd.random() < 0.7 else ())


def random_span(rnd: random.Random) -> tuple[int, int]:
    around = datetime.combine(rnd.choice(CHANGES), datetime.min.time(), UTC)
    start = int((around.timestamp() + rnd.uniform(-3, 3) * 86_400) * 1_000_000)
    start += rnd.randint(0, 999_999)
    length = rnd.choice(
        [rnd.randint(-10**8, 0), rnd.randint(1, 10**6), rnd.randint(1, 4 * 3600 * 10**6),
         rnd.randint(1, 9 * 86_400 * 10**6), rnd.randint(1, 500 * 86_400 * 10**6)]
    )  # fmt: skip
    return start, start + length


@pytest.fixture
def cases(any_warehouse: Warehouse) -> dict[int, list[tuple[int, int, int]]]:
    any_warehouse.command(f"CREATE TABLE {TABLE} (seed UInt32, id UInt32, s Int64, e Int64) "
                          "ENGINE = MergeTree() ORDER BY (seed, id)")  # fmt: skip
    spans = {seed: [(i, *random_span(random.Random(seed * 1000 + i))) for i in range(CASES)]
             for seed in SEEDS}  # fmt: skip
    rows = [{"seed": seed, "id": i, "s": s, "e": e} for seed, c in spans.items() for i, s, e in c]
    any_warehouse.insert(TABLE, rows)
    return spans


def read(
    warehouse: Warehouse, seed: int, cal: Calendar, within: tuple[int, int] | None = None
) -> dict[int, float]:
    sql = f"""SELECT id, {business_seconds_sql("s", "e", cal, within)} AS seconds FROM {TABLE}
        WHERE seed = {{seed:UInt32}}"""
    return {int(r["id"]): float(r["seconds"]) for r in warehouse.select(sql, {"seed": seed})}


def test_random_calendars_and_spans_give_the_python_seconds(
    any_warehouse: Warehouse, cases: dict[int, list[tuple[int, int, int]]]
) -> None:
    for seed in SEEDS:
        cal = random_calendar(random.Random(seed))
        want = {i: business_seconds(s, e, cal) for i, s, e in cases[seed]}
        # Odd seeds write only the zone's changes near the spans' starts.
        starts = [s for _, s, _ in cases[seed]]
        got = read(any_warehouse, seed, cal, (min(starts), max(starts) + 1) if seed % 2 else None)
        wrong = {i: (got[i], w, cases[seed][i]) for i, w in want.items() if got[i] != w}
        assert not wrong, (seed, cal, wrong)
        assert any(want.values()) or not any(day for day in cal.hours)


def test_always_open_is_the_wall_clock(
    any_warehouse: Warehouse, cases: dict[int, list[tuple[int, int, int]]]
) -> None:
    got = read(any_warehouse, 0, UTC_ALWAYS_OPEN)
    assert got == {i: max(e - s, 0) / 1_000_000 for i, s, e in cases[0]}
