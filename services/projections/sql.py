"""DDL and queries of the projections tables: customer_timeline, profile_facts and
customer_identifiers.

Conventions shared by the three tables:
- ReplacingMergeTree with a sorting key that is unique per event (and per fact), so a reprocessed
  batch (F03) collapses on merge; until the merge happens, every read deduplicates by event id.
- No PARTITION BY. Monthly partitions would turn one batch of late or replayed events spanning
  years into hundreds of partitions, failing the insert with "too many partitions" (B09), and would
  leave many tiny parts to merge. Reads here are per customer, which the sorting key already makes
  a range scan; retention, if it comes, is per tenant or per customer (erasure), not per month.
- Input values are always `{name:Type}` parameters; only table names and fixed fragments are
  formatted.
- Rows are filed under the customer an event was resolved to when it was processed and are never
  rewritten. A customer's reads gather the rows of all its members (itself and every customer
  merged into it, from the identity map), so a merge or a split changes what is read, not what is
  stored. A reader passes the members, canonical customer first; a plain id is one member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernel.dialect import replacing_engine
from kernel.ports import Warehouse
from services.projections.lookup import MAX_MATCHES, CustomerMatch, matches_from_rows
from services.projections.profile import FactGroup, Profile, fold_profile
from services.projections.timeline import (
    Cursor,
    TimelineEntry,
    TimelineFilter,
    TimelinePage,
    entry_from_row,
    page_from_rows,
)

TIMELINE = "customer_timeline"
PROFILE_FACTS = "profile_facts"
IDENTIFIERS = "customer_identifiers"

# A customer id, or the ids of every member of a merged customer (canonical first).
Members = str | Sequence[str]


def members_of(customer: Members) -> list[str]:
    return [customer] if isinstance(customer, str) else list(customer)


def string_list(prefix: str, values: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """`{prefix_0:String}, {prefix_1:String}, …` for an `IN (…)`, and its parameters: one per
    value (an IN over literals uses the sorting key on every server; an Array parameter would not
    parse in IN on 18.16)."""
    names = [f"{prefix}_{i}" for i in range(len(values))]
    return ", ".join(f"{{{name}:String}}" for name in names), dict(zip(names, values, strict=True))


def members_filter(customer: Members) -> tuple[str, dict[str, Any]]:
    """`customer_id IN (...)` with one parameter per member (`string_list`)."""
    members = members_of(customer)
    if not members:
        raise ValueError("a customer has at least one member")
    fragment, params = string_list("member", members)
    return f"customer_id IN ({fragment})", params


def ddl(version: tuple[int, ...]) -> list[str]:
    """CREATE TABLE statements of the three tables, for the given server version."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {TIMELINE} (
            tenant_id String, customer_id String, derived_at Int64, event_id String,
            channel String, type String, touchpoint String, source_id String, correlation_id String,
            occurred_at Int64, received_at Int64, clock_corrected UInt8,
            summary String, payload_json String, identifiers Array(String)
        ) {replacing_engine(("tenant_id", "customer_id", "derived_at", "event_id"), version)}""",
        f"""CREATE TABLE IF NOT EXISTS {PROFILE_FACTS} (
            tenant_id String, customer_id String, event_id String, derived_at Int64,
            field String, key String, str_value String, num_value Int64
        ) {replacing_engine(("tenant_id", "customer_id", "field", "key", "event_id"), version)}""",
        # event_id is in the key: one row per sighting keeps first/last seen exact in any order.
        f"""CREATE TABLE IF NOT EXISTS {IDENTIFIERS} (
            tenant_id String, kind String, value String, customer_id String,
            derived_at Int64, event_id String
        ) {replacing_engine(("tenant_id", "kind", "value", "customer_id", "event_id"), version)}""",
    ]


# --- timeline --------------------------------------------------------------------------------
# Newest first by (derived_at, event_id), the sorting key after (tenant_id, customer_id), read
# backwards: a current engine (chdb) reads the customer's key range in reverse order and fetches the
# wide columns (payload_json, summary) of the page's rows only. A `LIMIT 1 BY event_id` here kept it
# from doing either (a page of a 500-event customer among 1M rows took twice as long), so the copies
# of a re-inserted batch are dropped by `newest_rows` instead. The page asks for one row more to know
# whether another follows.
TIMELINE_QUERY = """SELECT event_id, derived_at, occurred_at, received_at, clock_corrected, channel,
       type, touchpoint, source_id, correlation_id, summary, payload_json, identifiers
FROM {table}
WHERE tenant_id = {{tenant_id:String}} AND {members}{conditions}
ORDER BY derived_at DESC, event_id DESC
LIMIT {{limit:UInt32}}"""

# Written without tuple comparison so that the primary key prunes on derived_at on every server.
_AFTER_CURSOR = (
    "(derived_at < {cursor_at:Int64}"
    " OR (derived_at = {cursor_at:Int64} AND event_id < {cursor_id:String}))"
)
_FILTERS = {
    "since": "derived_at >= {since:Int64}",
    "until": "derived_at < {until:Int64}",
}


def any_of_filter(
    column: str, values: Sequence[str], name: str, prefixes: Sequence[str] = ()
) -> tuple[str, dict[str, Any]]:
    """`(column IN (...) OR <starts with a prefix> ...)`, one parameter per value; ("", {}) when
    nothing restricts. A prefix is compared by `substring` (the same on every server)."""
    exact = {f"{name}_{i}": v for i, v in enumerate(values)}
    starts = {f"{name}_prefix_{i}": p for i, p in enumerate(prefixes)}
    parts = [f"{column} IN ({', '.join(f'{{{n}:String}}' for n in exact)})"] if exact else []
    parts += [f"substring({column}, 1, length({{{n}:String}})) = {{{n}:String}}" for n in starts]
    return (f"({' OR '.join(parts)})", exact | starts) if parts else ("", {})


def timeline_query(
    tenant_id: str, customer: Members, filters: TimelineFilter, cursor: Cursor | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of one timeline page (limit + 1 rows, to detect a next page)."""
    return _rows_query(tenant_id, customer, filters, cursor, limit + 1)


def _rows_query(
    tenant_id: str, customer: Members, filters: TimelineFilter, cursor: Cursor | None, rows: int
) -> tuple[str, dict[str, Any]]:
    members, where, params = page_where(tenant_id, customer, filters, cursor)
    sql = TIMELINE_QUERY.format(table=TIMELINE, members=members, conditions=where)
    return sql, params | {"limit": rows}


def page_where(
    tenant_id: str, customer: Members, filters: TimelineFilter, cursor: Cursor | None
) -> tuple[str, str, dict[str, Any]]:
    """What selects a page's rows: the members fragment, the further conditions (each on a line
    of its own, starting with AND) and the parameters of both."""
    members, member_params = members_filter(customer)
    params: dict[str, Any] = {"tenant_id": tenant_id, **member_params}
    conditions = []
    for fragment, values in (
        any_of_filter("channel", filters.channels, "channel"),
        any_of_filter("type", filters.types, "type", filters.type_prefixes),
    ):
        if fragment:
            conditions.append(fragment)
            params |= values
    for name, fragment in _FILTERS.items():
        value = getattr(filters, name)
        if value is not None:
            conditions.append(fragment)
            params[name] = value
    if cursor is not None:
        conditions.append(_AFTER_CURSOR)
        params.update(cursor_at=cursor.derived_at, cursor_id=cursor.event_id)
    return members, "".join(f"\n  AND {c}" for c in conditions), params


def customer_exists(warehouse: Warehouse, tenant_id: str, customer: Members) -> bool:
    members, params = members_filter(customer)
    rows = warehouse.select(
        f"""SELECT 1 AS found FROM {TIMELINE}
            WHERE tenant_id = {{tenant_id:String}} AND {members}
            LIMIT 1""",
        {"tenant_id": tenant_id, **params},
    )
    return bool(rows)


def read_timeline(
    warehouse: Warehouse,
    tenant_id: str,
    customer: Members,
    filters: TimelineFilter | None = None,
    cursor: Cursor | None = None,
    limit: int = 50,
    first: list[dict[str, Any]] | None = None,
) -> TimelinePage | None:
    """A page of the customer's timeline (every member's events), newest first; None if the tenant
    has no such customer. `first`: the rows of the page's first query, when the caller read them
    (newest first, as `timeline_query` asks)."""
    filters = filters or TimelineFilter()
    rows = newest_rows(warehouse, tenant_id, customer, filters, cursor, limit, first)
    page = page_from_rows(rows, limit)
    if not page.entries and not customer_exists(warehouse, tenant_id, customer):
        return None
    return page


def newest_rows(
    warehouse: Warehouse,
    tenant_id: str,
    customer: Members,
    filters: TimelineFilter,
    cursor: Cursor | None,
    limit: int,
    found: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Up to limit + 1 distinct timeline rows after the cursor, newest first. Until merges
    collapse them, the copies of a re-inserted batch come back too: the first of each event is
    kept, as `LIMIT 1 BY event_id` would, and when copies left the answer short, the rows after
    the last one read are read next (copies sort together, so each query moves past them).
    `found`: the answer of the first query, already read."""
    wanted, seen = limit + 1, set[str]()
    rows: list[dict[str, Any]] = []
    while True:
        asked = wanted - len(rows)
        if found is None:
            found = warehouse.select(*_rows_query(tenant_id, customer, filters, cursor, asked))
        for row in found:
            if row["event_id"] not in seen:
                seen.add(row["event_id"])
                rows.append(row)
        if len(found) < asked or len(rows) >= wanted:
            return rows[:wanted]
        cursor, found = Cursor(found[-1]["derived_at"], found[-1]["event_id"]), None


EVENT_QUERY = """SELECT customer_id, event_id, derived_at, occurred_at, received_at, clock_corrected,
       channel, type, touchpoint, source_id, correlation_id, summary, payload_json, identifiers
FROM {table}
WHERE tenant_id = {{tenant_id:String}}{filed_under} AND event_id = {{event_id:String}}
LIMIT 1"""


def read_event(
    warehouse: Warehouse, tenant_id: str, event_id: str, filed_under: str | None = None
) -> tuple[str, TimelineEntry] | None:
    """One stored touchpoint and the customer id its rows were filed under; `filed_under` (from
    the identity filing) narrows the search to that customer's part of the sorting key."""
    condition = " AND customer_id = {filed_under:String}" if filed_under else ""
    params = {"tenant_id": tenant_id, "event_id": event_id, "filed_under": filed_under or ""}
    rows = warehouse.select(EVENT_QUERY.format(table=TIMELINE, filed_under=condition), params)
    return (rows[0]["customer_id"], entry_from_row(rows[0])) if rows else None


def read_entries(
    warehouse: Warehouse, tenant_id: str, customer: Members, event_ids: Sequence[str]
) -> dict[str, TimelineEntry]:
    """The timeline entries of the given events among the customer's rows, by event id (the live
    stream's messages: the same shape as a timeline page's entries)."""
    if not event_ids:
        return {}
    members, params = members_filter(customer)
    names = [f"event_{i}" for i in range(len(event_ids))]
    wanted = ", ".join(f"{{{name}:String}}" for name in names)
    rows = warehouse.select(
        f"""SELECT event_id, derived_at, occurred_at, received_at, clock_corrected, channel,
               type, touchpoint, source_id, correlation_id, summary, payload_json, identifiers
            FROM {TIMELINE}
            WHERE tenant_id = {{tenant_id:String}} AND {members} AND event_id IN ({wanted})
            LIMIT 1 BY event_id""",
        {"tenant_id": tenant_id, **params, **dict(zip(names, event_ids, strict=True))},
    )
    return {row["event_id"]: entry_from_row(row) for row in rows}


# --- profile ---------------------------------------------------------------------------------
# One pass over the customer's facts: deduplicate by (field, key, event_id) — the copies of a
# re-inserted batch are identical — then combine commutatively per (field, key).
PROFILE_QUERY = f"""SELECT field, key, count() AS n, sum(num_value) AS total,
       min(derived_at) AS first_at, max(derived_at) AS last_at,
       argMax(str_value, (derived_at, event_id)) AS latest_str,
       argMax(num_value, (derived_at, event_id)) AS latest_num,
       argMax(event_id, (derived_at, event_id)) AS latest_event
FROM (
    SELECT field, key, event_id, derived_at, str_value, num_value FROM {PROFILE_FACTS}
    WHERE tenant_id = {{{{tenant_id:String}}}} AND {{members}}
    LIMIT 1 BY field, key, event_id
)
GROUP BY field, key"""


def read_profile(warehouse: Warehouse, tenant_id: str, customer: Members) -> Profile | None:
    """The customer's profile over every member's facts, under the first (canonical) id; None
    when the tenant has no such customer."""
    members, params = members_filter(customer)
    rows = warehouse.select(
        PROFILE_QUERY.format(members=members), {"tenant_id": tenant_id, **params}
    )
    groups = (FactGroup.from_row(r) for r in rows)
    return fold_profile(members_of(customer)[0], groups, members_of(customer))


# --- lookup by identifier --------------------------------------------------------------------
LOOKUP_QUERY = f"""SELECT customer_id, min(derived_at) AS first_at, max(derived_at) AS last_at,
       uniqExact(event_id) AS events
FROM {IDENTIFIERS}
WHERE tenant_id = {{tenant_id:String}} AND kind = {{kind:String}} AND value = {{value:String}}
GROUP BY customer_id
ORDER BY last_at DESC, customer_id
LIMIT {MAX_MATCHES}"""


HELD_QUERY = f"""SELECT customer_id, value, min(derived_at) AS first_at, max(derived_at) AS last_at,
       uniqExact(event_id) AS events
FROM {IDENTIFIERS}
WHERE tenant_id = {{tenant_id:String}} AND kind = {{kind:String}} AND {{members}}
GROUP BY customer_id, value
LIMIT {MAX_MATCHES * 10}"""


def sightings_of(
    warehouse: Warehouse, tenant_id: str, kind: str, customer_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Per customer and stored spelling, the sightings of identifiers of one kind on the given
    customers (the holders identity names): the caller keeps the spellings that are its one."""
    if not customer_ids:
        return []
    members, params = members_filter(customer_ids)
    sql = HELD_QUERY.replace("{members}", members)
    return warehouse.select(sql, {"tenant_id": tenant_id, "kind": kind, **params})


def find_customers(
    warehouse: Warehouse, tenant_id: str, kind: str, value: str
) -> list[CustomerMatch]:
    """Customers of the tenant on whom the (already normalised) identifier was seen."""
    rows = warehouse.select(LOOKUP_QUERY, {"tenant_id": tenant_id, "kind": kind, "value": value})
    return matches_from_rows(rows)
