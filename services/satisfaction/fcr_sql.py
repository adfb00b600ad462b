"""fcr@1 read from the timeline table (ClickHouse SQL that also runs on server 18.16).

No table of its own, like repeat_contact@1: the tenant's contact and case events around the range
are read, with the earlier events of the conversations they belong to, and `fcr.py` decides in
Python (18.16 has neither window functions nor ASOF joins). The read spans the 7 days before the
range (is a contact a first one?) and the 7 days after it (did the customer come back?). Rows are
grouped by the canonical customer of the one they were filed under (the caller passes the identity
map's redirects), so a merged customer's members are one customer. Only the table name, the fixed
type list and the row bound are formatted into SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.ports import Warehouse
from services.projections.repeat_contact import WINDOW_MICROS
from services.projections.repeat_contact_sql import conversation_rows_query
from services.projections.sql import TIMELINE
from services.satisfaction.fcr import READ_TYPES, fcr_contacts, outcomes
from services.satisfaction.fcr_cells import FcrCell, to_cells

# A bound on one read: a range this busy is answered with an error asking for a narrower one.
MAX_FCR_ROWS = 500_000

FCR_ROWS_QUERY = conversation_rows_query(
    """customer_id, event_id, derived_at, received_at, channel, type,
       touchpoint, correlation_id, payload_json""",
    "tenant_id = {{tenant_id:String}} AND type IN ({types})",
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
    rows = warehouse.select(sql, {"tenant_id": tenant_id, "since": since, "until": until})
    if len(rows) > max_rows:
        raise RangeTooBusy(f"more than {max_rows} contact events; narrow the range")
    return rows


def known_at(row: Mapping[str, Any], as_of: int) -> bool:
    """Whether a row was known as of a moment: its event time and its receipt (`received_at`,
    when ingest took it, kept through a replay) are both at or before it."""
    return bool(row["derived_at"] <= as_of and row["received_at"] <= as_of)


def read_fcr_cells(
    warehouse: Warehouse,
    tenant_id: str,
    since: int,
    until: int,
    bucket: str,
    as_of: int,
    canonical: Mapping[str, str] | None = None,
) -> list[FcrCell]:
    """fcr@1 and the repeat-contact rate of the contacts in [since, until), as of `as_of`;
    `canonical` maps absorbed customer ids to the customer they were merged into."""
    rows = read_fcr_rows(warehouse, tenant_id, since - WINDOW_MICROS, until + WINDOW_MICROS)
    # Nothing received or dated after as_of is read as known yet: a replay as of the same moment
    # agrees (a replay keeps each event's time and receipt).
    contacts = fcr_contacts((r for r in rows if known_at(r, as_of)), canonical)
    return to_cells(contacts, outcomes(contacts, as_of), since, until, bucket)
