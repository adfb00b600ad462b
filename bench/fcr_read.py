"""What one `GET /v1/service/fcr` read costs on chdb: the rows it reads (SQL) and the pairing of
contacts in Python, for one busy tenant; from the contact events table (what the route reads) and
from the timeline (the reference, read before a backfill), checked to give the same cells.

Events of 2,000 customers with opaque ids spread over 45 days, half ended calls (single-event
contacts), half chats that open cases, resolved, sometimes reopened (conversations and cases
linked by correlation id, as the demo's support threads), then a 30-day read by day as of the end
of the data, in a process whose collector is settled as a served one's (`settle_collector`). Numbers only, with the load average; nothing
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
from kernel.collector import settle_collector
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
TOPICS = ("billing", "delivery", "returns")
QUEUES = {"billing": "q1", "delivery": "q2", "returns": "q2"}
AGENTS = ("ana", "leo", "eva")
_KEY = customer_id_key(b"bench platform key")


def _rows(customer: str, at: datetime, kind: str, channel: str, touchpoint: str,
          payload: dict[str, Any], corr: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": kind,
           "channel": channel, "touchpoint": touchpoint, "payload": payload,
           "customer": {"phone": "+34600000000"}, "correlation_id": corr}  # fmt: skip
    event, _ = accept(
        {k: v for k, v in raw.items() if v is not None}, TENANT, at + timedelta(seconds=1)
    )
    return to_timeline_rows(event, customer)


def _chat_case(customer: str, at: datetime, rng: Random, n: int) -> list[dict[str, Any]]:
    """A chat that opens a case, as the demo's support threads: the customer writes, an agent
    answers, the case (topic, agent, queue) is usually resolved and sometimes reopened, every
    event on the case's correlation id."""
    case_id, topic = f"CS-{n:07d}", rng.choice(TOPICS)
    base = {"case_id": case_id, "topic": topic, "agent": rng.choice(AGENTS), "queue": QUEUES[topic]}
    thread = [
        (at, "message.received", {"sender": "customer", "text": "hola"}),
        (
            at + timedelta(minutes=3),
            "message.sent",
            {"sender": "agent", "text": "ok", "agent": base["agent"]},
        ),
        (at + timedelta(minutes=4), "case.opened", base),
    ]
    done = at + timedelta(hours=rng.uniform(1, 48))
    if rng.random() < 0.9:
        thread.append((done, "case.resolved", base))
        if rng.random() < 0.1:
            reopened = done + timedelta(days=rng.uniform(1, 6))
            thread += [(reopened, "case.reopened", base),
                       (reopened + timedelta(hours=5), "case.resolved", base)]  # fmt: skip
    return [row for when, kind, payload in thread
            for row in _rows(customer, when, kind, "chat", "web_chat", payload, case_id)]  # fmt: skip


def support_rows(n: int, rng: Random) -> list[dict[str, Any]]:
    """About `n` events as the timeline stores them: half ended calls (resolved or not, a topic,
    agent and queue each), half chats that open cases (`_chat_case`), like the demo's mix of
    single-event contacts and conversations linked by correlation id and case."""
    ids = [opaque_customer_id(_KEY, TENANT, f"phone:+346{i:08d}") for i in range(CUSTOMERS)]
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        at = START + timedelta(seconds=rng.randrange(DAYS * 86_400))
        customer = rng.choice(ids)
        if rng.random() < 0.5:
            topic = rng.choice(TOPICS)
            payload = {"resolved": rng.random() < 0.7, "topic": topic,
                       "agent": rng.choice(AGENTS), "queue": QUEUES[topic]}  # fmt: skip
            rows += _rows(customer, at, "call.ended", "phone", "support_line", payload)
        else:
            rows += _chat_case(customer, at, rng, len(rows))
    return rows[:n]


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
        rows = support_rows(args.events, Random(7))
        for start in range(0, len(rows), 10_000):
            batch = rows[start : start + 10_000]
            warehouse.insert(TIMELINE, batch)
            warehouse.insert(CONTACT_EVENTS, to_contact_event_rows(batch))
        del rows, batch  # the data lives in the warehouse, as for a served process
        settle_collector()  # as `cem up` and the query API do once started
        since = to_micros(START + timedelta(days=DAYS - 30))
        until = as_of = to_micros(START + timedelta(days=DAYS))
        week = 7 * 86_400 * 1_000_000
        reads = {
            "contact events (read_fcr, the route's)": (False, read_contact_events),
            "timeline (reference)": (True, read_fcr_rows),
        }
        print(f"fcr@1 30-day read by day over {args.events} events in {DAYS} days, chdb:")
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
        counts = ("contacts", "resolved_first_contacts", "fcr_final", "fcr_provisional", "repeated")
        print("  " + ", ".join(f"{c} {sum(getattr(x, c) for x in answers[0])}" for c in counts))
        print(f"  load average {os.getloadavg()}")
        warehouse.close()


if __name__ == "__main__":
    main()
