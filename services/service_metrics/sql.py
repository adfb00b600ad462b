"""Table and queries of the service metrics (ClickHouse SQL that also runs on server 18.16).

One fact table, `service_events`, written by the satisfaction consumer (`facts.py`). Every metric is
aggregated when read, deduplicating first (`LIMIT 1 BY event_id`): ReplacingMergeTree merges when it
likes, and a reprocessed batch re-inserts the same keys (F03). Only table names, fixed fragments
and bucket functions are formatted into SQL; every input value is a `{name:Type}` parameter (S04).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kernel.ports import Warehouse
from services.satisfaction.buckets import bucket_start_sql
from services.satisfaction.metrics import MetricValue
from services.service_metrics.calendar import UTC_ALWAYS_OPEN, Calendar
from services.service_metrics.calendar_sql import Window, business_seconds_sql
from services.service_metrics.definitions import DEFAULT_SERVICE_LEVEL_S, SERVICE_DEFINITIONS
from services.service_metrics.facts import (
    CALL_ANSWERED,
    CALL_ENDED,
    CALL_STEPS,
    CALL_TRANSFERRED,
    CONVERSATION_TYPES,
    SERVICE_EVENTS_TABLE,
    SURVEY_ANSWERED,
    SURVEY_SENT,
)

BUCKETS = ("hour", "day", "total")  # total: the whole range, one bucket starting at `since`
DIMENSIONS = ("touchpoint", "channel", "queue", "agent")


def ddl(version: tuple[int, ...]) -> list[str]:
    """CREATE statements; the same on every supported server version."""
    # The sorting key ends in the row's identity and holds only values fixed by the event, so a
    # re-inserted row collapses with the first on merge; (tenant_id, type) serves every read.
    return [
        f"""CREATE TABLE IF NOT EXISTS {SERVICE_EVENTS_TABLE} (
            tenant_id String, event_id String, customer_id String, correlation_id String,
            type String, touchpoint String, channel String, derived_at Int64, agent String,
            queue String, sender String, direction String, queue_wait_s Float64,
            handle_s Float64, abandoned UInt8, survey_id String
        ) ENGINE = ReplacingMergeTree()
        ORDER BY (tenant_id, type, derived_at, event_id)"""
    ]


def _bucket(column: str, bucket: str, zone: str) -> str:
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r}")
    return bucket_start_sql(bucket, column, zone)


_IN_RANGE = " AND derived_at >= {since:Int64} AND derived_at < {until:Int64}"


def _facts(types: tuple[str, ...], ranged: bool, condition: str = "") -> str:
    """Deduplicated facts of some types; `ranged` keeps those derived in [since, until)."""
    names = ", ".join(f"'{t}'" for t in types)
    window = _IN_RANGE if ranged else ""
    return f"""
        SELECT * FROM {SERVICE_EVENTS_TABLE}
        WHERE tenant_id = {{tenant_id:String}} AND type IN ({names}){window}{condition}
        LIMIT 1 BY event_id"""


def _conversation_facts() -> str:
    # A conversation whose first inbound message is in the range has a customer message in it:
    # only those conversations are read (with all their messages, earlier and later), not the
    # tenant's whole history of messages.
    names = ", ".join(f"'{t}'" for t in CONVERSATION_TYPES)
    started = f"""SELECT correlation_id FROM {SERVICE_EVENTS_TABLE}
            WHERE tenant_id = {{tenant_id:String}} AND type IN ({names})
                AND sender = 'customer'{_IN_RANGE}"""
    return _facts(CONVERSATION_TYPES, ranged=False, condition=f" AND correlation_id IN ({started})")


_FILTERS = " AND ".join(f"({{{d}:String}} = '' OR {d} = {{{d}:String}})" for d in DIMENSIONS)


def _filtered(source: str) -> str:
    # Filtered a level below the grouping: there a dimension not grouped by is the constant '',
    # and ClickHouse would read that alias, not the column, in a WHERE beside it.
    return f"SELECT * FROM ({source}) WHERE {_FILTERS}"


def _keys(group_by: tuple[str, ...]) -> str:
    """The dimensions of a row: the grouped ones, '' for the rest (their totals)."""
    return ", ".join(d if d in group_by else f"'' AS {d}" for d in DIMENSIONS)


def _group(group_by: tuple[str, ...], bucket: str) -> str:
    # `total` has one constant bucket: grouped by nothing, an empty range gives one row of zero
    # counts, which the reader drops.
    names = [d for d in DIMENSIONS if d in group_by] + (["bucket_start"] * (bucket != "total"))
    return f"GROUP BY {', '.join(names)}" if names else ""


def _value(name: str, n: str, numerator: str) -> str:
    # n = 0 gives 0 here rather than NaN; the reader turns it into None.
    return f"{n} AS {name}_n, if({n} = 0, 0, {numerator} / {n}) AS {name}_value"


def calls_sql(bucket: str, group_by: tuple[str, ...] = DIMENSIONS, zone: str = "UTC") -> str:
    """AHT, ASA, service level, abandonment and transfers of calls ended in the range."""
    inbound, handled = "direction = 'inbound'", "abandoned = 0"
    answered = f"{inbound} AND {handled}"
    metrics = ",\n        ".join(
        [
            _value("aht", f"countIf({handled})", f"sumIf(handle_s, {handled})"),
            _value("asa", f"countIf({answered})", f"sumIf(queue_wait_s, {answered})"),
            _value(
                "service_level",
                f"countIf({inbound})",
                f"100 * countIf({answered} AND queue_wait_s <= {{threshold_s:Float64}})",
            ),
            _value(
                "abandonment", f"countIf({inbound})", f"100 * countIf({inbound} AND abandoned = 1)"
            ),
            _value("transfer", f"countIf({handled})", f"100 * countIf({handled} AND transferred)"),
        ]
    )
    transferred = f"""SELECT correlation_id FROM {SERVICE_EVENTS_TABLE}
        WHERE tenant_id = {{tenant_id:String}} AND type = '{CALL_TRANSFERRED}'"""
    calls = f"""
        SELECT *, correlation_id != '' AND correlation_id IN ({transferred}) AS transferred
        FROM ({calls_with_steps(_facts((CALL_ENDED,), ranged=True))})"""
    return f"""
    SELECT {_keys(group_by)}, {_bucket("derived_at", bucket, zone)} AS bucket_start,
        count() AS calls,
        {metrics}
    FROM ({_filtered(calls)})
    {_group(group_by, bucket)}"""


# Each call ended in the range, with the end of the call before it in its conversation (same
# correlation id; 0 when none): its steps are those after that end, up to its own. The ends of
# its conversation are read for the range's correlation ids only. 18.16 joins on keys alone: the
# order is a condition after the join, and the right side's names differ from the left's.
_PREVIOUS_END = """
        SELECT event_id, correlation_id, derived_at,
            max(if(other_at < derived_at OR (other_at = derived_at AND other_id < event_id),
                other_at, 0)) AS previous_end
        FROM (SELECT event_id, correlation_id, derived_at FROM ({ended})
              WHERE correlation_id != '') AS call
        ALL INNER JOIN (SELECT correlation_id, derived_at AS other_at, event_id AS other_id
                        FROM ({ends})) AS other USING (correlation_id)
        GROUP BY event_id, correlation_id, derived_at"""

# What a call's steps give, one row per ended call: the latest answer's queue (else the latest
# offer's), the latest agent, the first answer's wait and whether one said it was outbound.
_STEPS = f"""
        SELECT event_id,
            argMaxIf(step_queue, (step_type = '{CALL_ANSWERED}', step_at, step_id),
                step_queue != '' AND in_call) AS steps_queue,
            argMaxIf(step_agent, (step_at, step_id), step_agent != '' AND in_call) AS steps_agent,
            argMinIf(step_wait_s, (step_at, step_id), step_type = '{CALL_ANSWERED}' AND in_call)
                AS steps_wait_s,
            max(in_call AND step_direction = 'outbound') AS steps_outbound
        FROM (
            SELECT *, step_at > previous_end AND step_at <= derived_at AS in_call
            FROM ({{previous}}) AS call
            ALL INNER JOIN (SELECT correlation_id, type AS step_type, derived_at AS step_at,
                                event_id AS step_id, queue AS step_queue, agent AS step_agent,
                                queue_wait_s AS step_wait_s, direction AS step_direction
                            FROM ({{steps}})) AS step USING (correlation_id)
        )
        GROUP BY event_id"""

# The ended call's own names (`ended_*`) beside its steps': 18.16 refuses or hides a right column
# of a join named like a left one that is not a key, and an alias named like a column it reads
# would be read as itself.
_ENDED_AS = """
        SELECT tenant_id, event_id, customer_id, correlation_id, type, touchpoint, channel,
            derived_at, handle_s, abandoned, survey_id, sender, agent AS ended_agent,
            queue AS ended_queue, queue_wait_s AS ended_wait_s, direction AS ended_direction
        FROM ({ended})"""


def calls_with_steps(ended: str) -> str:
    """The calls `ended` selects (deduplicated `call.ended` facts of the tenant, every column),
    each completed by its steps (docs/metrics.md, "A call in steps"): the steps of its
    conversation after the call before it ended, up to its own end. Its own queue and agent when
    it names them, else the steps' (the latest answer's queue, else the latest offer's; the
    latest agent); its own wait when it gives one, else the first answer's; outbound when it or
    a step says so. A call without a correlation id has none. Shared by every reader of calls
    (service metrics, customer value, fcr@1), so they read a call alike."""
    calls = f" AND correlation_id IN (SELECT correlation_id FROM ({ended}))"
    ends = _facts((CALL_ENDED,), ranged=False, condition=calls)
    previous = _PREVIOUS_END.format(ended=ended, ends=ends)
    steps = _STEPS.format(
        previous=previous, steps=_facts(CALL_STEPS, ranged=False, condition=calls)
    )
    return f"""
        SELECT tenant_id, event_id, customer_id, correlation_id, type, touchpoint, channel,
            derived_at, handle_s, abandoned, survey_id, sender,
            if(ended_agent != '', ended_agent, steps_agent) AS agent,
            if(ended_queue != '', ended_queue, steps_queue) AS queue,
            if(ended_wait_s > 0, ended_wait_s, steps_wait_s) AS queue_wait_s,
            if(ended_direction = 'outbound' OR steps_outbound = 1, 'outbound', 'inbound')
                AS direction
        FROM ({_ENDED_AS.format(ended=ended)}) AS ended
        ANY LEFT JOIN ({steps}) AS steps USING (event_id)"""


# One row per conversation with an inbound customer message: where it started, and the times,
# agents and queues of its human agent replies (a bot's `sender` is 'bot': it stops no clock).
_CONVERSATIONS = """
        SELECT correlation_id,
            minIf(derived_at, sender = 'customer') AS first_in,
            argMinIf(touchpoint, (derived_at, event_id), sender = 'customer') AS touchpoint,
            argMinIf(channel, (derived_at, event_id), sender = 'customer') AS channel,
            groupArrayIf(derived_at, sender = 'agent') AS reply_times,
            groupArrayIf(agent, sender = 'agent') AS reply_agents,
            groupArrayIf(queue, sender = 'agent') AS reply_queues
        FROM ({facts})
        GROUP BY correlation_id
        HAVING countIf(sender = 'customer') > 0"""

# The first reply at or after the first inbound message; on a tie, the smallest agent/queue name,
# so every server picks the same one. Its business seconds are counted in the tenant's calendar.
_FIRST_REPLY = """
        SELECT *, arrayFilter(t -> t >= first_in, reply_times) AS after,
            length(after) > 0 AS replied,
            arrayReduce('min', after) AS reply_at,
            if(replied, (reply_at - first_in) / 1000000, 0) AS frt_s,
            if(replied, {business}, 0) AS frt_business_s,
            arrayReduce('min', arrayFilter((a, t) -> t = reply_at, reply_agents, reply_times))
                AS agent_replied,
            arrayReduce('min', arrayFilter((q, t) -> t = reply_at, reply_queues, reply_times))
                AS queue_replied
        FROM ({conversations})"""


def _times(prefix: str, seconds: str) -> str:
    """p50, p90 and mean of the answered conversations' `seconds` (the twin of `rules._times`)."""
    answered = "countIf(replied)"
    return (
        f"{answered} AS {prefix}_p50_n, "
        f"quantileExactIf(0.5)({seconds}, replied) AS {prefix}_p50_value, "
        f"{answered} AS {prefix}_p90_n, "
        f"quantileExactIf(0.9)({seconds}, replied) AS {prefix}_p90_value, "
        + _value(f"{prefix}_mean", answered, f"sumIf({seconds}, replied)")
    )


def first_response_sql(
    bucket: str,
    group_by: tuple[str, ...] = DIMENSIONS,
    calendar: Calendar = UTC_ALWAYS_OPEN,
    within: Window | None = None,
    zone: str = "UTC",
) -> str:
    """FRT p50, p90 and mean of conversations whose first inbound message is in the range, in
    wall-clock seconds and in business seconds of the calendar; `within`, the range's values
    (epoch micros), keeps the business-hours SQL to the time zone's changes near it."""
    conversations = _CONVERSATIONS.format(facts=_conversation_facts())
    business = business_seconds_sql("first_in", "reply_at", calendar, within)
    first_reply = _FIRST_REPLY.format(conversations=conversations, business=business)
    answered = "countIf(replied)"
    responses = f"""
        SELECT touchpoint, channel, first_in, replied, frt_s, frt_business_s,
            if(replied, queue_replied, '') AS queue, if(replied, agent_replied, '') AS agent
        FROM ({first_reply})
        WHERE first_in >= {{since:Int64}} AND first_in < {{until:Int64}}"""
    return f"""
    SELECT {_keys(group_by)}, {_bucket("first_in", bucket, zone)} AS bucket_start,
        count() AS conversations, count() - {answered} AS unanswered,
        {_times("frt", "frt_s")},
        {_times("frt_business", "frt_business_s")}
    FROM ({_filtered(responses)})
    {_group(group_by, bucket)}"""


def surveys_sql(bucket: str, group_by: tuple[str, ...] = DIMENSIONS, zone: str = "UTC") -> str:
    """Surveys sent in the range, and how many of them have an answer (any time)."""
    answered = f"""SELECT survey_id FROM {SERVICE_EVENTS_TABLE}
        WHERE tenant_id = {{tenant_id:String}} AND type = '{SURVEY_ANSWERED}' AND survey_id != ''"""
    return f"""
    SELECT {_keys(group_by)}, {_bucket("derived_at", bucket, zone)} AS bucket_start,
        count() AS surveys_sent,
        {_value("response_rate", "count()", f"100 * countIf(survey_id IN ({answered}))")}
    FROM ({_filtered(_facts((SURVEY_SENT,), ranged=True))})
    {_group(group_by, bucket)}"""


@dataclass(frozen=True)
class ServiceQuery:
    """One tenant's service metrics in [since, until) (epoch micros), optionally filtered."""

    tenant_id: str
    since: int
    until: int
    bucket: str = "day"
    channel: str = ""
    touchpoint: str = ""
    queue: str = ""
    agent: str = ""
    threshold_s: float = DEFAULT_SERVICE_LEVEL_S
    # The dimensions a row is per; the others are totalled ('' in the row).
    group_by: tuple[str, ...] = DIMENSIONS
    time_zone: str = "UTC"  # whose midnights start the day buckets
    # The tenant's calendar, for the business-hours definitions (frt_business_*).
    calendar: Calendar = UTC_ALWAYS_OPEN

    def params(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "since": self.since,
            "until": self.until,
            "channel": self.channel,
            "touchpoint": self.touchpoint,
            "queue": self.queue,
            "agent": self.agent,
            "threshold_s": self.threshold_s,
        }


Key = tuple[str, str, str, str, int]  # touchpoint, channel, queue, agent, bucket_start
COUNTS = ("calls", "conversations", "unanswered", "surveys_sent")
# The count that says whether a query's row holds anything (`total` gives a row for an empty range).
_SAMPLES = ("calls", "conversations", "surveys_sent")


@dataclass
class ServiceMetrics:
    """Service metrics of one touchpoint × channel × queue × agent during one bucket."""

    touchpoint: str
    channel: str
    queue: str
    agent: str
    bucket_start: int  # epoch seconds, UTC
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    metrics: dict[str, MetricValue] = field(
        default_factory=lambda: {d.key: MetricValue(None, 0) for d in SERVICE_DEFINITIONS}
    )


def _key(row: dict[str, Any]) -> Key:
    return (row["touchpoint"], row["channel"], row["queue"], row["agent"], int(row["bucket_start"]))


def _merge(found: dict[Key, ServiceMetrics], row: dict[str, Any]) -> None:
    if not any(int(row.get(name, 0)) for name in _SAMPLES):
        return
    key = _key(row)
    target = found.setdefault(key, ServiceMetrics(*key))
    target.counts |= {name: int(row[name]) for name in COUNTS if name in row}
    for d in SERVICE_DEFINITIONS:
        if f"{d.name}_n" in row:
            n = int(row[f"{d.name}_n"])
            target.metrics[d.key] = MetricValue(float(row[f"{d.name}_value"]) if n else None, n)


def collect(rows: Iterable[dict[str, Any]]) -> list[ServiceMetrics]:
    """Rows of the three queries (or of the Python reference) as cells, oldest first."""
    found: dict[Key, ServiceMetrics] = {}
    for row in rows:
        _merge(found, row)
    return [found[key] for key in sorted(found, key=lambda k: (k[4], *k[:4]))]


def read_service_metrics(warehouse: Warehouse, query: ServiceQuery) -> list[ServiceMetrics]:
    """Every service metric per cell (the query's dimensions × bucket), oldest first."""
    params, dims = query.params(), (query.bucket, query.group_by)
    zone, within = query.time_zone, (query.since, query.until)
    conversations = first_response_sql(*dims, query.calendar, within, zone=zone)
    queries = (calls_sql(*dims, zone), conversations, surveys_sql(*dims, zone))
    return collect(row for sql in queries for row in warehouse.select(sql, params))
