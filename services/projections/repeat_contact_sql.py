"""Repeat contacts read from the timeline table (ClickHouse SQL that also runs on server 18.16).

No table of their own: the customer's contact events in a range are read, with the earlier events
of the conversations they belong to, and `repeat_contact.py` decides in Python (18.16 has neither
window functions nor ASOF joins). Reads gather every member of a merged customer, as the timeline
does. Only the table name, the fixed type list and the members fragment are formatted into SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kernel.ports import Warehouse
from kernel.processing import to_micros
from services.projections.repeat_contact import (
    CONTACT_TYPES,
    WINDOW_MICROS,
    RepeatContact,
    contacts_of,
    latest_repeat,
    repeats,
)
from services.projections.sql import TIMELINE, Members, members_filter
from services.projections.timeline import TimelineEntry

# The profile looks at the customer's latest events of the contact types, not the whole history.
PROFILE_CONTACT_EVENTS = 200
# A bound on what one read fetches; a page of the timeline reaches it only with thousands of
# contact events in the week before it.
MAX_CONTACT_ROWS = 10_000

CANDIDATES = "tenant_id = {{tenant_id:String}} AND {members} AND type IN ({types})"
_IN_RANGE = "derived_at >= {{since:Int64}} AND derived_at <= {{until:Int64}}"
_CONVERSATION_ROWS = """SELECT <columns>
FROM {table}
WHERE <candidates> AND ((<in_range>) OR (
    derived_at < {{since:Int64}} AND correlation_id != '' AND correlation_id IN (
        SELECT correlation_id FROM {table}
        WHERE <candidates> AND <in_range> AND correlation_id != '')))
ORDER BY <order>
LIMIT 1 BY event_id
LIMIT {max_rows}"""


def conversation_rows_query(columns: str, candidates: str, order: str) -> str:
    """A template reading the `candidates` rows derived in [since, until] and the earlier rows of
    the conversations they belong to: a conversation that started before the range is one contact
    from its start, not a new one inside the range. Left to format: `table`, `max_rows` and what
    `candidates` names."""
    return (
        _CONVERSATION_ROWS.replace("<columns>", columns)
        .replace("<candidates>", candidates)
        .replace("<in_range>", _IN_RANGE)
        .replace("<order>", order)
    )


CONTACTS_QUERY = conversation_rows_query(
    """event_id, derived_at, channel, type, touchpoint, correlation_id,
       payload_json""",
    CANDIDATES,
    "derived_at DESC, event_id DESC",
)

LATEST_QUERY = """SELECT count() AS n, min(derived_at) AS since, max(derived_at) AS until
FROM (
    SELECT event_id, derived_at FROM {table} WHERE CANDIDATES
    ORDER BY derived_at DESC, event_id DESC
    LIMIT 1 BY event_id
    LIMIT {max_rows}
)""".replace("CANDIDATES", CANDIDATES)

CONTACT_TYPES_SQL = ", ".join(f"'{t}'" for t in CONTACT_TYPES)


def _sql(template: str, customer: Members, max_rows: int) -> tuple[str, dict[str, Any]]:
    members, params = members_filter(customer)
    sql = template.format(
        table=TIMELINE, members=members, types=CONTACT_TYPES_SQL, max_rows=max_rows
    )
    return sql, params


def read_contact_rows(
    warehouse: Warehouse, tenant_id: str, customer: Members, since: int, until: int
) -> list[dict[str, Any]]:
    """Contact-type rows of the customer derived in [since, until] (epoch micros, inclusive),
    with the earlier rows of their conversations."""
    sql, params = _sql(CONTACTS_QUERY, customer, MAX_CONTACT_ROWS)
    return warehouse.select(sql, {"tenant_id": tenant_id, **params, "since": since, "until": until})


def read_repeat_contact(
    warehouse: Warehouse, tenant_id: str, customer: Members
) -> RepeatContact | None:
    """The latest contact that repeated an earlier one within the window, among the customer's
    latest contact events (`PROFILE_CONTACT_EVENTS`); None when there is none."""
    sql, params = _sql(LATEST_QUERY, customer, PROFILE_CONTACT_EVENTS)
    [bounds] = warehouse.select(sql, {"tenant_id": tenant_id, **params})
    if not bounds["n"]:
        return None
    since = int(bounds["since"])
    rows = read_contact_rows(warehouse, tenant_id, customer, since, int(bounds["until"]))
    return latest_repeat([c for c in contacts_of(rows) if c.at >= since])


def flag_range(entries: Sequence[TimelineEntry]) -> tuple[int, int] | None:
    """The range (epoch micros, inclusive) whose contact rows flag the entries: from a week
    before their first contact-type entry to their last; None when they have none."""
    times = [to_micros(e.derived_at) for e in entries if e.type in CONTACT_TYPES]
    return (min(times) - WINDOW_MICROS, max(times)) if times else None


def flag_repeats(
    warehouse: Warehouse, tenant_id: str, customer: Members, entries: Sequence[TimelineEntry]
) -> list[TimelineEntry]:
    """The entries, each contact that repeats an earlier one within the window carrying
    `repeat_of` (the earlier contact may be older than every entry given)."""
    bounds = flag_range(entries)
    if bounds is None:
        return list(entries)
    return flagged(entries, read_contact_rows(warehouse, tenant_id, customer, *bounds))


def flagged(
    entries: Sequence[TimelineEntry], contact_rows: Iterable[Mapping[str, Any]]
) -> list[TimelineEntry]:
    """The entries flagged from the contact rows of their `flag_range` (`read_contact_rows`)."""
    found = repeats(contacts_of(contact_rows))
    return [
        e.model_copy(update={"repeat_of": found[e.event_id].event_id}) if e.event_id in found else e
        for e in entries
    ]


def conversation_rows(
    rows: Iterable[Mapping[str, Any]], since: int, until: int
) -> list[Mapping[str, Any]]:
    """What `read_contact_rows(since, until)` returns, taken from contact rows read beyond the
    range (every one of the customer's up to `until` at least): the rows in the range and the
    earlier rows of their conversations, each event once, newest first, as many as it keeps."""
    in_range = [r for r in rows if since <= r["derived_at"] <= until]
    talks = {r["correlation_id"] for r in in_range} - {""}
    earlier = [r for r in rows if r["derived_at"] < since and r["correlation_id"] in talks]
    ordered = sorted([*in_range, *earlier], key=_newest, reverse=True)
    once = {r["event_id"]: r for r in reversed(ordered)}  # the first of each event wins
    return sorted(once.values(), key=_newest, reverse=True)[:MAX_CONTACT_ROWS]


def _newest(row: Mapping[str, Any]) -> tuple[int, str]:
    return row["derived_at"], row["event_id"]
