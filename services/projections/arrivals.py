"""Arrivals: where each timeline row sits in the event log, so live streams follow arrival.

A customer's live stream (`GET /v1/customers/{id}/stream`) must deliver every new timeline row
once, including late events whose `occurred_at` is old. Event time cannot be the stream's cursor,
and neither can a clock read by the writer (two writers' inserts become visible in any order).
The log position can: each partition of the log is consumed by one writer at a time, in offset
order, and a batch's rows are inserted before its offsets are committed. So once the arrival of
offset `o` of partition `p` is visible, every earlier arrival of `p` is visible too, and a cursor
that holds the last offset seen per partition loses and repeats nothing.

The `stream_arrivals` row of an event is written after its timeline row (same batch, tables in
order), so an arrival always finds its timeline row. A replay rebuilds identical rows: the
positions are those of the log being replayed.

Positions of `filings` are told apart from those of `touchpoints`, which a release before the
filing stage stamped: a filing's arrival sits at partition `FILING_POSITIONS + p`
(`kernel.filings.project_filings`). So after an upgrade the old rows neither hide the new ones
(old offsets are higher than the new stream's first ones) nor get mixed with them, and a cursor
handed out before the upgrade still names the old rows it has passed.

One event can arrive more than once: a redelivered filing batch (the filing stage appended its
filings but died before committing its offsets), the re-filing of the whole history after an
upgrade, or a producer writing one event twice to Kafka. A stream shows an event at its first
arrival among the customer's members: an arrival is a repeat when the same event arrived under one
of them at a position the stream's client had already passed (`earlier_arrivals`).

That check looks events up by id, which the position-ordered `stream_arrivals` cannot serve (each
lookup read the whole table, slower as history grew), so every arrival is written twice: to
`stream_arrivals`, ordered by position, and to `stream_arrivals_by_event`, the same rows ordered by
(tenant_id, event_id), whose primary key serves the lookup. Both are rows of the same projection
batch (a replay rebuilds both), the by-event one first: once an arrival is visible to a poll, its
by-event row is too. Every arrival is kept, not just an event's first: positions of different
partitions do not compare, so which arrival a cursor has passed is a question per partition.
A table from a release before the by-event one is filled once from `stream_arrivals` (`migrate`).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from kernel.dialect import replacing_engine
from kernel.ports import Warehouse
from schemas.envelope import Event
from services.projections.new_tables import create_filled, filling

ARRIVALS = "stream_arrivals"
ARRIVALS_BY_EVENT = "stream_arrivals_by_event"
# Where `migrate` fills the by-event table before renaming it: it appears only complete.
BY_EVENT_BACKFILL = filling(ARRIVALS_BY_EVENT)
# Rows per page of a catch-up after a disconnection (the stream reads as many pages as it needs).
MAX_CATCH_UP = 5000
MAX_POLL = 20_000

Positions = dict[int, int]  # log partition -> last offset seen (or delivered)


def ddl(version: tuple[int, ...]) -> list[str]:
    """The position-ordered table; the by-event one is made by `migrate` (it may need filling)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {ARRIVALS} (
            log_partition UInt32, log_offset Int64, tenant_id String, customer_id String,
            event_id String
        ) {replacing_engine(("log_partition", "log_offset"), version)}"""
    ]


_BY_EVENT_KEY = ("tenant_id", "event_id", "customer_id", "log_partition", "log_offset")


def by_event_ddl(table: str, version: tuple[int, ...]) -> str:
    # The whole row is the key: a re-inserted batch collapses on merge, nothing else does. Small
    # granules: a lookup reads one per event id asked for, and ids are spread over the table.
    return f"""CREATE TABLE IF NOT EXISTS {table} (
            tenant_id String, event_id String, customer_id String, log_partition UInt32,
            log_offset Int64
        ) {replacing_engine(_BY_EVENT_KEY, version)} SETTINGS index_granularity = 1024"""


def migrate(warehouse: Warehouse) -> None:
    """Create the by-event table, filled with the arrivals an earlier release wrote (after
    `ddl`), once per warehouse (`services.projections.new_tables`; a row inserted twice
    collapses, and reads are DISTINCT)."""
    columns = ", ".join(_BY_EVENT_KEY)

    def fill(table: str) -> None:
        warehouse.command(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {ARRIVALS}")

    create_filled(
        warehouse, ARRIVALS_BY_EVENT, partial(by_event_ddl, version=warehouse.version), fill
    )


def to_arrival_rows(event: Event, customer_id: str) -> dict[str, list[dict[str, Any]]]:
    """The arrival rows of an event, by table (by event first: see the module docstring); the
    batch fills `log_partition` and `log_offset` in (`kernel.processing.stamp_position`), since
    a projection cannot know them."""
    row = {
        "log_partition": None,
        "log_offset": None,
        "tenant_id": event.tenant_id,
        "customer_id": customer_id,
        "event_id": str(event.event_id),
    }
    return {ARRIVALS_BY_EVENT: [dict(row)], ARRIVALS: [row]}


@dataclass(frozen=True)
class Arrival:
    """One timeline row's place in the log."""

    partition: int
    offset: int
    tenant_id: str
    customer_id: str
    event_id: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Arrival:
        return cls(
            int(row["log_partition"]),
            int(row["log_offset"]),
            row["tenant_id"],
            row["customer_id"],
            row["event_id"],
        )


# --- cursor -----------------------------------------------------------------------------------
class InvalidStreamCursor(ValueError):
    """A Last-Event-ID this API did not hand out."""


def encode_positions(positions: Positions) -> str:
    text = ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") or "-"


def decode_positions(cursor: str) -> Positions:
    """The inverse of `encode_positions`; raises InvalidStreamCursor on anything else."""
    if cursor == "-":
        return {}
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        pairs = (item.split(":") for item in text.split(","))
        positions = {int(p): int(o) for p, o in pairs}
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidStreamCursor("not a stream cursor of this API") from exc
    if any(p < 0 or p > 65_535 or o < -1 for p, o in positions.items()):
        raise InvalidStreamCursor("not a stream cursor of this API")
    return positions


def advance(positions: Positions, newer: Positions) -> Positions:
    """Pointwise maximum: the later of two cursors, partition by partition."""
    merged = dict(positions)
    for partition, offset in newer.items():
        merged[partition] = max(offset, merged.get(partition, -1))
    return merged


# --- queries ----------------------------------------------------------------------------------
def after_condition(positions: Positions) -> tuple[str, dict[str, Any]]:
    """`(arrived after these positions)`: an offset past the cursor in a partition it knows, or
    any offset of a partition it does not know yet (none of which it can have seen)."""
    if not positions:
        return "1", {}
    parts, params = [], {}
    for i, (partition, offset) in enumerate(sorted(positions.items())):
        parts.append(f"(log_partition = {{p_{i}:UInt32}} AND log_offset > {{o_{i}:Int64}})")
        params[f"p_{i}"], params[f"o_{i}"] = partition, offset
    known = ", ".join(f"{{p_{i}:UInt32}}" for i in range(len(positions)))
    parts.append(f"log_partition NOT IN ({known})")
    return "(" + " OR ".join(parts) + ")", params


def up_to_condition(positions: Positions) -> tuple[str, dict[str, Any]]:
    """`(arrived at or before these positions)`; nothing when they are empty."""
    if not positions:
        return "0", {}
    parts, params = [], {}
    for i, (partition, offset) in enumerate(sorted(positions.items())):
        parts.append(f"(log_partition = {{q_{i}:UInt32}} AND log_offset <= {{r_{i}:Int64}})")
        params[f"q_{i}"], params[f"r_{i}"] = partition, offset
    return "(" + " OR ".join(parts) + ")", params


_COLUMNS = "log_partition, log_offset, tenant_id, customer_id, event_id"


def latest_positions(warehouse: Warehouse, floor: Positions | None = None) -> Positions:
    """The last arrival of every partition: where a new stream starts. `floor`, positions this
    warehouse had reached before, limits the read to what arrived after them (a range of the
    key instead of the whole table); the answer is the same, since positions only grow."""
    after, params = after_condition(floor or {})
    rows = warehouse.select(
        f"""SELECT log_partition, max(log_offset) AS last FROM {ARRIVALS} WHERE {after}
            GROUP BY log_partition""",
        params,
    )
    return advance(floor or {}, {int(r["log_partition"]): int(r["last"]) for r in rows})


class LatestPositions:
    """`latest_positions` of one warehouse, each call reading only what arrived since the last:
    nothing deletes arrivals (retention and erasure leave them), so a partition's last offset
    only grows and an earlier answer is a floor for the next. Safe across threads.

    `told`: every arrival stored from now on is told to `stored`, once inserted (the embedded
    projections, this process's, are the warehouse's only writer). Then one read, for what was
    stored before, is the last: every later answer comes from memory, and is as safe as a read (an
    arrival told is visible) and as fresh (nothing is stored without being told)."""

    def __init__(self, warehouse: Warehouse, *, told: bool = False) -> None:
        self.warehouse, self.told = warehouse, told
        self.floor: Positions = {}
        self.read_once = False
        self.lock = threading.Lock()

    def stored(self, positions: Positions) -> None:
        """Positions of arrivals just inserted (by the writer that tells them)."""
        with self.lock:
            self.floor = advance(self.floor, positions)

    def __call__(self) -> Positions:
        with self.lock:
            floor, known = dict(self.floor), self.told and self.read_once
        if known:
            return floor
        latest = latest_positions(self.warehouse, floor)
        with self.lock:
            self.floor, self.read_once = advance(self.floor, latest), True
        return latest


def positions_of(rows: Sequence[Mapping[str, Any]]) -> Positions:
    """The last position of each partition among stamped arrival rows."""
    last: Positions = {}
    for row in rows:
        partition, offset = int(row["log_partition"]), int(row["log_offset"])
        last[partition] = max(offset, last.get(partition, -1))
    return last


def poll_arrivals(warehouse: Warehouse, positions: Positions) -> list[Arrival]:
    """Every tenant's arrivals after `positions`, in log order: one query serves every stream."""
    after, params = after_condition(positions)
    rows = warehouse.select(
        f"""SELECT {_COLUMNS} FROM {ARRIVALS} WHERE {after}
            ORDER BY log_partition, log_offset LIMIT 1 BY log_partition, log_offset
            LIMIT {MAX_POLL}""",
        params,
    )
    return [Arrival.from_row(r) for r in rows]


def earlier_arrivals(
    warehouse: Warehouse, arrivals: Sequence[Arrival], up_to: Positions
) -> set[tuple[str, str, str]]:
    """(tenant, customer, event) of the given arrivals' events that had already arrived at or
    before `up_to`: one query for a batch, a range of the by-event table's key per event."""
    if not arrivals or not up_to:
        return set()
    up_to_sql, params = up_to_condition(up_to)
    by_tenant: dict[str, set[str]] = {}
    for a in arrivals:
        by_tenant.setdefault(a.tenant_id, set()).add(a.event_id)
    # `tenant_id =` rather than IN: the key is then searched by ranges, not scanned for a set.
    groups, n = [], 0
    for t, (tenant, events) in enumerate(sorted(by_tenant.items())):
        names = [f"event_{n + i}" for i in range(len(events))]
        params |= {f"tenant_{t}": tenant, **dict(zip(names, sorted(events), strict=True))}
        in_events = ", ".join(f"{{{name}:String}}" for name in names)
        groups.append(f"(tenant_id = {{tenant_{t}:String}} AND event_id IN ({in_events}))")
        n += len(events)
    rows = warehouse.select(
        f"""SELECT DISTINCT tenant_id, customer_id, event_id FROM {ARRIVALS_BY_EVENT}
            WHERE ({" OR ".join(groups)}) AND {up_to_sql}""",
        params,
    )
    return {(r["tenant_id"], r["customer_id"], r["event_id"]) for r in rows}


def arrivals_between(
    warehouse: Warehouse,
    tenant_id: str,
    members: Sequence[str],
    after: Positions,
    up_to: Positions,
) -> list[Arrival]:
    """One customer's arrivals after `after` and at or before `up_to`, in log order."""
    after_sql, after_params = after_condition(after)
    up_to_sql, up_to_params = up_to_condition(up_to)
    names = [f"member_{i}" for i in range(len(members))]
    in_members = ", ".join(f"{{{name}:String}}" for name in names)
    rows = warehouse.select(
        f"""SELECT {_COLUMNS} FROM {ARRIVALS}
            WHERE tenant_id = {{tenant_id:String}} AND customer_id IN ({in_members})
              AND {after_sql} AND {up_to_sql}
            ORDER BY log_partition, log_offset LIMIT 1 BY log_partition, log_offset
            LIMIT {MAX_CATCH_UP}""",
        {
            "tenant_id": tenant_id,
            **dict(zip(names, members, strict=True)),
            **after_params,
            **up_to_params,
        },
    )
    return [Arrival.from_row(r) for r in rows]
