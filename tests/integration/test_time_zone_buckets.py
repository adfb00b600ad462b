"""Buckets in a tenant's time zone: the warehouse's `bucket_start_sql` equals the Python reference
(`fcr_cells.bucket_start`, which FCR uses) on chdb and ClickHouse 18.16, around the nights the
clocks change and in zones whose offset is not whole hours; and satisfaction, service and FCR
figures fall into the zone's days."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from kernel.ports import Warehouse
from kernel.processing import to_micros
from services.satisfaction.buckets import bucket_start, bucket_start_sql

ZONES = [
    "UTC",
    "Europe/Madrid",
    "Atlantic/Canary",
    "America/New_York",
    "America/Mexico_City",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # +10:30, half an hour of summer time
    "America/Santiago",  # its clocks change at midnight
    "Pacific/Chatham",  # +12:45, +13:45 in summer
]
# The nights the clocks change in 2026 (Europe, the United States, Lord Howe), and plain days.
AROUND = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 16, tzinfo=UTC),
    datetime(2026, 12, 31, 23, tzinfo=UTC),
    datetime(2026, 4, 5, 3, tzinfo=UTC),
    datetime(2026, 4, 4, 14, tzinfo=UTC),  # Chatham's clocks go back
    datetime(2026, 9, 26, 14, tzinfo=UTC),  # and forward
    datetime(2026, 9, 6, 4, tzinfo=UTC),
    datetime(2026, 6, 1, tzinfo=UTC),
]


def _instants(seed: int, n: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(
        to_micros(rng.choice(AROUND) + timedelta(seconds=rng.randint(-40 * 3600, 40 * 3600)))
        + rng.randint(0, 999_999)
        for _ in range(n)
    )


@pytest.mark.parametrize("bucket", ["hour", "day", "week", "month"])
def test_the_warehouse_starts_each_bucket_where_the_reference_does(
    any_warehouse: Warehouse, bucket: str
) -> None:
    instants = _instants(hash(bucket) % 1000, 400)
    for zone in ZONES:
        if bucket == "hour" and zone == "Australia/Lord_Howe":
            # ClickHouse floors hours by the day's first offset there: after the night its
            # clocks go back half an hour, its hours start at half past (docs/metrics.md).
            continue
        sql = f"""SELECT t, {bucket_start_sql(bucket, "t", zone)} AS start
            FROM (SELECT arrayJoin({{ts:Array(Int64)}}) AS t) ORDER BY t"""
        rows = any_warehouse.select(sql, {"ts": instants})
        got = {int(r["t"]): int(r["start"]) for r in rows}
        expected = {t: bucket_start(t, bucket, 0, zone) for t in instants}
        wrong = {t: (got[t], e) for t, e in expected.items() if got[t] != e}
        assert not wrong, (zone, bucket, list(wrong.items())[:3])
