"""What a customer's header reads from the stages after the timeline, as one comparable value.

The console's header (churn risk, the at-risk badge) reads what later stages store: an alert a
survey answer raised and a text's sentiment (satisfaction), a call's steps (service metrics).
They land after the touchpoint's timeline entry, seconds later on a distributed deployment, so
the page's one refresh after a burst could read the header before them (a browser review: the
churn risk stayed stale after a live survey answer). An open stream compares this value after
each delivery (`stream.CustomerStream.derived`) and tells the page when it changed.

Counts of distinct rows per table for the customer's members: they only grow as a stage stores
(a background merge of duplicate rows is not counted twice). Plain SQL that runs on ClickHouse
18.16 and on chdb; only table names and the members fragment are formatted into it.
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel.ports import Warehouse
from services.projections.sql import members_filter
from services.satisfaction.sql import ALERTS_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE
from services.service_metrics.facts import SERVICE_EVENTS_TABLE

_OF_CUSTOMER = "WHERE tenant_id = {{tenant_id:String}} AND {members}"
DERIVED_QUERY = f"""SELECT 'alerts' AS kind, uniqExact(alert_id) AS n FROM {ALERTS_TABLE}
{_OF_CUSTOMER}
UNION ALL
SELECT 'texts' AS kind, uniqExact(event_id) AS n FROM {TEXT_SENTIMENT_TABLE}
{_OF_CUSTOMER}
UNION ALL
SELECT 'service' AS kind, uniqExact(event_id) AS n FROM {SERVICE_EVENTS_TABLE}
{_OF_CUSTOMER}"""

Derived = tuple[tuple[str, int], ...]


def derived_of(warehouse: Warehouse, tenant_id: str, members: Sequence[str]) -> Derived:
    """How many alerts, text sentiments and service facts the customer's members have."""
    fragment, params = members_filter(members)
    rows = warehouse.select(
        DERIVED_QUERY.format(members=fragment), {"tenant_id": tenant_id, **params}
    )
    return tuple(sorted((str(r["kind"]), int(r["n"])) for r in rows))
