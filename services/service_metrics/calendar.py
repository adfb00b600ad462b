"""A tenant's service calendar: its time zone, weekly opening hours and holidays.

The time zone places day, week and month buckets on the tenant's own midnights; the opening hours
and holidays give business-hours durations (first response time counted only while the service is
open). A tenant without a calendar is in UTC and open all the time, so every figure equals its
wall-clock definition.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from time import monotonic
from typing import Any, Protocol
from zoneinfo import ZoneInfo, available_timezones

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOLIDAYS = 1000
DAY_MINUTES = 24 * 60
# Business seconds look at most this many local days, from the day before the start's: a first
# response longer than about 13 months counts only the opening hours of the start's local day
# and the 398 days after it.
MAX_DAYS = 400

Interval = tuple[int, int]  # [start, end) in minutes after local midnight, 0 <= start < end <= 1440


class CalendarError(ValueError):
    """A calendar that cannot be stored: `str()` is `where: what`, naming the field that is
    wrong; `path` is that field as the API's errors name one (`hours.mon.0`), `code` what is
    wrong with it, for the pages' words."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        where = message.split(":", 1)[0]
        self.path = where.replace("[", ".").replace("]", "")
        self.code = code


# Names the zone database carries that are not places: the machine's own zone (`localtime`,
# whatever the host running the code says), a zone named "local time is unknown" and the POSIX
# rules file. Browsers refuse `localtime`, and two servers could read it differently.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every IANA time zone name this machine knows (the settings page offers them)."""
    names = frozenset(available_timezones()) | {"UTC"}
    return frozenset(
        n for n in names if n not in _NOT_PLACES and not n.startswith(("posix/", "right/"))
    )


def check_zone(name: str) -> str:
    """An IANA time zone name as given, or CalendarError naming it."""
    if not isinstance(name, str) or name not in time_zones():
        raise CalendarError(
            f"time_zone: unknown IANA time zone {name!r} (e.g. Europe/Madrid)", "unknown_time_zone"
        )
    return name  # every name of `time_zones()` loads: it is the zone database's own list


def _minutes(text: Any, where: str) -> int:
    # "09:00" → 540; "24:00" is the end of the day.
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise CalendarError(f"{where}: {text!r} is not a time written HH:MM", "time_format")
    hh, mm = text[:2], text[3:]
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        raise CalendarError(f"{where}: {text!r} is not a time written HH:MM", "time_format")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > DAY_MINUTES:
        raise CalendarError(
            f"{where}: {text!r} is not a time of day (00:00 to 24:00)", "time_format"
        )
    return minutes


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _intervals(value: Any, where: str) -> tuple[Interval, ...]:
    if not isinstance(value, list):
        raise CalendarError(f'{where}: expected a list of ["HH:MM", "HH:MM"] pairs', "time_format")
    out: list[Interval] = []
    for i, pair in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise CalendarError(f'{here}: expected a pair ["HH:MM", "HH:MM"]', "time_format")
        start, end = _minutes(pair[0], here), _minutes(pair[1], here)
        if start >= end:
            raise CalendarError(
                f"{here}: opens at {pair[0]} and closes at {pair[1]}, not after",
                "closes_before_opening",
            )
        out.append((start, end))
    out.sort()
    for (_, end), (start, _) in zip(out, out[1:], strict=False):
        if start < end:
            raise CalendarError(f"{where}: intervals overlap", "overlapping_hours")
    return tuple(out)


@dataclass(frozen=True)
class Calendar:
    """One tenant's time zone, opening hours per weekday (Monday first) and closed dates."""

    time_zone: str = "UTC"
    # Seven entries, Monday to Sunday, each the day's opening intervals (empty: closed all day).
    hours: tuple[tuple[Interval, ...], ...] = field(
        default_factory=lambda: tuple(((0, DAY_MINUTES),) for _ in WEEKDAYS)
    )
    holidays: tuple[date, ...] = ()  # local dates closed all day, sorted

    @property
    def always_open(self) -> bool:
        return not self.holidays and all(day == ((0, DAY_MINUTES),) for day in self.hours)

    def to_json(self) -> dict[str, Any]:
        return {
            "time_zone": self.time_zone,
            "hours": {
                name: [[_clock(s), _clock(e)] for s, e in day]
                for name, day in zip(WEEKDAYS, self.hours, strict=True)
            },
            "holidays": [d.isoformat() for d in self.holidays],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Calendar:
        """A calendar from its JSON form; CalendarError names the first field that is wrong."""
        if not isinstance(value, Mapping):
            raise CalendarError("calendar: expected an object")
        unknown = sorted(set(value) - {"time_zone", "hours", "holidays"})
        if unknown:
            raise CalendarError(f"{unknown[0]}: unknown field (time_zone, hours, holidays)")
        zone = check_zone(value.get("time_zone", "UTC"))
        hours_in = value.get("hours")
        if hours_in is None:
            hours = cls().hours
        elif not isinstance(hours_in, Mapping):
            raise CalendarError("hours: expected an object keyed mon … sun", "time_format")
        else:
            bad = sorted(set(hours_in) - set(WEEKDAYS))
            if bad:
                raise CalendarError(
                    f"hours.{bad[0]}: not a weekday (mon, tue, … sun)", "not_a_weekday"
                )
            # A weekday left out is closed, so "mon"–"fri" alone means closed at the weekend.
            hours = tuple(_intervals(hours_in.get(d, []), f"hours.{d}") for d in WEEKDAYS)
        days_in = value.get("holidays", [])
        if not isinstance(days_in, list):
            raise CalendarError("holidays: expected a list of dates YYYY-MM-DD", "holiday_format")
        if len(days_in) > MAX_HOLIDAYS:
            raise CalendarError(f"holidays: at most {MAX_HOLIDAYS} dates", "too_many_holidays")
        holidays: set[date] = set()
        for i, text in enumerate(days_in):
            try:
                if not isinstance(text, str) or len(text) != 10:
                    raise ValueError
                holidays.add(date.fromisoformat(text))
            except ValueError:
                raise CalendarError(
                    f"holidays[{i}]: {text!r} is not a date YYYY-MM-DD", "holiday_format"
                ) from None
        return cls(zone, hours, tuple(sorted(holidays)))


UTC_ALWAYS_OPEN = Calendar()


@dataclass(frozen=True)
class StoredCalendar:
    """A tenant's calendar as stored: who set it and when (aware datetime)."""

    tenant_id: str
    calendar: Calendar
    set_at: Any
    set_by: str  # the key's id or the person's email, `cli` from `cem calendar`


class CalendarStore(Protocol):
    """Where tenants' calendars live (SQLite embedded, PostgreSQL distributed), beside the keys."""

    def set(self, stored: StoredCalendar) -> None:
        """Store the tenant's calendar, replacing the previous one."""

    def get(self, tenant_id: str) -> StoredCalendar | None:
        """The tenant's calendar; None when none was set (UTC, always open)."""
        ...

    def close(self) -> None: ...


class CachedCalendars:
    """A CalendarStore that keeps each tenant's calendar it read for `ttl_s`: every
    satisfaction, service and FCR read needs it, and distributed it is a PostgreSQL query. A
    change made through another process is seen within `ttl_s`; through this one at once."""

    def __init__(
        self, store: CalendarStore, ttl_s: float = 5.0, clock: Callable[[], float] = monotonic
    ) -> None:
        self.store, self.ttl_s, self._clock = store, ttl_s, clock
        self._read: dict[str, tuple[float, StoredCalendar | None]] = {}

    def get(self, tenant_id: str) -> StoredCalendar | None:
        now = self._clock()
        hit = self._read.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        stored = self.store.get(tenant_id)
        self._read[tenant_id] = (now + self.ttl_s, stored)
        return stored

    def set(self, stored: StoredCalendar) -> None:
        self.store.set(stored)
        self._read[stored.tenant_id] = (self._clock() + self.ttl_s, stored)

    def close(self) -> None:
        self.store.close()


def encode(calendar: Calendar) -> str:
    return json.dumps(calendar.to_json(), separators=(",", ":"), sort_keys=True)


def decode(text: str) -> Calendar:
    """A stored calendar; a zone name no longer taken (`localtime` and the like, which are not
    places) reads as UTC rather than failing every read of the tenant."""
    value = json.loads(text)
    if value.get("time_zone") in _NOT_PLACES:
        value["time_zone"] = "UTC"
    return Calendar.from_json(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def local_instant_us(day: date, minute: int, zone: ZoneInfo) -> int:
    """Epoch micros of a local wall time: `minute` minutes after midnight of `day` (1440: the next
    midnight). A wall time the clocks skip or repeat is read with the offset in force before the
    change (zoneinfo's fold=0): 02:30 on a spring-forward night is 03:30 new time, and a repeated
    01:30 is the first one."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    return (wall.replace(tzinfo=zone, fold=0) - _EPOCH) // timedelta(microseconds=1)


def business_seconds(start_us: int, end_us: int, cal: Calendar) -> float:
    """Seconds of [start, end) (epoch micros) inside the calendar's opening hours: each local day
    of its time zone opens its weekday's intervals unless it is a holiday. 0 when end <= start.
    The local days looked at run from the day before the start's to the day after the end's (a
    day's hours may fall outside its own date when the clocks change at midnight), at most
    MAX_DAYS of them."""
    if end_us <= start_us:
        return 0.0
    if cal.always_open:
        return (end_us - start_us) / 1_000_000
    zone = ZoneInfo(cal.time_zone)
    first = datetime.fromtimestamp(start_us // 1_000_000, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end_us // 1_000_000, zone).date() + timedelta(days=1)
    total = 0
    for n in range(min((last - first).days + 1, MAX_DAYS)):
        day = first + timedelta(days=n)
        if day in cal.holidays:
            continue
        for opens, closes in cal.hours[day.weekday()]:
            since = max(start_us, local_instant_us(day, opens, zone))
            until = min(end_us, local_instant_us(day, closes, zone))
            total += max(0, until - since)
    return total / 1_000_000
