"""What value@1 / churn_risk@1 add to the profile read of one customer, on chdb (or on a
ClickHouse server with `--clickhouse URL`, where each query is a round trip).

One customer with about 1,000 events (orders, surveys, calls with transfers, chats, page views)
among other customers' events; the profile read is timed as it was before (`profile_of`: the
folded facts and the latest repeat contact) and as it is now (the same plus `with_value`).
Numbers only, with the load average; nothing asserts a time (HOUSE_STYLE).

    PYTHONPATH=. python -m bench.profile_value [--events 1000] [--others 20] [--runs 30]
        [--clickhouse clickhouse://host:port/default]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import in_turns
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from cem.runner import ensure_tables
from kernel.opaque_ids import customer_id_key, opaque_customer_id
from schemas.envelope import Event
from schemas.validate import accept
from services.projections.projection import ProjectionsProjection
from services.projections.repeat_contact_sql import read_repeat_contact
from services.projections.sql import read_profile
from services.query_api.routers.customers import profile_of
from services.satisfaction.projection import SatisfactionProjection

TENANT = "bench"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
_KEY = customer_id_key(b"bench platform key")


def _event(i: int, at: datetime) -> dict[str, Any]:
    kind = i % 10
    call = {"channel": "phone", "correlation_id": f"call-{i // 10}"}
    shapes: list[dict[str, Any]] = [
        {
            "type": "order.placed",
            "channel": "web",
            "payload": {
                "order_id": f"o{i}",
                "amount": "19.90",
                "currency": "EUR" if i % 3 else "USD",
                "attributes": {"product": f"p{i % 7}"},
            },
        },
        {
            "type": "survey.answered",
            "channel": "email",
            "payload": {"kind": "nps", "score": i % 11},
        },
        {"type": "call.transferred", **call, "payload": {}},
        {
            "type": "call.ended",
            **call,
            "payload": {"queue_wait_s": i % 600, "abandoned": i % 4 == 0},
        },
        {"type": "message.received", "channel": "chat", "payload": {"text": "no funciona, fatal"}},
    ] + [{"type": "page.viewed", "channel": "web", "payload": {"url": "https://shop.example/"}}] * 5
    return {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), **shapes[kind]}


def folded_profile(warehouse: Any, members: list[str]) -> Any:
    """The profile read as it was before value@1: the folded facts and the latest repeat contact
    (`profile_of` without `with_value`)."""
    profile = read_profile(warehouse, TENANT, members)
    return read_repeat_contact(warehouse, TENANT, members) if profile is not None else None


def opaque_id(name: str) -> str:
    """An id as the identity stage names customers (`c_` and 26 base32 letters), so the reads
    compare, sort and filter ids of the real length and spread."""
    return opaque_customer_id(_KEY, TENANT, f"email:{name}@example.com")


def history(customer_id: str, n: int) -> list[Event]:
    start = NOW - timedelta(days=400)
    step = timedelta(days=400) / n
    found = []
    for i in range(n):
        raw = {**_event(i, start + i * step), "customer": {"customer_id": customer_id}}
        found.append(accept(raw, TENANT, start + i * step + timedelta(seconds=1))[0])
    return found


def store(warehouse: Any, events: list[Event]) -> None:
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for projection in (ProjectionsProjection(), SatisfactionProjection()):
        for offset, e in enumerate(events):
            for table, rows in projection.rows(e).items():
                by_table[table] += [
                    r | {"log_partition": 0, "log_offset": offset} if "log_offset" in r else r
                    for r in rows
                ]
    for table, rows in by_table.items():
        warehouse.insert(table, rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--others", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--clickhouse", help="a ClickHouse server URL instead of chdb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as path:
        database = f"bench_{uuid.uuid4().hex[:8]}"
        warehouse: Any = (
            ClickHouseWarehouse(args.clickhouse, database=database)
            if args.clickhouse
            else ChdbWarehouse(path, database="bench")
        )
        ensure_tables(warehouse, [ProjectionsProjection(), SatisfactionProjection()])
        for other in range(args.others):
            store(warehouse, history(opaque_id(f"other-{other}"), args.events))
        members = [opaque_id("target")]
        store(warehouse, history(members[0], args.events))
        times = in_turns(
            {
                "profile (before)": lambda: folded_profile(warehouse, members),
                "profile + value (after)": lambda: profile_of(warehouse, TENANT, members, NOW),
            },
            args.runs,
        )
        for name, seconds in times.items():
            ms = sorted(t * 1000 for t in seconds)
            p90 = ms[int(0.9 * (len(ms) - 1))]
            print(f"{name:26} p50 {statistics.median(ms):7.1f} ms  p90 {p90:7.1f} ms  n={len(ms)}")
        print(f"customer events {args.events}, other customers {args.others}, "
              f"load average {os.getloadavg()}")  # fmt: skip
        if args.clickhouse:
            warehouse.drop_database()
        warehouse.close()


if __name__ == "__main__":
    main()
