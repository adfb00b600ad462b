"""The reads of customer value (`value.py`): ClickHouse SQL that also runs on server 18.16.

No table of its own: survey answers come from `profile_facts`, products from the orders in the
timeline, negative texts from `text_sentiment` and calls from `service_events` (completed by their
steps as service metrics complete them: `calls_with_steps`), each for every member of a merged
customer and deduplicated by event id, in one UNION ALL; `value.py` decides. 18.16 has no window
functions, so the reads return rows and the rule orders them. Only table names, fixed type lists
and the members fragment are formatted into SQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson

from kernel.ports import Warehouse
from kernel.processing import to_micros
from services.projections.profile import SURVEY, Profile
from services.projections.sql import PROFILE_FACTS, TIMELINE, Members, members_filter
from services.projections.value import (
    DAY_MICROS,
    LOOKBACK_DAYS,
    CallFact,
    Signals,
    SurveyAnswer,
    ValuedProfile,
    customer_value,
)
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE
from services.service_metrics.facts import CALL_ENDED, CALL_TRANSFERRED, SERVICE_EVENTS_TABLE
from services.service_metrics.sql import calls_with_steps

MAX_ANSWERS = 500  # the newest; the NPS trend needs two, the lookback rarely more
MAX_ROWS = 10_000  # a bound on the orders, texts or calls one read fetches
ORDER_TYPES = ("order.placed", "store.purchased")
PRODUCT_ATTRIBUTE = "product"  # v1 orders have no product field: the `product` attribute names it

# `<members>` is replaced by the members fragment when read (it holds parameters in braces).
_CUSTOMER = "tenant_id = {tenant_id:String} AND <members>"
ANSWERS_QUERY = f"""SELECT key AS kind, num_value AS score, derived_at AS at, event_id
FROM {PROFILE_FACTS}
WHERE {_CUSTOMER} AND field = '{SURVEY}'
ORDER BY derived_at DESC, event_id DESC
LIMIT 1 BY event_id
LIMIT {MAX_ANSWERS}"""

ORDERS_QUERY = f"""SELECT event_id, payload_json FROM {TIMELINE}
WHERE {_CUSTOMER} AND type IN ('{ORDER_TYPES[0]}', '{ORDER_TYPES[1]}')
LIMIT 1 BY event_id
LIMIT {MAX_ROWS}"""

_IN_LOOKBACK = "{since:Int64} AND {until:Int64}"
NEGATIVE_TEXTS_QUERY = f"""SELECT event_id, written_at AS at FROM {TEXT_SENTIMENT_TABLE}
WHERE {_CUSTOMER} AND label = 'negative' AND written_at BETWEEN {_IN_LOOKBACK}
LIMIT 1 BY event_id
LIMIT {MAX_ROWS}"""

_ENDED = f"""SELECT * FROM {SERVICE_EVENTS_TABLE}
    WHERE {_CUSTOMER} AND type = '{CALL_ENDED}' AND derived_at BETWEEN {_IN_LOOKBACK}
    LIMIT 1 BY event_id"""
# The customer's calls read as service metrics read them (their steps give the wait and the
# direction a call.ended may not: docs/metrics.md, "A call in steps"); the inbound ones count.
CALLS_QUERY = f"""SELECT event_id, derived_at AS at, queue_wait_s, abandoned, correlation_id
FROM ({calls_with_steps(_ENDED)})
WHERE direction = 'inbound'
LIMIT {MAX_ROWS}"""
# A call's transfers are the customer's call.transferred events of its conversation.
TRANSFERS_QUERY = f"""SELECT correlation_id, count() AS transfers FROM (
    SELECT event_id, correlation_id FROM {SERVICE_EVENTS_TABLE}
    WHERE {_CUSTOMER} AND type = '{CALL_TRANSFERRED}'
        AND correlation_id != '' AND correlation_id IN (SELECT correlation_id FROM ({_ENDED}))
    LIMIT 1 BY event_id
)
GROUP BY correlation_id"""


def product_of(payload_json: str) -> str | None:
    """The product an order names in its attributes, if any."""
    attributes = orjson.loads(payload_json).get("attributes") or {}
    product = attributes.get(PRODUCT_ATTRIBUTE)
    return product if isinstance(product, str) and product.strip() else None


# The five reads in one round trip: each keeps its own filters and bounds inside a subquery and
# is tagged with its source; the columns are cast to one shape (18.16 wants equal types).
SIGNALS_QUERY = "\nUNION ALL\n".join(
    f"""SELECT '{source}' AS source, toString({event_id}) AS event_id, toInt64({at}) AS at,
    toString({text}) AS text, toFloat64({number}) AS number, toUInt8({flag}) AS flag
FROM ({query})"""
    for source, query, event_id, at, text, number, flag in (
        ("answer", ANSWERS_QUERY, "event_id", "at", "kind", "score", "0"),
        ("order", ORDERS_QUERY, "event_id", "0", "payload_json", "0", "0"),
        ("text", NEGATIVE_TEXTS_QUERY, "event_id", "at", "''", "0", "0"),
        ("call", CALLS_QUERY, "event_id", "at", "correlation_id", "queue_wait_s", "abandoned"),
        ("transfers", TRANSFERS_QUERY, "''", "0", "correlation_id", "transfers", "0"),
    )
)


def _read(
    warehouse: Warehouse, tenant_id: str, customer: Members, window: dict[str, int]
) -> dict[str, list[dict[str, Any]]]:
    members, params = members_filter(customer)
    sql = SIGNALS_QUERY.replace("<members>", members)
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in warehouse.select(sql, {"tenant_id": tenant_id, **params, **window}):
        found[row["source"]].append(row)
    return found


def _calls(ended: list[dict[str, Any]], transferred: list[dict[str, Any]]) -> list[CallFact]:
    transfers = {r["text"]: int(r["number"]) for r in transferred}
    return [
        CallFact(
            event_id=r["event_id"],
            at=int(r["at"]),
            queue_wait_s=float(r["number"]),
            abandoned=bool(r["flag"]),
            transfers=transfers.get(r["text"], 0) if r["text"] else 0,
            conversation=r["text"],
        )
        for r in ended
    ]


def read_signals(
    warehouse: Warehouse, tenant_id: str, customer: Members, as_of: datetime
) -> Signals:
    """What the value reads beside the profile, for every member of the customer: one query."""
    until = to_micros(as_of)
    rows = _read(
        warehouse,
        tenant_id,
        customer,
        {"since": until - LOOKBACK_DAYS * DAY_MICROS, "until": until},
    )
    return Signals(
        answers=[
            SurveyAnswer(r["text"], int(r["number"]), int(r["at"]), r["event_id"])
            for r in rows["answer"]
        ],
        negative_texts=[int(r["at"]) for r in rows["text"]],
        calls=_calls(rows["call"], rows["transfers"]),
        products=[p for r in rows["order"] if (p := product_of(r["text"])) is not None],
    )


def with_value(
    warehouse: Warehouse, tenant_id: str, customer: Members, profile: Profile, as_of: datetime
) -> ValuedProfile:
    """The profile with the customer's value and churn risk as of `as_of`."""
    signals = read_signals(warehouse, tenant_id, customer, as_of)
    value = customer_value(profile, signals, as_of)
    return ValuedProfile(**dict(profile), value=value)
