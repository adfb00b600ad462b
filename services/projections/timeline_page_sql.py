"""A timeline page with its repeat contacts flagged, read in one query (ClickHouse SQL that also
runs on server 18.16).

Each read of the table has a floor of its own (a few ms on chdb, for a subquery as for a query),
so the page and what its flags need are one `UNION ALL` of two reads of the customer's key range:
the page's rows (`in_page` 1), and the customer's contact-type rows up to the page's upper end,
newest first (`in_page` 0). The rows `read_contact_rows` would return for the page's
`flag_range` — the rows of the range and the earlier rows of their conversations — are among
those, so the flags are found from them in Python (`conversation_rows`), the same as the page read
and `flag_repeats` would find in two queries (three reads: the page, the range, its conversations).

Where the range itself cannot be known in SQL (it comes from the page's rows; a scalar subquery
for it, or the conversations' IN-subquery, would each be a read of its own) the history is read
instead; `MAX_CONTACT_HISTORY` bounds it. A customer with more contact rows than that before the
page has its range read apart, as before (a second query). The contact part's columns a page row
has and a contact row does not need are typed constants: `UNION ALL` wants one type per column.
"""

from __future__ import annotations

from typing import Any

from kernel.ports import Warehouse
from services.projections.repeat_contact_sql import (
    CANDIDATES,
    CONTACT_TYPES_SQL,
    conversation_rows,
    flag_range,
    flag_repeats,
    flagged,
)
from services.projections.sql import TIMELINE, TIMELINE_QUERY, Members, page_where, read_timeline
from services.projections.timeline import Cursor, TimelineEntry, TimelineFilter, TimelinePage

# Contact rows read beside a page: the customer's whole contact history before it, for most.
MAX_CONTACT_HISTORY = 1000

# In the page's column order (TIMELINE_QUERY); `pad_*` are the constants standing for the rest.
_HISTORY = """SELECT event_id, derived_at, toInt64(0) AS pad_occurred, toInt64(0) AS pad_received,
       toUInt8(0) AS pad_corrected, channel, type, touchpoint, '' AS pad_source, correlation_id,
       '' AS pad_summary, payload_json, emptyArrayString() AS pad_identifiers
FROM {table}
WHERE CANDIDATES{upper}
ORDER BY derived_at DESC, event_id DESC
LIMIT 1 BY event_id
LIMIT {{history:UInt32}}""".replace("CANDIDATES", CANDIDATES)

# The page's own upper ends, which no entry of it passes.
_UPPER = {
    "cursor_at": "\n  AND derived_at <= {cursor_at:Int64}",
    "until": "\n  AND derived_at < {until:Int64}",
}

_PAGE_AND_HISTORY = """SELECT 1 AS in_page, * FROM ({page})
UNION ALL
SELECT 0 AS in_page, * FROM ({history})"""


def flagged_page_query(
    tenant_id: str, customer: Members, filters: TimelineFilter, cursor: Cursor | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a page (limit + 1 rows, to detect a next page) and of the
    customer's contact rows up to its upper end."""
    members, conditions, params = page_where(tenant_id, customer, filters, cursor)
    page = TIMELINE_QUERY.format(table=TIMELINE, members=members, conditions=conditions)
    upper = "".join(fragment for name, fragment in _UPPER.items() if name in params)
    history = _HISTORY.format(table=TIMELINE, members=members, types=CONTACT_TYPES_SQL, upper=upper)
    sql = _PAGE_AND_HISTORY.format(page=page, history=history)
    return sql, params | {"limit": limit + 1, "history": MAX_CONTACT_HISTORY}


def read_flagged_page(
    warehouse: Warehouse,
    tenant_id: str,
    customer: Members,
    filters: TimelineFilter | None = None,
    cursor: Cursor | None = None,
    limit: int = 50,
) -> TimelinePage | None:
    """`read_timeline` with the page's repeat contacts flagged (`flag_repeats`), in one query;
    more only for a page short of rows because of copies not merged yet, an empty page, or a
    customer with more contact history than `MAX_CONTACT_HISTORY` before the page."""
    filters = filters or TimelineFilter()
    rows = warehouse.select(*flagged_page_query(tenant_id, customer, filters, cursor, limit))
    page_rows = [row for row in rows if row["in_page"]]
    page_rows.sort(key=lambda row: (row["derived_at"], row["event_id"]), reverse=True)
    page = read_timeline(warehouse, tenant_id, customer, filters, cursor, limit, page_rows)
    if page is None:
        return None
    history = [row for row in rows if not row["in_page"]]
    if len(history) < MAX_CONTACT_HISTORY:
        entries = _flagged_from(page.entries, history)
    else:  # the history read may stop short of the range: read the range itself
        entries = flag_repeats(warehouse, tenant_id, customer, page.entries)
    return page.model_copy(update={"entries": entries})


def _flagged_from(
    entries: list[TimelineEntry], history: list[dict[str, Any]]
) -> list[TimelineEntry]:
    bounds = flag_range(entries)
    return entries if bounds is None else flagged(entries, conversation_rows(history, *bounds))
