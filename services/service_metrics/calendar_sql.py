"""Business seconds in ClickHouse SQL: the twin of `calendar.business_seconds`, held equal to it on
chdb and on server 18.16.

The expression uses no time-zone function of the server: the zone's offset changes (from Python's
zoneinfo, 1970 to 2100) are written into it as constant arrays, and everything else is integer
arithmetic on local day numbers and wall times. Servers disagree on local times otherwise: 18.16
keeps the old offset for the whole day after a change at midnight (America/Santiago's
2026-09-06), and chdb ships its own tz database, which can lag or lead the system's. So every
server counts what the Python reference counts. Only checked constants are formatted into it:
the zone's offsets (integers from zoneinfo for a checked IANA name), whole minutes and day
numbers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from services.service_metrics.calendar import (
    DAY_MINUTES,
    MAX_DAYS,
    Calendar,
    CalendarError,
    check_zone,
)

_EPOCH_DAY = date(1970, 1, 1).toordinal()
_UNTIL = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
# No zone has changed its offset twice within this many seconds since 1970.
_STEP = 6 * 3600


def _offset(zone: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return int(offset.total_seconds())


@lru_cache(maxsize=64)
def offset_changes(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The epoch seconds at which a zone's UTC offset changes from 1970 to 2100, and the offsets
    in force (seconds east of UTC): the first before any change, then one after each."""
    zone = ZoneInfo(check_zone(name))
    changes, offsets = [], [_offset(zone, 0)]
    for second in range(0, _UNTIL, _STEP):
        if _offset(zone, second + _STEP) == offsets[-1]:
            continue
        low, high = second, second + _STEP  # the change is in (low, high]
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if _offset(zone, middle) == offsets[-1] else (low, middle)
        changes.append(high)
        offsets.append(_offset(zone, high))
    return tuple(changes), tuple(offsets)


def _minute(value: int) -> int:
    if type(value) is not int or not 0 <= value <= DAY_MINUTES:
        raise CalendarError(f"hours: {value!r} is not a minute of the day")
    return value


def _day_number(day: date) -> int:
    if not isinstance(day, date):
        raise CalendarError(f"holidays: {day!r} is not a date")
    return day.toordinal() - _EPOCH_DAY


def _array(values: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


Window = tuple[int, int]  # [since, until) in epoch micros


def _near(name: str, within: Window | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The zone's offset changes (and offsets) that spans starting within the window can meet:
    from two days before it to MAX_DAYS + 2 days after it; all of them without a window."""
    changes, offsets = offset_changes(name)
    if within is None:
        return changes, offsets
    first = bisect_left(changes, within[0] // 1_000_000 - 2 * 86_400)
    last = bisect_right(changes, within[1] // 1_000_000 + (MAX_DAYS + 2) * 86_400)
    return changes[first:last], offsets[first : last + 1]


class _Zone:
    """SQL of one zone's offsets: the offset at an epoch second, and a local wall time's epoch
    second read with the offset in force before a change (zoneinfo's fold=0)."""

    def __init__(self, name: str, within: Window | None) -> None:
        changes, offsets = _near(check_zone(name), within)
        self.changes, self.offsets = _array(changes), _array(offsets)
        # zoneinfo's fold=0: a change is reached, in wall time, at its instant plus the larger
        # of the offsets before and after it; earlier wall times (in a gap or the first pass of
        # a repeated hour) take the offset before it.
        walls = [c + max(b, a) for c, b, a in zip(changes, offsets, offsets[1:], strict=False)]
        self.walls = _array(walls)
        self.fixed = offsets[0] if not changes else None

    def wall(self, second: str) -> str:
        """Local wall seconds since 1970-01-01 00:00 local of an epoch second."""
        if self.fixed is not None:
            return f"({second} + {self.fixed})"
        return (
            f"({second} + {self.offsets}[arrayCount(bh_x -> bh_x <= {second}, {self.changes}) + 1])"
        )

    def utc(self, wall: str) -> str:
        """Epoch second of local wall seconds (fold=0)."""
        if self.fixed is not None:
            return f"({wall} - {self.fixed})"
        return f"({wall} - {self.offsets}[arrayCount(bh_x -> bh_x <= {wall}, {self.walls}) + 1])"


def _let(names: str, values: str, body: str) -> str:
    """`body` with `names` bound to `values` (one lambda over one-element arrays): each value is
    written once, however often the body reads it."""
    arrays = ", ".join(f"[{v}]" for v in values.split("; "))
    return f"arrayMap(({names}) -> {body}, {arrays})[1]"


def _weekly(cal: Calendar) -> tuple[str, str, int]:
    """Opening and closing minutes as 7 arrays (Monday first) padded with empty [0, 0) intervals
    to the longest day's count, and that count."""
    if len(cal.hours) != 7:
        raise CalendarError("hours: expected seven days, Monday first")
    width = max(1, *(len(day) for day in cal.hours))
    days = [
        [(_minute(s), _minute(e)) for s, e in day] + [(0, 0)] * (width - len(day))
        for day in cal.hours
    ]
    opens = "[" + ", ".join("[" + ", ".join(str(s) for s, _ in d) + "]" for d in days) + "]"
    closes = "[" + ", ".join("[" + ", ".join(str(e) for _, e in d) + "]" for d in days) + "]"
    return opens, closes, width


def business_seconds_sql(start: str, end: str, cal: Calendar, within: Window | None = None) -> str:
    """A Float64 expression: the seconds of [start, end) (two Int64 epoch-micros expressions of
    the query; lambda names `bh_*` are taken) inside the calendar's opening hours, as
    `calendar.business_seconds` counts them; 0 when end <= start. The local days from the one
    before the start's to the one after the end's are unrolled, at most MAX_DAYS, each into its
    weekday's intervals (one array element each).

    `within`: when every start that counts is in this window (a query's range), only the zone's
    changes near it are written: each lookup scans the changes, and a zone has about 250 from
    1970 to 2100. A start outside it may be counted wrong."""
    if cal.always_open:
        return f"if(({end}) > ({start}), (({end}) - ({start})) / 1000000, 0)"
    zone = _Zone(cal.time_zone, within)
    opens, closes, width = _weekly(cal)
    holidays = "[" + ", ".join(str(_day_number(d)) for d in cal.holidays) + "]"
    bounds = (
        f"intDiv({zone.wall(f'intDiv(({start}), 1000000)')}, 86400) - 1; "
        f"intDiv({zone.wall(f'intDiv(({end}), 1000000)')}, 86400) + 1"
    )
    # One element per (day, interval): day bh_first + intDiv(bh_i, width), weekday 1 = Monday
    # (1970-01-01, day 0, was a Thursday).
    day = f"bh_first + intDiv(bh_i, {width}); (bh_first + intDiv(bh_i, {width}) + 3) % 7 + 1"
    minutes = f"{opens}[bh_wd][bh_i % {width} + 1]; {closes}[bh_wd][bh_i % {width} + 1]"
    since = f"greatest(({start}), {zone.utc('(bh_day * 86400 + bh_open * 60)')} * 1000000)"
    until = f"least(({end}), {zone.utc('(bh_day * 86400 + bh_close * 60)')} * 1000000)"
    overlap = f"toInt64(greatest(0, {until} - {since}))"
    if cal.holidays:
        overlap = f"if(has({holidays}, bh_day), 0, {overlap})"
    element = _let("bh_day, bh_wd", day, _let("bh_open, bh_close", minutes, overlap))
    count = f"if(({end}) > ({start}), least(bh_last - bh_first + 1, {MAX_DAYS}), 0) * {width}"
    micros = f"arraySum(arrayMap(bh_i -> {element}, range(toUInt32({count}))))"
    return f"({_let('bh_first, bh_last', bounds, micros)} / 1000000)"
