"""fcr@1 read from the contact events table, or from the timeline (ClickHouse SQL that also runs on
server 18.16).

The tenant's contact and case events around the range are read, with the earlier events of the
conversations they belong to, and Python pairs them (18.16 has neither window functions nor ASOF
joins): from `contact_events` (narrow rows, payload facts read when projected) by
`fcr_pairing.py`; from the timeline (decoding every payload) by `fcr.py`, the rule's reference,
read while a warehouse of an earlier release waits for its contact events (`read_fcr`'s
`timeline`). Both reads are the same query on their table. It spans the 7 days before the range (is a contact a first one?)
and the 7 days after it (did the customer come back?). Rows are grouped by the canonical customer
of the one they were filed under (the caller passes the identity map's redirects), so a merged
customer's members are one customer. Only the table name, the fixed type list and the row bound
are formatted into SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.ports import Warehouse
from services.projections.contact_events import CONTACT_EVENTS
from services.projections.repeat_contact import WINDOW_MICROS
from services.projections.repeat_contact_sql import conversation_rows_query
from services.projections.sql import TIMELINE
from services.satisfaction.fcr import READ_TYPES, fcr_contacts, outcomes
from services.satisfaction.fcr_cells import FcrCell, to_cells
from services.satisfaction.fcr_pairing import COLUMNS, pair_cells

# A bound on one read: a range this busy is answered with an error asking for a narrower one.
MAX_FCR_ROWS = 500_000

FCR_ROWS_QUERY = conversation_rows_query(
    """customer_id, event_id, derived_at, received_at, channel, type,
       touchpoint, correlation_id, payload_json""",
    "tenant_id = {{tenant_id:String}} AND type IN ({types})",
    "derived_at, event_id",
)

CONTACT_EVENTS_QUERY = conversation_rows_query(
    ", ".join(COLUMNS),
    "tenant_id = {{tenant_id:String}}",
    "derived_at, event_id",
)

_TYPES = ", ".join(f"'{t}'" for t in READ_TYPES)


class RangeTooBusy(Exception):
    """More contact events around the range than one read takes."""


def read_fcr_rows(
    warehouse: Warehouse, tenant_id: str, since: int, until: int, max_rows: int = MAX_FCR_ROWS
) -> list[dict[str, Any]]:
    """The tenant's contact and case rows derived in [since, until] (epoch micros, inclusive),
    with the earlier rows of their conversations."""
    sql = FCR_ROWS_QUERY.format(table=TIMELINE, types=_TYPES, max_rows=max_rows + 1)
    rows = warehouse.select(sql, _params(tenant_id, since, until))
    _refuse_beyond(max_rows, len(rows))
    return rows


def read_contact_events(
    warehouse: Warehouse, tenant_id: str, since: int, until: int, max_rows: int = MAX_FCR_ROWS
) -> dict[str, list[Any]]:
    """The same events as `read_fcr_rows`, as contact events (the facts, no payload), by column."""
    sql = CONTACT_EVENTS_QUERY.format(table=CONTACT_EVENTS, max_rows=max_rows + 1)
    columns = warehouse.select_columns(sql, _params(tenant_id, since, until))
    _refuse_beyond(max_rows, len(columns["event_id"]))
    return columns


def _params(tenant_id: str, since: int, until: int) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "since": since, "until": until}


def _refuse_beyond(max_rows: int, found: int) -> None:
    if found > max_rows:
        raise RangeTooBusy(f"more than {max_rows} contact events; narrow the range")


def known_at(row: Mapping[str, Any], as_of: int) -> bool:
    """Whether a row was known as of a moment: its event time and its receipt (`received_at`,
    when ingest took it, kept through a replay) are both at or before it."""
    return bool(row["derived_at"] <= as_of and row["received_at"] <= as_of)


def read_fcr(
    warehouse: Warehouse,
    tenant_id: str,
    since: int,
    until: int,
    bucket: str,
    as_of: int,
    canonical: Mapping[str, str] | None = None,
    *,
    timeline: bool = False,
    zone: str = "UTC",
) -> list[FcrCell]:
    """fcr@1 and the repeat-contact rate of the contacts in [since, until), as of `as_of`;
    `canonical` maps absorbed customer ids to the customer they were merged into. Read from the
    contact events, or with `timeline` from the timeline by the rule's reference (`fcr.py`): the
    same answer, slower, read while an earlier release's data waits for its contact events."""
    read_since, read_until = since - WINDOW_MICROS, until + WINDOW_MICROS
    # Nothing received or dated after as_of is read as known yet: a replay as of the same moment
    # agrees (a replay keeps each event's time and receipt).
    if not timeline:  # the pairing skips the events not known as of as_of (`known_at`'s rule)
        columns = read_contact_events(warehouse, tenant_id, read_since, read_until)
        return pair_cells(columns, canonical, as_of, since, until, bucket, zone=zone)
    rows = read_fcr_rows(warehouse, tenant_id, read_since, read_until)
    contacts = fcr_contacts((r for r in rows if known_at(r, as_of)), canonical)
    return to_cells(contacts, outcomes(contacts, as_of), since, until, bucket, zone)
