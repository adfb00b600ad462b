"""What a `GET /v1/alerts` drift read costs when many touchpoint-days raise an alert, on chdb (or on
a ClickHouse server with `--clickhouse URL`).

`--lines` phone lines with 60 rated calls a day each over 40 days; on each of the last 10 days
every line's CSAT falls from ~85% to ~40%, so a read of the last 31 days finds lines x 10 alerts,
each linked to its day's answers. Prints the read's time and a digest of the alerts and their
linked answers (the same data gives the same digest, so two trees can be compared on results as
well as time). Numbers only, with the load average; nothing asserts a time (HOUSE_STYLE).

    PYTHONPATH=. python -m bench.drift_alerts [--lines 6] [--runs 10] [--clickhouse URL]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from kernel.processing import to_micros
from schemas.validate import accept
from services.satisfaction.drift_sql import closed_days, read_drift_alerts
from services.satisfaction.projection import SatisfactionProjection

BASE = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 40
TENANT = "bench"


def raws(lines: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    found: list[dict[str, Any]] = []
    for day in range(DAYS):
        for line in range(lines):
            satisfied = 0.4 if day >= DAYS - 10 else 0.85
            for i in range(60):
                at = BASE + timedelta(days=day, minutes=10 * i)
                corr, customer = f"l{line}-{day}-{i}", {"customer_id": f"c{i}"}
                found.append({"channel": "phone", "type": "call.ended", "customer": customer,
                              "touchpoint": f"line_{line}", "correlation_id": corr,
                              "occurred_at": at.isoformat(), "payload": {"agent": "ann"}})  # fmt: skip
                score = 5 if rng.random() < satisfied else 2
                found.append({"channel": "survey", "type": "survey.answered", "customer": customer,
                              "touchpoint": "post_call_survey", "correlation_id": corr,
                              "occurred_at": (at + timedelta(minutes=2)).isoformat(),
                              "payload": {"kind": "csat", "score": score}})  # fmt: skip
    return found


def store(warehouse: Any, lines: int) -> None:
    projection = SatisfactionProjection()
    for statement in projection.ddl(warehouse.version):
        warehouse.command(statement)
    received = BASE + timedelta(days=DAYS + 1)
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, raw in enumerate(raws(lines)):
        event = accept({**raw, "event_id": str(uuid.UUID(int=i))}, TENANT, received)[0]
        for table, rows in projection.rows(event).items():
            by_table[table] += rows
    for table, rows in by_table.items():
        warehouse.insert(table, rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=6)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--clickhouse", help="a ClickHouse server URL instead of chdb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as path:
        warehouse: Any = (
            ClickHouseWarehouse(args.clickhouse, database=f"bench_{uuid.uuid4().hex[:8]}")
            if args.clickhouse
            else ChdbWarehouse(path, database="bench")
        )
        store(warehouse, args.lines)
        end = to_micros(BASE + timedelta(days=DAYS))
        days = closed_days(end - 31 * 86_400 * 1_000_000, end)
        times, found = [], []
        read_drift_alerts(warehouse, TENANT, days)  # warm
        for _ in range(args.runs):
            start = time.perf_counter()
            found = read_drift_alerts(warehouse, TENANT, days)
            times.append(time.perf_counter() - start)
        text = repr([(a.alert.alert_id, a.answers, a.answers_total) for a in found])
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        ms = sorted(t * 1000 for t in times)
        print(
            f"drift read: {len(found)} alerts over {len(days)} days, p50 {statistics.median(ms):.1f}"
            f" ms, max {ms[-1]:.1f} ms, n={len(ms)}, digest {digest}, load {os.getloadavg()}"
        )
        if args.clickhouse:
            warehouse.drop_database()
        warehouse.close()


if __name__ == "__main__":
    main()
