"""Tables and queries of the satisfaction consumer (ClickHouse SQL that also runs on server 18.16).

Tables are ReplacingMergeTree keyed so that a reprocessed batch writes identical keys (F03), and
every read deduplicates before it aggregates, since merges happen whenever ClickHouse likes. No
PARTITION BY: a batch of very late events must never hit "too many partitions" (B09). Only table
names, fixed fragments and the metric definitions' constants are formatted into SQL; every input
value is a `{name:Type}` parameter (S04).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.ports import Warehouse
from services.projections.sql import any_of_filter, members_filter
from services.satisfaction.attribution_sql import ATTRIBUTED_RESPONSES, attributed_responses
from services.satisfaction.buckets import bucket_start_sql
from services.satisfaction.metrics import DEFINITIONS, Definition, MetricValue

RESPONSES_TABLE = "survey_responses"
INTERACTIONS_TABLE = "interactions"
ALERTS_TABLE = "alerts"
KINDS = ("nps", "csat", "ces")


def ddl(version: tuple[int, ...]) -> list[str]:
    """CREATE statements; the same on every supported server version."""
    # Each sorting key ends in the row's identity and only holds values fixed by the event, so a
    # re-inserted row collapses with the first on merge; the leading columns serve the reads.
    return [
        f"""CREATE TABLE IF NOT EXISTS {RESPONSES_TABLE} (
            tenant_id String, event_id String, customer_id String, survey_id String,
            kind String, score Int16, scale String, touchpoint String, channel String,
            correlation_id String, answered_at Int64, comment String
        ) ENGINE = ReplacingMergeTree() ORDER BY (tenant_id, answered_at, event_id)""",
        f"""CREATE TABLE IF NOT EXISTS {INTERACTIONS_TABLE} (
            tenant_id String, correlation_id String, event_id String, derived_at Int64,
            type String, touchpoint String, channel String, agent String, queue String
        ) ENGINE = ReplacingMergeTree()
        ORDER BY (tenant_id, correlation_id, derived_at, event_id)""",
        f"""CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} (
            tenant_id String, alert_id String, customer_id String, rule String, severity String,
            metric String, score Int16, scale String, touchpoint String, channel String,
            correlation_id String, event_id String, raised_at Int64, message String
        ) ENGINE = ReplacingMergeTree() ORDER BY (tenant_id, raised_at, alert_id)""",
    ]


def _metric_prefix(definition: Definition) -> str:
    return f"{definition.name}_v{definition.version}"


# The numerator of each definition over its matching answers `{m}`; the value is numerator / n.
# These are the SQL twins of the formulas in metrics.py, and tests hold them equal.
_NUMERATORS = {
    "nps@1": "100 * (toInt64(countIf({m} AND score >= 9)) - toInt64(countIf({m} AND score <= 6)))",
    "csat@1": "100 * countIf({m} AND score >= 4)",
    "csat_mean@1": "sumIf(score, {m})",
    "ces@1": "sumIf(score, {m})",
    "ces_easy@1": "100 * countIf({m} AND score >= 5)",
}
# The sum of squared per-response contributions (see `Definition.contribution`), for intervals.
_SQUARES = {
    "nps@1": "10000 * countIf({m} AND (score >= 9 OR score <= 6))",
    "csat@1": "10000 * countIf({m} AND score >= 4)",
    "csat_mean@1": "sumIf(toInt64(score) * score, {m})",
    "ces@1": "sumIf(toInt64(score) * score, {m})",
    "ces_easy@1": "10000 * countIf({m} AND score >= 5)",
}


def _metric_columns(definition: Definition) -> str:
    match = f"(kind = '{definition.kind}' AND scale = '{definition.scale}')"
    numerator = _NUMERATORS[definition.key].format(m=match)
    squares = _SQUARES[definition.key].format(m=match)
    prefix = _metric_prefix(definition)
    # n = 0 gives 0 here rather than NaN; the reader turns it into None (never a division by zero).
    return (
        f"countIf({match}) AS {prefix}_n, "
        f"if({prefix}_n = 0, 0, {numerator} / {prefix}_n) AS {prefix}_value, "
        f"{squares} AS {prefix}_sq"
    )


def touchpoint_metrics_sql(bucket: str, filters: str = "1", zone: str = "UTC") -> str:
    """Responses and every metric per attributed touchpoint × channel × time bucket (`zone`'s
    days, weeks and months); `filters` is the condition on the attributed touchpoint and channel
    (`TouchpointQuery.filters`)."""
    bucket_start = bucket_start_sql(bucket, "answered_at", zone)
    kinds = ", ".join(f"countIf(kind = '{k}') AS responses_{k}" for k in KINDS)
    metrics = ",\n        ".join(_metric_columns(d) for d in DEFINITIONS)
    return f"""
    SELECT touchpoint, channel,
        {bucket_start} AS bucket_start,
        {kinds},
        {metrics}
    FROM ({ATTRIBUTED_RESPONSES})
    WHERE {filters}
    GROUP BY touchpoint, channel, bucket_start
    ORDER BY bucket_start, touchpoint, channel"""


# `{customers}` is empty (every customer) or ` AND customer_id IN (...)` over the members of one
# customer (`members_filter`). An alert is raised at its answer's time, so an alert in range is an
# answer in the same range, and the cursor's position is (raised_at, alert_id) newest first.
_ALERTS_WHERE = """tenant_id = {tenant_id:String}{customers}
        AND raised_at >= {since:Int64} AND raised_at < {until:Int64}
        AND (raised_at < {before_at:Int64}
            OR (raised_at = {before_at:Int64} AND alert_id < {before_id:String}))"""

_ALERTS_MATCHING = f"""
    SELECT alert_id, customer_id, rule, severity, metric, score, scale, correlation_id, event_id,
        raised_at, message, touchpoint AS own_touchpoint, channel AS own_channel
    FROM {ALERTS_TABLE}
    WHERE {_ALERTS_WHERE}
    LIMIT 1 BY alert_id"""

# Only the answers that raised a matching alert are attributed, not every answer in range.
_ALERTS_ANSWERS = f" AND event_id IN (SELECT event_id FROM {ALERTS_TABLE} WHERE {_ALERTS_WHERE})"

# Distinct names on the right of the join: 18.16 refuses or hides a right column named like a
# left one that is not a key.
_ALERTS_ATTRIBUTION = f"""
    SELECT event_id, found, touchpoint AS answer_touchpoint, channel AS answer_channel, agent,
        queue
    FROM ({attributed_responses(_ALERTS_ANSWERS)})"""


def alerts_sql(customers: str = "", attributed: str = "1") -> str:
    """At-risk alerts, newest first, each attributed exactly as the answer that raised it
    (`attribution_sql`, as METRICS.md defines it); `customers` is an extra ` AND ...` condition
    on the alerts (see `AlertQuery.customers_filter`) and `attributed` the condition on their
    touchpoint and channel (`AlertQuery.attribution_filter`)."""
    # An answer without an interaction to attribute it to keeps its own touchpoint and channel,
    # which its alerts carry too; so do alerts whose answer is not stored.
    return f"""
    SELECT alert_id, customer_id, rule, severity, metric, score, scale, correlation_id, event_id,
        raised_at, message, if(found, answer_touchpoint, own_touchpoint) AS touchpoint,
        if(found, answer_channel, own_channel) AS channel, agent, queue
    FROM ({_ALERTS_MATCHING.replace("{customers}", customers)}) AS alert
    ANY LEFT JOIN ({_ALERTS_ATTRIBUTION.replace("{customers}", customers)}) AS attribution
        USING (event_id)
    WHERE {attributed}
    ORDER BY raised_at DESC, alert_id DESC
    LIMIT {{limit:UInt32}}"""


def attribution_filter(
    channels: tuple[str, ...], touchpoints: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """`1 AND channel IN (...) AND touchpoint IN (...)` on the attributed columns (any of each;
    an empty tuple does not restrict), and its parameters."""
    conditions: list[str] = ["1"]
    params: dict[str, Any] = {}
    for column, values in (("channel", channels), ("touchpoint", touchpoints)):
        fragment, values_params = any_of_filter(column, values, f"f_{column}")
        if fragment:
            conditions.append(fragment)
            params |= values_params
    return " AND ".join(conditions), params


@dataclass(frozen=True)
class TouchpointQuery:
    """One tenant's responses answered in [since, until) (epoch micros), optionally filtered."""

    tenant_id: str
    since: int
    until: int
    bucket: str = "day"
    channels: tuple[str, ...] = ()  # any of; empty: every channel
    touchpoints: tuple[str, ...] = ()  # any of; empty: every touchpoint
    time_zone: str = "UTC"  # whose midnights start the day, week and month buckets

    def filters(self) -> tuple[str, dict[str, Any]]:
        """The condition on the attributed channel and touchpoint, and its parameters."""
        return attribution_filter(self.channels, self.touchpoints)

    def params(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "since": self.since, "until": self.until}


@dataclass(frozen=True)
class TouchpointMetrics:
    """Satisfaction of one touchpoint on one channel during one bucket."""

    touchpoint: str
    channel: str
    bucket_start: int  # epoch seconds
    responses: dict[str, int]  # by survey kind
    metrics: dict[str, MetricValue]  # by definition key, `nps@1`


def _metric_value(row: dict[str, Any], definition: Definition) -> MetricValue:
    prefix = _metric_prefix(definition)
    n = int(row[f"{prefix}_n"])
    value = float(row[f"{prefix}_value"]) if n else None
    return definition.with_interval(value, n, float(row[f"{prefix}_sq"]))


def _to_touchpoint_metrics(row: dict[str, Any]) -> TouchpointMetrics:
    return TouchpointMetrics(
        touchpoint=row["touchpoint"],
        channel=row["channel"],
        bucket_start=int(row["bucket_start"]),
        responses={k: int(row[f"responses_{k}"]) for k in KINDS},
        metrics={d.key: _metric_value(row, d) for d in DEFINITIONS},
    )


def read_touchpoint_metrics(
    warehouse: Warehouse, query: TouchpointQuery
) -> list[TouchpointMetrics]:
    """Satisfaction per attributed touchpoint × channel × bucket, oldest bucket first."""
    condition, filter_params = query.filters()
    sql = touchpoint_metrics_sql(query.bucket, condition, query.time_zone)
    rows = warehouse.select(sql, query.params() | filter_params)
    return [_to_touchpoint_metrics(row) for row in rows]


NO_END = 2**62  # later than any epoch-micros timestamp


@dataclass(frozen=True)
class AlertQuery:
    """One tenant's alerts raised at or after `since` (epoch micros), optionally filtered.

    `customers` are the ids whose alerts to read, e.g. every member of a merged customer; None
    means every customer of the tenant.
    """

    tenant_id: str
    since: int = 0
    customers: tuple[str, ...] | None = None
    touchpoints: tuple[str, ...] = ()  # attributed touchpoint, any of; empty: every one
    limit: int = 100
    until: int = NO_END  # raised before (epoch micros)
    # A page after a cursor: alerts older than this (raised_at, alert_id) in the newest-first order.
    before: tuple[int, str] = (NO_END, "")

    channels: tuple[str, ...] = ()  # attributed channel, any of; empty: every one

    def attribution_filter(self) -> tuple[str, dict[str, Any]]:
        """The condition on the attributed touchpoint and channel, and its parameters."""
        return attribution_filter(self.channels, self.touchpoints)

    def customers_filter(self) -> tuple[str, dict[str, Any]]:
        """The ` AND customer_id IN (...)` condition and its parameters; nothing for everyone."""
        if self.customers is None:
            return "", {}
        members, params = members_filter(self.customers)
        return f" AND {members}", params

    def params(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "since": self.since,
            "until": self.until,
            "before_at": self.before[0],
            "before_id": self.before[1],
            "limit": self.limit,
        }


def read_alerts(warehouse: Warehouse, query: AlertQuery) -> list[dict[str, Any]]:
    """Alerts newest first, one row per alert_id, with attributed touchpoint, agent and queue."""
    customers, member_params = query.customers_filter()
    attributed, attribution_params = query.attribution_filter()
    sql = alerts_sql(customers, attributed)
    return warehouse.select(sql, query.params() | member_params | attribution_params)
