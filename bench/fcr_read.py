"""What one `GET /v1/service/fcr` read costs on chdb: the rows it reads (SQL) and the pairing of
contacts in Python, for one busy tenant; from the contact events table (what the route reads) and
from the timeline (the reference, read before a backfill), checked to give the same cells.

Calls (resolved or not, on two topics) of 2,000 customers with opaque ids spread over 45 days,
then a 30-day read by day as of the end of the data. Numbers only, with the load average; nothing
asserts a time (HOUSE_STYLE). Nothing else writes while it reads.

    PYTHONPATH=. python -m bench.fcr_read [--events 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from random import Random
from typing import Any

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.runner import ensure_tables
from kernel.opaque_ids import customer_id_key, opaque_customer_id
from kernel.processing import to_micros
from schemas.validate import accept
from services.projections.contact_events import CONTACT_EVENTS, to_contact_event_rows
from services.projections.projection import ProjectionsProjection
from services.projections.sql import TIMELINE
from services.projections.timeline import to_timeline_rows
from services.satisfaction.fcr_sql import read_contact_events, read_fcr, read_fcr_rows

TENANT = "bench"
START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS, CUSTOMERS = 45, 2_000
_KEY = customer_id_key(b"bench platform key")


def call_rows(n: int, rng: Random) -> list[dict[str, Any]]:
    """`n` ended calls as the timeline stores them (payload resolved/topic/agent/queue)."""
    ids = [opaque_customer_id(_KEY, TENANT, f"phone:+346{i:08d}") for i in range(CUSTOMERS)]
    rows = []
    for _ in range(n):
        at = START + timedelta(seconds=rng.randrange(DAYS * 86_400))
        payload = {"resolved": rng.random() < 0.7, "topic": rng.choice(["billing", "delivery"]),
                   "agent": rng.choice(["ana", "leo"]), "queue": rng.choice(["q1", "q2"])}  # fmt: skip
        raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": "call.ended",
               "channel": "phone", "touchpoint": "support_line", "payload": payload,
               "customer": {"phone": "+34600000000"}}  # fmt: skip
        event, _ = accept(raw, TENANT, at + timedelta(seconds=1))
        rows += to_timeline_rows(event, rng.choice(ids))
    return rows


def timed(read: Any, runs: int) -> list[float]:
    found = []
    for _ in range(runs):
        start = time.perf_counter()
        read()
        found.append(time.perf_counter() - start)
    return found


def report(name: str, whole: list[float], sql_only: list[float]) -> None:
    each = ", ".join(f"{t:.2f}" for t in whole)
    print(f"  {name}: whole read median {statistics.median(whole):6.2f} s  (runs: {each} s)")
    print(f"  {' ' * len(name)}  of it SQL  median {statistics.median(sql_only):6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as path:
        warehouse = ChdbWarehouse(path, database="bench")
        ensure_tables(warehouse, [ProjectionsProjection()])  # empty: the route reads the table
        rows = call_rows(args.events, Random(7))
        for start in range(0, len(rows), 10_000):
            batch = rows[start : start + 10_000]
            warehouse.insert(TIMELINE, batch)
            warehouse.insert(CONTACT_EVENTS, to_contact_event_rows(batch))
        since = to_micros(START + timedelta(days=DAYS - 30))
        until = as_of = to_micros(START + timedelta(days=DAYS))
        week = 7 * 86_400 * 1_000_000
        reads = {
            "contact events (read_fcr, the route's)": (False, read_contact_events),
            "timeline (reference)": (True, read_fcr_rows),
        }
        print(f"fcr@1 30-day read by day over {args.events} calls in {DAYS} days, chdb:")
        answers = []
        for name, (timeline, rows_of) in reads.items():
            cells = partial(
                read_fcr, warehouse, TENANT, since, until, "day", as_of, timeline=timeline
            )
            answers.append(cells())
            whole = timed(cells, args.runs)
            sql_only = timed(lambda r=rows_of: r(warehouse, TENANT, since - week, until + week),
                             args.runs)  # fmt: skip
            report(name, whole, sql_only)
        print(f"  same cells both ways: {answers[0] == answers[1]} ({len(answers[0])} cells)")
        print(f"  load average {os.getloadavg()}")
        warehouse.close()


if __name__ == "__main__":
    main()
