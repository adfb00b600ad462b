"""What a customer's header reads from the stages after the timeline, as one comparable value.

The console's header (churn risk, the at-risk badge) reads what later stages store: an alert a
survey answer raised and a text's sentiment (satisfaction), a call's steps (service metrics).
They land after the touchpoint's timeline entry, seconds later on a distributed deployment, so
the page's one refresh after a burst could read the header before them (a browser review: the
churn risk stayed stale after a live survey answer). The stream hub reads this value for every
open stream's customer in one query every few seconds (`stream.StreamHub`) and tells a stream's
page when its customer's value changed.

Counts of distinct rows per table and member: they only grow as a stage stores (a background
merge of duplicate rows is not counted twice). A customer's value sums its members' counts, so it
changes when any member's does. Plain SQL that runs on ClickHouse 18.16 and on chdb; only table
names and the tenants' and members' parameter lists are formatted into it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from kernel.ports import Warehouse
from services.projections.sql import string_list
from services.satisfaction.sql import ALERTS_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE
from services.service_metrics.facts import SERVICE_EVENTS_TABLE

KINDS = ("alerts", "service", "texts")
# Members asked in one query: the query text stays far below a server's max_query_size
# (262,144 bytes by default) with ids of a few dozen characters each.
MEMBERS_PER_QUERY = 1000

# The tenants too: the tables' sorting keys start with the tenant, so a read skips the others'.
_COUNTS = """SELECT tenant_id, customer_id, '{kind}' AS kind, uniqExact({row}) AS n FROM {table}
WHERE tenant_id IN ({{tenants}}) AND customer_id IN ({{members}})
GROUP BY tenant_id, customer_id"""
BY_MEMBER_QUERY = "\nUNION ALL\n".join(
    _COUNTS.format(kind=kind, row=row, table=table)
    for kind, row, table in (
        ("alerts", "alert_id", ALERTS_TABLE),
        ("texts", "event_id", TEXT_SENTIMENT_TABLE),
        ("service", "event_id", SERVICE_EVENTS_TABLE),
    )
)

Key = tuple[str, str]  # (tenant, member)
Derived = tuple[tuple[str, int], ...]


def derived_by_member(warehouse: Warehouse, keys: Collection[Key]) -> dict[Key, dict[str, int]]:
    """How many alerts, text sentiments and service facts each (tenant, member) has; a key
    without any row is left out. One query per `MEMBERS_PER_QUERY` distinct members."""
    if not keys:
        return {}
    members = sorted({member for _, member in keys})
    tenants, tenant_params = string_list("tenant", sorted({tenant for tenant, _ in keys}))
    found: dict[Key, dict[str, int]] = {}
    for start in range(0, len(members), MEMBERS_PER_QUERY):
        fragment, params = string_list("member", members[start : start + MEMBERS_PER_QUERY])
        sql = BY_MEMBER_QUERY.format(members=fragment, tenants=tenants)
        for row in warehouse.select(sql, {**params, **tenant_params}):
            key = (str(row["tenant_id"]), str(row["customer_id"]))
            if key in keys:  # the same id in another tenant is another customer
                found.setdefault(key, {})[str(row["kind"])] = int(row["n"])
    return found


def derived_of_customer(
    counts: Mapping[Key, Mapping[str, int]], tenant_id: str, members: Sequence[str]
) -> Derived:
    """A customer's value: its members' counts summed, per kind."""
    totals = dict.fromkeys(KINDS, 0)
    for member in set(members):
        for kind, n in counts.get((tenant_id, member), {}).items():
            totals[kind] = totals.get(kind, 0) + n
    return tuple(sorted(totals.items()))


def derived_of(warehouse: Warehouse, tenant_id: str, members: Sequence[str]) -> Derived:
    """One customer's value, read alone."""
    keys = {(tenant_id, member) for member in members}
    return derived_of_customer(derived_by_member(warehouse, keys), tenant_id, members)
