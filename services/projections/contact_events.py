"""Contact events: one narrow row per event that first-contact resolution (`fcr@1`) pairs.

`GET /v1/service/fcr` reads a tenant's months of contacts. Read from the timeline, every payload's
JSON was decoded per request (seconds for 100 000 calls). So each event of a type fcr@1 reads gets,
beside its timeline row, a `contact_events` row holding what the pairing needs, read from its
payload once, when projected: whether it is an inbound contact, its topic, case, agent and queue,
whether it resolves or reopens. Built from the timeline row itself (`to_contact_event_rows`), by the
projection batch and by the backfill of tables from an earlier release alike, so both hold the same
rows, and a replay rebuilds them with the timeline. Rows keep the customer they were filed under;
merges are applied when read, as on the timeline.

Sorted by (tenant_id, derived_at, event_id, customer_id): the read is a tenant's time range, not a
customer's history. ReplacingMergeTree like every projection table; reads deduplicate by event id.

Tables from a release before this one have a timeline but no contact events: `backfill` makes
the table once, filled from the timeline, when a process of this release first ensures the tables
(`cem.runner.ensure_tables`), and it appears only complete (`services.projections.new_tables`, as
the by-event arrivals). Until it exists, readers read the timeline instead (`backfilled`, which
a reader remembers once true: `Backfilled`). A crash part-way copies again (copies collapse), but
rows an old-release worker writes after the copy get no contact row: stop the old workers first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from kernel.dialect import replacing_engine
from kernel.ports import Warehouse
from services.projections.new_tables import create_filled, table_exists
from services.projections.repeat_contact import CONTACT_TYPES, is_contact
from services.projections.sql import TIMELINE

CONTACT_EVENTS = "contact_events"
# Every contact type, the case events that resolve, reopen or name a topic, and the answer of a
# call in steps, which names its agent and queue when its end does not (fcr@1's reads).
CONTACT_EVENT_TYPES = tuple(
    dict.fromkeys(
        (*CONTACT_TYPES, "call.answered", "case.opened", "case.resolved", "case.reopened")
    )
)
BACKFILL_PAGE = 20_000


def table_ddl(table: str, version: tuple[int, ...]) -> str:
    """The contact events table, made by `backfill` (it may need filling)."""
    order = ("tenant_id", "derived_at", "event_id", "customer_id")
    return f"""CREATE TABLE IF NOT EXISTS {table} (
            tenant_id String, customer_id String, derived_at Int64, event_id String,
            received_at Int64, channel String, touchpoint String, correlation_id String,
            contact UInt8, resolves UInt8, reopens UInt8,
            topic String, case_id String, agent String, queue String
        ) {replacing_engine(order, version)}"""


@dataclass(frozen=True)
class PayloadFacts:
    """What one event tells fcr@1, read from its type, channel and payload."""

    contact: bool  # an inbound, customer-initiated contact (repeat_contact@1)
    topic: str
    case_id: str
    agent: str
    queue: str
    resolves: bool  # a `case.resolved`, or a `call.ended` with `resolved: true`
    reopens: bool  # a `case.reopened`


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    return value if isinstance(value, str) else ""


def payload_facts(kind: str, channel: str, payload: Mapping[str, Any]) -> PayloadFacts:
    """The facts of one event ('' for a text the payload does not hold as a string)."""
    resolves = kind == "case.resolved" or (kind == "call.ended" and payload.get("resolved") is True)
    return PayloadFacts(
        contact=is_contact(kind, channel, payload),
        topic=_text(payload, "topic"),
        case_id=_text(payload, "case_id"),
        agent=_text(payload, "agent"),
        queue=_text(payload, "queue"),
        resolves=resolves,
        reopens=kind == "case.reopened",
    )


def contact_event_row(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The contact event of one timeline row; None for a type fcr@1 does not read."""
    if row["type"] not in CONTACT_EVENT_TYPES:
        return None
    facts = payload_facts(row["type"], row["channel"], orjson.loads(row["payload_json"]))
    return {
        "tenant_id": row["tenant_id"],
        "customer_id": row["customer_id"],
        "derived_at": row["derived_at"],
        "event_id": row["event_id"],
        "received_at": row["received_at"],
        "channel": row["channel"],
        "touchpoint": row["touchpoint"],
        "correlation_id": row["correlation_id"],
        "contact": int(facts.contact),
        "resolves": int(facts.resolves),
        "reopens": int(facts.reopens),
        "topic": facts.topic,
        "case_id": facts.case_id,
        "agent": facts.agent,
        "queue": facts.queue,
    }


def to_contact_event_rows(timeline_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The contact events of timeline rows (those of the types fcr@1 reads)."""
    return [found for row in timeline_rows if (found := contact_event_row(row)) is not None]


# --- the one-off copy from the timeline of an earlier release ----------------------------------
_TYPES = ", ".join(f"'{t}'" for t in CONTACT_EVENT_TYPES)
# Paged by the timeline's sorting key, written without tuple comparison for 18.16. Copies of one
# event sort together; a page boundary between them leaves the rest out, which is harmless.
_TIMELINE_PAGE = f"""SELECT tenant_id, customer_id, derived_at, event_id, received_at, channel,
       type, touchpoint, correlation_id, payload_json
FROM {TIMELINE}
WHERE type IN ({_TYPES}) AND (tenant_id > {{{{t:String}}}} OR (tenant_id = {{{{t:String}}}} AND (
    customer_id > {{{{c:String}}}} OR (customer_id = {{{{c:String}}}} AND (
        derived_at > {{{{d:Int64}}}} OR (derived_at = {{{{d:Int64}}}} AND event_id > {{{{e:String}}}}))))))
ORDER BY tenant_id, customer_id, derived_at, event_id
LIMIT {{limit}}"""


def backfilled(warehouse: Warehouse) -> bool:
    """Whether the contact events hold every timeline row's: whether `backfill` made the table
    (False while no process of this release has ensured the tables yet)."""
    return table_exists(warehouse, CONTACT_EVENTS)


class Backfilled:
    """`backfilled` of one warehouse, asked only until it is true: nothing drops the table, so a
    reader that has seen it made reads the contact events from then on without asking again.
    Safe across threads: a race only asks once more."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.done = False

    def __call__(self) -> bool:
        if not self.done:
            self.done = backfilled(self.warehouse)
        return self.done


def backfill(warehouse: Warehouse, page: int = BACKFILL_PAGE) -> int:
    """Make the contact events table, filled with those of every timeline row, once per warehouse
    (after the timeline's `ddl`); returns the timeline rows read (0 when the table existed)."""
    copied: list[int] = []

    def fill(table: str) -> None:
        copied.append(_copy_timeline(warehouse, table, page))

    create_filled(warehouse, CONTACT_EVENTS, partial(table_ddl, version=warehouse.version), fill)
    return sum(copied)


def _copy_timeline(warehouse: Warehouse, table: str, page: int) -> int:
    cursor: dict[str, Any] = {"t": "", "c": "", "d": -(2**62), "e": ""}  # before every row
    copied = 0
    while True:
        rows = warehouse.select(_TIMELINE_PAGE.format(limit=page), cursor)
        warehouse.insert(table, to_contact_event_rows(rows))
        copied += len(rows)
        if len(rows) < page:
            return copied
        last = rows[-1]
        cursor = {"t": last["tenant_id"], "c": last["customer_id"],
                  "d": last["derived_at"], "e": last["event_id"]}  # fmt: skip
