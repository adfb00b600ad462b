"""Attribution of survey responses as METRICS.md defines it, in SQL (18.16 and chdb alike).

A response counts for the interaction that triggered it: with a `correlation_id`, the latest
interaction of that conversation at or before the survey was sent; without one, the customer's
latest touchpoint before then. "Sent" is the `survey.sent` with the response's `survey_id` when one
is stored (and not after the answer), else the answer's own time. Agent and queue are the latest
known among the interactions up to then. With no such interaction the response keeps its own
envelope values. Cells, the drill-down and the at-risk alerts all read this one attribution;
`attribution.attribute_response` is the Python reference.

ClickHouse 18.16 has no ASOF JOIN and no join on inequalities, so every candidate interaction is
joined by key (`ALL LEFT JOIN ... USING`) and the latest one before the cutoff is picked with
`argMaxIf` per response. The candidates are limited to the conversations and customers the
responses in range refer to.
"""

from __future__ import annotations

from kernel.customer_key import customer_key
from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.families import PLATFORM_TYPES
from services.satisfaction.responses import first_text

CUSTOMER_TOUCHPOINTS_TABLE = "customer_touchpoints"
INTERACTIONS_TABLE = "interactions"
SERVICE_EVENTS_TABLE = "service_events"  # survey.sent facts (services/service_metrics/facts.py)
_SURVEY_PREFIX = "survey."

Row = dict[str, object]


def ddl(version: tuple[int, ...]) -> list[str]:
    """Every non-survey touchpoint of a customer, keyed for the per-customer lookup."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {CUSTOMER_TOUCHPOINTS_TABLE} (
            tenant_id String, customer_id String, event_id String, derived_at Int64,
            touchpoint String, channel String, agent String, queue String
        ) ENGINE = ReplacingMergeTree()
        ORDER BY (tenant_id, customer_id, derived_at, event_id)"""
    ]


def to_touchpoint_rows(event: Event, customer_id: str | None = None) -> dict[str, list[Row]]:
    """The `customer_touchpoints` row of a non-survey event: where the customer was, and when.
    Platform-made events (a manager's alert action) are not where the customer was."""
    if event.type.startswith(_SURVEY_PREFIX) or event.type in PLATFORM_TYPES:
        return {}
    row: Row = {
        "tenant_id": event.tenant_id,
        "customer_id": customer_id or customer_key(event.customer),
        "event_id": str(event.event_id),
        "derived_at": to_micros(event.derived_at),
        "touchpoint": event.touchpoint,
        "channel": event.channel.value,
        "agent": first_text(event.payload, ("agent", "to_agent")),
        "queue": first_text(event.payload, ("queue", "to_queue")),
    }
    return {CUSTOMER_TOUCHPOINTS_TABLE: [row]}


# `{only}` is empty (every response in range) or an extra ` AND ...` condition on the responses.
_RESPONSES = """
    SELECT tenant_id, event_id, kind, score, scale, answered_at, survey_id, customer_id, comment,
        correlation_id, touchpoint AS own_touchpoint, channel AS own_channel,
        if(correlation_id != '', concat('c:', correlation_id), concat('u:', customer_id))
            AS join_key
    FROM survey_responses
    WHERE tenant_id = {tenant_id:String}
        AND answered_at >= {since:Int64} AND answered_at < {until:Int64}{only}
    LIMIT 1 BY event_id"""

_SENT = f"""
    SELECT tenant_id, survey_id, min(derived_at) AS sent_at FROM {SERVICE_EVENTS_TABLE}
    WHERE tenant_id = {{tenant_id:String}} AND type = 'survey.sent' AND survey_id != ''
    GROUP BY tenant_id, survey_id"""

_WITH_CUTOFF = f"""
    SELECT tenant_id, join_key, event_id, kind, score, scale, answered_at, customer_id, comment,
        correlation_id, own_touchpoint, own_channel, if(sent_at > 0 AND sent_at <= answered_at, sent_at, answered_at) AS cutoff
    FROM ({_RESPONSES}) AS response
    ANY LEFT JOIN ({_SENT}) AS sent USING (tenant_id, survey_id)"""

# The conversations and the customers (of answers without a conversation) to look candidates up
# for, as plain column values: `correlation_id IN (...)` and `customer_id IN (...)` read only their
# key ranges of `interactions` and `customer_touchpoints`, where a condition on `concat(...)` read
# the tenant's whole table (a console's risk badge asks for one customer's few answers).
_CONVERSATIONS = f"""
    SELECT DISTINCT correlation_id FROM ({_RESPONSES}) WHERE correlation_id != ''"""

_UNCORRELATED_CUSTOMERS = f"""
    SELECT DISTINCT customer_id FROM ({_RESPONSES}) WHERE correlation_id = ''"""

_CANDIDATES = f"""
    SELECT tenant_id, concat('c:', correlation_id) AS join_key, event_id AS i_event_id,
        derived_at AS i_derived_at, touchpoint AS i_touchpoint, channel AS i_channel,
        agent AS i_agent, queue AS i_queue
    FROM {INTERACTIONS_TABLE}
    WHERE tenant_id = {{tenant_id:String}} AND correlation_id IN ({_CONVERSATIONS})
    UNION ALL
    SELECT tenant_id, concat('u:', customer_id) AS join_key, event_id AS i_event_id,
        derived_at AS i_derived_at, touchpoint AS i_touchpoint, channel AS i_channel,
        agent AS i_agent, queue AS i_queue
    FROM {CUSTOMER_TOUCHPOINTS_TABLE}
    WHERE tenant_id = {{tenant_id:String}} AND customer_id IN ({_UNCORRELATED_CUSTOMERS})"""

_PAIRS = f"""
    SELECT event_id, kind, score, scale, answered_at, customer_id, comment, correlation_id,
        own_touchpoint, own_channel, i_event_id, i_derived_at, i_touchpoint, i_channel,
        i_agent, i_queue, i_event_id != '' AND i_derived_at <= cutoff AS ok
    FROM ({_WITH_CUTOFF}) AS cut
    ALL LEFT JOIN ({_CANDIDATES}) AS candidate USING (tenant_id, join_key)"""

_ATTRIBUTED = f"""
    SELECT event_id, any(kind) AS kind, any(score) AS score, any(scale) AS scale,
        any(answered_at) AS answered_at, any(customer_id) AS customer_id,
        any(comment) AS comment, any(correlation_id) AS correlation_id, countIf(ok) > 0 AS found,
        if(found, argMaxIf(i_touchpoint, (i_derived_at, i_event_id), ok), any(own_touchpoint))
            AS touchpoint,
        if(found, argMaxIf(i_channel, (i_derived_at, i_event_id), ok), any(own_channel))
            AS channel,
        if(found, argMaxIf(i_event_id, (i_derived_at, i_event_id), ok), '') AS rated_event_id,
        argMaxIf(i_agent, (i_derived_at, i_event_id), ok AND i_agent != '') AS agent,
        argMaxIf(i_queue, (i_derived_at, i_event_id), ok AND i_queue != '') AS queue
    FROM ({_PAIRS})
    GROUP BY event_id"""


def attributed_responses(only: str = "") -> str:
    """One row per response answered in [since, until) with where it is counted: touchpoint,
    channel, the rated interaction and its latest known agent and queue; `only` is an extra
    ` AND ...` condition on the `survey_responses` rows, made of fixed SQL and parameters."""
    return _ATTRIBUTED.replace("{only}", only)


ATTRIBUTED_RESPONSES = attributed_responses()
