"""Customer value read from the warehouse (`value_sql`) equals the pure rule over signals taken
straight from the events, on chdb and on a ClickHouse server (18.16): every member of a merged
customer counts, a reprocessed batch counts once, other customers and tenants never."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from cem.runner import ensure_tables
from kernel.ports import Warehouse
from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.validate import accept
from services.projections.projection import ProjectionsProjection
from services.projections.sql import read_profile
from services.projections.value import (
    DAY_MICROS,
    LOOKBACK_DAYS,
    Signals,
    SurveyAnswer,
    call_facts,
    customer_value,
)
from services.projections.value_sql import with_value
from services.satisfaction.projection import SatisfactionProjection
from services.satisfaction.texts import to_sentiment_rows
from services.service_metrics.facts import SERVICE_EVENTS_TABLE, to_service_rows

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MEMBERS = ["cust-a", "cust-b"]


def event(tenant: str, days_ago: float, type_: str, channel: str, **extra: Any) -> Event:
    at = NOW - timedelta(days=days_ago)
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": type_,
           "channel": channel, "customer": {"customer_id": "c"}, **extra}  # fmt: skip
    accepted, _ = accept(raw, tenant, at + timedelta(seconds=1))
    return accepted


def order(tenant: str, days: float, amount: str, currency: str, product: str | None) -> Event:
    attributes = {"product": product} if product else {}
    payload = {"order_id": uuid.uuid4().hex, "amount": amount, "currency": currency,
               "attributes": attributes}  # fmt: skip
    return event(tenant, days, "order.placed", "web", payload=payload)


def history(tenant: str) -> list[tuple[str, Event]]:
    a, b = MEMBERS
    return [
        (a, order(tenant, 300, "80.50", "EUR", "shoes")),
        (b, order(tenant, 40, "19.99", "EUR", "shoes")),
        (a, order(tenant, 30, "25", "USD", "jacket")),
        (b, event(tenant, 20, "order.returned", "web",
                  payload={"order_id": "o", "amount": "19.99", "currency": "EUR"})),
        (a, event(tenant, 200, "survey.answered", "email", payload={"kind": "nps", "score": 9})),
        (b, event(tenant, 10, "survey.answered", "email",
                  payload={"kind": "nps", "score": 3, "comment": "Terrible, awful service"})),
        (a, event(tenant, 9, "survey.answered", "email", payload={"kind": "csat", "score": 1})),
        (b, event(tenant, 8, "message.received", "chat",
                  payload={"text": "This is horrible, I am very angry and disappointed"})),
        (a, event(tenant, 5, "call.transferred", "phone", correlation_id="call-1", payload={})),
        (a, event(tenant, 5, "call.transferred", "phone", correlation_id="call-1", payload={})),
        (a, event(tenant, 5, "call.ended", "phone", correlation_id="call-1",
                  payload={"queue_wait_s": 420, "talk_s": 60})),
        (b, event(tenant, 4, "call.ended", "phone", correlation_id="call-2",
                  payload={"queue_wait_s": 30, "abandoned": True})),
        (b, event(tenant, 150, "call.ended", "phone", payload={"abandoned": True})),
        # A call in steps (Twilio's callbacks): its wait is on the answer, filed by the telephony
        # adapter under no known customer; the end says nothing of it.
        (a, event(tenant, 7, "call.offered", "phone", correlation_id="call-3",
                  payload={"queue": "billing"})),
        ("cust-z", event(tenant, 6.99, "call.answered", "phone", correlation_id="call-3",
                         payload={"agent": "ana", "queue_wait_s": 400})),
        (a, event(tenant, 6.98, "call.ended", "phone", correlation_id="call-3",
                  payload={"talk_s": 90})),
        # An outbound call by its offer, its end saying nothing of the direction: not the
        # customer's abandoned call, nor a long wait.
        (b, event(tenant, 6, "call.offered", "phone", correlation_id="call-4",
                  payload={"queue": "sales", "direction": "outbound"})),
        (b, event(tenant, 5.99, "call.ended", "phone", correlation_id="call-4",
                  payload={"queue_wait_s": 500, "abandoned": True})),
        (a, event(tenant, 3, "case.opened", "email", payload={"case_id": "k-1"})),
        ("cust-z", event(tenant, 2, "call.ended", "phone", payload={"abandoned": True})),
    ]  # fmt: skip


def store(warehouse: Warehouse, filed: list[tuple[str, Event]]) -> None:
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for projection in (ProjectionsProjection(), SatisfactionProjection()):
        for offset, (customer_id, e) in enumerate(filed):
            for table, rows in projection.rows(e, customer_id).items():
                # The log position the runner stamps (the arrivals table asks for one).
                by_table[table] += [
                    r | {"log_partition": 0, "log_offset": offset} if "log_offset" in r else r
                    for r in rows
                ]
    for table, rows in by_table.items():
        warehouse.insert(table, rows)
        warehouse.insert(table, rows[:3])  # a reprocessed batch


def service_facts(filed: list[tuple[str, Event]]) -> list[dict[str, Any]]:
    """The `service_events` rows of the events, every customer's, as the consumer writes them."""
    return [
        row
        for customer_id, e in filed
        for row in to_service_rows(e, customer_id).get(SERVICE_EVENTS_TABLE, [])
    ]


def reference_signals(filed: list[tuple[str, Event]]) -> Signals:
    """The signals computed from the events themselves, with no SQL."""
    mine = [e for customer_id, e in filed if customer_id in MEMBERS]
    since, until = to_micros(NOW) - LOOKBACK_DAYS * DAY_MICROS, to_micros(NOW)
    negative = [
        row["written_at"]
        for e in mine
        for row in to_sentiment_rows(e).get("text_sentiment", [])
        if row["label"] == "negative"
    ]
    return Signals(
        answers=[
            SurveyAnswer(
                e.payload["kind"], e.payload["score"], to_micros(e.derived_at), str(e.event_id)
            )
            for e in mine
            if e.type == "survey.answered"
        ],
        negative_texts=negative,
        calls=[c for c in call_facts(service_facts(filed), MEMBERS) if since <= c.at <= until],
        products=[
            e.payload["attributes"]["product"]
            for e in mine
            if e.type == "order.placed" and "product" in e.payload.get("attributes", {})
        ],
    )


def test_the_warehouse_value_equals_the_pure_rule_over_the_events(any_warehouse: Warehouse) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    ensure_tables(any_warehouse, [ProjectionsProjection(), SatisfactionProjection()])
    filed = history(tenant)
    store(any_warehouse, filed + [(MEMBERS[0], order(other, 1, "999", "EUR", "tv"))])

    profile = read_profile(any_warehouse, tenant, MEMBERS)
    assert profile is not None
    read = with_value(any_warehouse, tenant, MEMBERS, profile, NOW).value
    expected = customer_value(profile, reference_signals(filed), NOW)
    assert read == expected

    # What an agent sees, computed by hand from the history above.
    assert read is not None
    assert [(s.currency, s.net_amount) for s in read.monetary] == [
        ("EUR", "80.50"),
        ("USD", "25.00"),
    ]
    assert [(p.product, p.orders) for p in read.products] == [("shoes", 2), ("jacket", 1)]
    assert (read.recency_days, read.frequency, read.tenure_days) == (30, 3, 300)
    assert (read.nps_trend.latest, read.nps_trend.previous) == (3, 9)
    points = {f.factor: f.points for f in read.churn_risk.factors}
    assert points["transfers"] == 10
    # 420 s on call-1's end, 400 s on call-3's answer; call-4 is outbound by its offer.
    assert points["long_wait"] == 10
    assert points["abandoned_call"] == 10  # the abandoned call 150 days ago is out of the lookback
    assert points["negative_sentiment"] >= 5
    assert {"nps_detractor", "nps_falling", "low_csat", "open_cases"} <= points.keys()
