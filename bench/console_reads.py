"""Each warehouse query the agent console's first page and live stream run, timed on chdb over
about 1M timeline rows, to find the reads that scan a table instead of a key range.

The data: a block of customers (`--customers` × `--events`, a mix of page views, orders, surveys,
calls with transfers and chats over 400 days, each a real event through the projections' own
code, stamped with filings positions on 4 partitions) copied `--copies` times in SQL, every copy
with its own customer, event, alert and conversation ids and later log positions; then two
customers to open, a heavy one (2,000 events) and a typical one (100). With `--dir` the warehouse
is kept and reused (the next run times the start, which brings its tables up to date).

Numbers only, with the load average; nothing asserts a time (HOUSE_STYLE).

    PYTHONPATH=. python -m bench.console_reads [--dir PATH] [--customers 200] [--events 100]
        [--copies 50] [--runs 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from bench.common import in_turns, percentile
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.runner import ensure_tables
from kernel.filings import FILING_POSITIONS
from kernel.processing import Projection, to_micros
from schemas.envelope import Event
from schemas.validate import accept
from services.projections import arrivals
from services.projections.arrivals import Arrival
from services.projections.projection import ProjectionsProjection
from services.projections.repeat_contact_sql import flag_repeats, read_repeat_contact
from services.projections.sql import find_customers, read_profile, read_timeline, sightings_of
from services.projections.timeline_page_sql import read_flagged_page
from services.projections.value_sql import read_signals
from services.query_api.header_watch import derived_by_member, derived_of
from services.query_api.routers.customers import profile_of
from services.query_api.stream import _flagged_entries
from services.satisfaction.drift_sql import read_alerts_with_drift
from services.satisfaction.projection import SatisfactionProjection
from services.satisfaction.sql import AlertQuery

TENANT = "bench"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
PARTITIONS = 4
BUILT = "built"  # the marker of a complete warehouse in --dir
# Columns whose values name one customer's things: a copy gives them a suffix of its own.
PER_COPY = ("customer_id", "event_id", "alert_id", "correlation_id")
PROJECTIONS: list[Projection] = [ProjectionsProjection(), SatisfactionProjection()]
Read = Callable[[], object]


# --- the data --------------------------------------------------------------------------------
def raw_event(customer: str, i: int, at: datetime) -> dict[str, Any]:
    call = {"channel": "phone", "correlation_id": f"{customer}-call-{i // 20}"}
    chat = {"channel": "chat", "correlation_id": f"{customer}-chat-{i // 20}"}
    shapes: list[dict[str, Any]] = [
        {
            "type": "order.placed",
            "channel": "web",
            "payload": {
                "order_id": f"{customer}-o{i}",
                "amount": "19.90",
                "currency": "EUR",
                "attributes": {"product": f"p{i % 7}"},
            },
        },
        {
            "type": "survey.answered",
            "channel": "email",
            "payload": {"kind": "nps", "score": i % 11},
        },
        {"type": "call.transferred", **call, "payload": {}},
        {"type": "call.ended", **call, "payload": {"queue_wait_s": i % 600, "abandoned": False}},
        {"type": "message.received", **chat, "payload": {"text": "no funciona, fatal"}},
        {
            "type": "survey.answered",
            "channel": "email",
            "payload": {"kind": "csat", "score": 1 + (i // 20) % 5},
        },
    ]
    shape = shapes[i % 20] if i % 20 < len(shapes) else _page_view(i)
    return {
        "event_id": _uuid(customer, i),
        "occurred_at": at.isoformat(),
        "customer": {"customer_id": customer, "email": f"{customer}@example.com"},
        **shape,
    }


def _page_view(i: int) -> dict[str, Any]:
    return {"type": "page.viewed", "channel": "web", "payload": {"url": f"https://shop.es/{i}"}}


def _uuid(customer: str, i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{customer}/{i}"))


def history(customer: str, n: int) -> list[Event]:
    step = timedelta(days=400) / n
    start = NOW - timedelta(days=400)
    return [
        accept(raw_event(customer, i, start + i * step), TENANT, start + i * step)[0]
        for i in range(n)
    ]


def project(events: list[Event], partition: int, first_offset: int) -> dict[str, list[Any]]:
    """The rows of one customer's events, at consecutive offsets of one filings partition."""
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for offset, event in enumerate(events, start=first_offset):
        for projection in PROJECTIONS:
            for table, rows in projection.rows(event, event.customer.customer_id).items():
                for row in rows:
                    if "log_offset" in row:
                        row.update(log_partition=FILING_POSITIONS + partition, log_offset=offset)
                    by_table[table].append(row)
    return by_table


def insert(warehouse: ChdbWarehouse, by_table: dict[str, list[Any]]) -> None:
    for table, rows in by_table.items():
        for start in range(0, len(rows), 50_000):
            warehouse.insert(table, rows[start : start + 50_000])


def build(warehouse: ChdbWarehouse, customers: int, events: int, copies: int) -> None:
    offsets = [0] * PARTITIONS
    for c in range(customers):
        partition = c % PARTITIONS
        insert(warehouse, project(history(f"cust-{c}", events), partition, offsets[partition]))
        offsets[partition] += events
    span = max(offsets)
    for table in tables_with_rows(warehouse):
        copy_block(warehouse, table, copies, span)
    for n, (name, count) in enumerate((("heavy", 2000), ("typical", 100))):
        at = copies * span + n * 10_000
        insert(warehouse, project(history(name, count), n, at))


def tables_with_rows(warehouse: ChdbWarehouse) -> list[str]:
    rows = warehouse.select(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND total_rows > 0"
    )
    return [r["name"] for r in rows]


def copy_block(warehouse: ChdbWarehouse, table: str, copies: int, span: int) -> None:
    """The block's rows `copies - 1` more times, ids suffixed by the copy, positions later."""
    columns = [
        r["name"]
        for r in warehouse.select(
            "SELECT name FROM system.columns WHERE database = currentDatabase()"
            " AND table = {t:String} ORDER BY position",
            {"t": table},
        )
    ]

    def value(column: str) -> str:
        if column in PER_COPY:
            return f"if({column} = '', '', concat({column}, '~', toString(copy)))"
        if column == "log_offset":
            return f"log_offset + copy * {span}"
        return column

    names = ", ".join(columns)
    warehouse.command(
        f"""INSERT INTO {table} ({names})
            SELECT {", ".join(value(c) for c in columns)} FROM {table}
            ARRAY JOIN range(1, {copies}) AS copy"""
    )


# --- the reads -------------------------------------------------------------------------------
def stream_start(warehouse: ChdbWarehouse) -> Read:
    """How the timeline route finds where a stream starts, embedded: from the positions the
    projections tell the app (one read, then memory; nothing is stored while the bench runs)."""
    return arrivals.LatestPositions(warehouse, told=True)


def reads(warehouse: ChdbWarehouse, name: str, unseen: Iterator[Arrival]) -> dict[str, Read]:
    members, at = [name], to_micros(NOW)
    start, read_start = stream_start(warehouse), arrivals.LatestPositions(warehouse)
    latest = arrivals.latest_positions(warehouse)
    mine = arrivals.arrivals_between(warehouse, TENANT, members, {}, latest)
    behind = back(latest, 1000)  # a console that reconnects after 1,000 arrivals
    # The hub's one read for 200 open streams' customers (this one and 199 others).
    others = warehouse.select(
        "SELECT DISTINCT customer_id FROM customer_timeline WHERE customer_id != {name:String}"
        " ORDER BY customer_id LIMIT 199",
        {"name": name},
    )
    watched = {(TENANT, name)} | {(TENANT, str(r["customer_id"])) for r in others}
    return {
        "profile: facts": lambda: read_profile(warehouse, TENANT, members),
        "profile: repeat contact": lambda: read_repeat_contact(warehouse, TENANT, members),
        "profile: value signals": lambda: read_signals(warehouse, TENANT, members, NOW),
        "profile (route total)": lambda: profile_of(warehouse, TENANT, members, NOW),
        "timeline: stream start": start,
        "stream: start (whole table)": lambda: arrivals.latest_positions(warehouse),
        "timeline: first page": lambda: read_timeline(warehouse, TENANT, members, limit=50),
        "timeline: repeat flags apart": lambda: flag_repeats(
            warehouse, TENANT, members, page(warehouse, name).entries
        ),
        "timeline: page and flags": lambda: read_flagged_page(warehouse, TENANT, members, limit=50),
        "timeline (route total)": lambda: timeline_route(warehouse, name, start),
        "timeline route, 3 queries": lambda: three_queries_route(warehouse, name, read_start),
        "first page (both routes)": lambda: (
            profile_of(warehouse, TENANT, members, NOW),
            timeline_route(warehouse, name, start),
        ),
        "risk badge: alerts": lambda: read_alerts_with_drift(
            warehouse, AlertQuery(tenant_id=TENANT, customers=(name,), limit=101), at
        ),
        "lookup: identifier": lambda: find_customers(
            warehouse, TENANT, "email", f"{name}@example.com"
        ),
        "lookup: held spellings": lambda: sightings_of(warehouse, TENANT, "email", members),
        "stream: poll (nothing new)": lambda: arrivals.poll_arrivals(warehouse, latest),
        "stream: poll (500 new)": lambda: arrivals.poll_arrivals(warehouse, back(latest, 500)),
        "stream: repeat check 1": repeat_check(warehouse, unseen, 1, latest),
        "stream: repeat check 10": repeat_check(warehouse, unseen, 10, latest),
        "stream: repeat check 200": repeat_check(warehouse, unseen, 200, latest),
        "stream: catch-up page": lambda: arrivals.arrivals_between(
            warehouse, TENANT, members, behind, latest
        ),
        "stream: deliver 1 entry": lambda: _flagged_entries(
            warehouse, TENANT, members, [mine[-1].event_id]
        ),
        "stream: header, alone": lambda: derived_of(warehouse, TENANT, members),
        "stream: header, 200 streams": lambda: derived_by_member(warehouse, watched),
    }  # fmt: skip


def repeat_check(
    warehouse: ChdbWarehouse, unseen: Iterator[Arrival], size: int, up_to: dict[int, int]
) -> Read:
    """The hub's repeat check of `size` arrivals, other ones at every call, as the hub's polls
    ask: chdb remembers which granules a condition matched (its query condition cache), so the
    same ids asked again skip the table and a scan would look as cheap as a key read."""
    return lambda: arrivals.earlier_arrivals(warehouse, list(islice(unseen, size)), up_to)


def unseen_arrivals(warehouse: ChdbWarehouse) -> Iterator[Arrival]:
    """The newest arrivals (up to `arrivals.MAX_POLL`), one after another, round again at the
    end: enough for `--runs` 40 of the three checks of both customers (2 × 41 × 211 arrivals)
    before one repeats."""
    latest = arrivals.latest_positions(warehouse)
    return cycle(arrivals.poll_arrivals(warehouse, back(latest, arrivals.MAX_POLL)))


def back(positions: dict[int, int], arrivals_behind: int) -> dict[int, int]:
    share = arrivals_behind // max(1, len(positions))
    return {p: o - share for p, o in positions.items()}


def page(warehouse: ChdbWarehouse, name: str) -> Any:
    return read_timeline(warehouse, TENANT, [name], limit=50)


def timeline_route(warehouse: ChdbWarehouse, name: str, start: Read) -> object:
    """What `GET /v1/customers/{id}/timeline?limit=50` asks the warehouse."""
    start()
    return read_flagged_page(warehouse, TENANT, [name], limit=50)


def three_queries_route(warehouse: ChdbWarehouse, name: str, read_start: Read) -> object:
    """The route as it read before issue 14, for comparison in turns: the stream start read
    (what arrived after the last answer), the page, the flags apart."""
    read_start()
    entries = page(warehouse, name).entries
    return flag_repeats(warehouse, TENANT, [name], entries)


def report(warehouse: ChdbWarehouse, runs: int) -> None:
    unseen = unseen_arrivals(warehouse)  # shared: the second customer's checks ask other ids
    for name in ("heavy", "typical"):
        print(f"\ncustomer {name!r}: ms   p50     p90     p99     max")
        for read, seconds in in_turns(reads(warehouse, name, unseen), runs).items():
            ms = [t * 1000 for t in seconds]
            cells = [percentile(ms, q) for q in (50, 90, 99)] + [max(ms)]
            print(f"  {read:28} " + " ".join(f"{v:7.1f}" for v in cells))
        print(f"  load average {os.getloadavg()}")


def table_sizes(warehouse: ChdbWarehouse) -> str:
    rows = warehouse.select(
        "SELECT name, total_rows FROM system.tables WHERE database = currentDatabase()"
        " AND total_rows > 0 ORDER BY name"
    )
    return ", ".join(f"{r['name']} {r['total_rows']}" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", help="keep the warehouse here (reused when already built)")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.dir or scratch)
        warehouse = ChdbWarehouse(path, database="bench")
        started = time.perf_counter()
        ensure_tables(warehouse, PROJECTIONS)
        print(f"tables ensured in {time.perf_counter() - started:.2f} s")
        if not (path / BUILT).exists():
            started = time.perf_counter()
            build(warehouse, args.customers, args.events, args.copies)
            (path / BUILT).touch()
            print(f"built in {time.perf_counter() - started:.1f} s")
        print(table_sizes(warehouse))
        report(warehouse, args.runs)
        warehouse.close()


if __name__ == "__main__":
    main()
