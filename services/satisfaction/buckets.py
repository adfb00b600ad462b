"""Time buckets in a time zone: where an instant's hour, day, week or month starts, as ClickHouse
SQL (chdb and server 18.16) and as its Python reference, side by side so the two stay one rule.

Satisfaction, sentiment and service metrics bucket in SQL; FCR pairs contacts in Python with the
reference. A day, week (from Monday) or month starts at the zone's midnight (a midnight the clocks
skip: at the jump, zoneinfo's fold=0); an hour is the wall clock's hour under the offset in force
at that instant (half past, in a zone half an hour off UTC). `total` is one bucket for the whole
range, starting at `since`. The two agree on chdb and 18.16 (`tests/integration/
test_time_zone_buckets.py`) but for Lord Howe's hours after its clocks go back half an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.service_metrics.calendar import check_zone

# `{t}` is the instant as a DateTime in the bucket's zone: `toStartOfDay` and the others read the
# wall clock of the zone it carries; a Date is turned back into that zone's midnight.
BUCKET_STARTS = {
    "hour": "toUInt32(toStartOfHour({t}))",
    "day": "toUInt32(toStartOfDay({t}))",
    "week": "toUInt32(toDateTime(toMonday({t}), '{zone}'))",
    "month": "toUInt32(toDateTime(toStartOfMonth({t}), '{zone}'))",
    "total": "toUInt32(intDiv({since:Int64}, 1000000))",
}


def bucket_start_sql(bucket: str, column: str, zone: str = "UTC") -> str:
    """The start (epoch seconds) of the `bucket` in `zone` that the epoch-microsecond `column`
    falls in; `zone` must be a checked IANA name (`calendar.check_zone`), the one value formatted
    into SQL here, as 18.16 takes a time zone only as a literal."""
    zone = check_zone(zone)
    at = f"toDateTime(intDiv({column}, 1000000), '{zone}')"
    return BUCKET_STARTS[bucket].replace("{t}", at).replace("{zone}", zone)


def bucket_start(micros: int, bucket: str, since: int, zone: str = "UTC") -> int:
    """Epoch seconds of the bucket of `zone` that `micros` falls in: the reference of
    `bucket_start_sql`."""
    seconds = micros // 1_000_000
    if bucket == "total":
        return since // 1_000_000
    tz = ZoneInfo(zone)
    local = datetime.fromtimestamp(seconds, tz)
    if bucket == "hour":
        offset = local.utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        return seconds - (seconds + int(offset.total_seconds())) % 3600
    day = local.date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
