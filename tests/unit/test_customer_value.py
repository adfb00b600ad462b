"""value@1 and churn_risk@1 (services/projections/value.py) against hand-computed expectations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.projections.profile import (
    ChannelUsage,
    OpenCase,
    Orders,
    Profile,
    Satisfaction,
    Spend,
)
from services.projections.repeat_contact import ContactRef, RepeatContact
from services.projections.value import (
    CallFact,
    Signals,
    SurveyAnswer,
    call_facts,
    customer_value,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def spend(currency: str, orders: int, amount: str, returned: str, net: str) -> Spend:
    return Spend(currency=currency, orders=orders, amount=amount, returns=1 if returned != "0"
                 else 0, returned_amount=returned, net_amount=net)  # fmt: skip


def profile(orders: int = 3, last_order_days: float | None = 10, **extra: object) -> Profile:
    by_currency = [spend("EUR", 2, "150", "50", "100"), spend("USD", 1, "20", "0", "20")]
    fields: dict[str, object] = {
        "customer_id": "c1",
        "members": ["c1"],
        "first_seen": ago(400.5),
        "last_seen": ago(1),
        "events": 30,
        "last_channel": "chat",
        "last_touchpoint": "help",
        "channels": [
            ChannelUsage(channel="phone", events=20, first_at=ago(400), last_at=ago(2)),
            ChannelUsage(channel="chat", events=10, first_at=ago(300), last_at=ago(1)),
        ],
        "orders": Orders(
            count=orders,
            returns=1,
            by_currency=by_currency[: 2 if orders else 0],
            last_at=ago(last_order_days) if last_order_days is not None else None,
        ),  # fmt: skip
        "satisfaction": Satisfaction(),
        "open_cases": [],
        "identifiers": [],
    }
    return Profile.model_validate(fields | extra)


def test_a_loyal_customer_with_no_bad_service_has_no_risk() -> None:
    value = customer_value(profile(), Signals(products=["shoes", "jacket", "shoes"]), NOW)
    assert (value.recency_days, value.frequency, value.tenure_days) == (10, 3, 400)
    assert value.preferred_channel == "phone"
    assert value.channels_used == ["phone", "chat"]
    assert [(s.currency, s.net_amount) for s in value.monetary] == [("EUR", "100"), ("USD", "20")]
    assert [(p.product, p.orders) for p in value.products] == [("shoes", 2), ("jacket", 1)]
    assert value.churn_risk.score == 0
    assert value.churn_risk.band == "low"
    assert value.churn_risk.factors == []


def test_every_factor_adds_its_points_up_to_its_cap() -> None:
    answers = [
        SurveyAnswer("nps", 9, micros(ago(200)), "n1"),  # outside the lookback: trend only
        SurveyAnswer("nps", 4, micros(ago(5)), "n2"),
        SurveyAnswer("csat", 1, micros(ago(3)), "s1"),
        SurveyAnswer("csat", 2, micros(ago(4)), "s2"),
        SurveyAnswer("csat", 1, micros(ago(6)), "s3"),  # third low CSAT: over the cap of 20
        SurveyAnswer("csat", 1, micros(ago(95)), "s4"),  # outside the lookback
        SurveyAnswer("ces", 3, micros(ago(2)), "e1"),
        SurveyAnswer("ces", 6, micros(ago(2)), "e2"),
    ]
    calls = [
        CallFact("k1", micros(ago(3)), queue_wait_s=301, abandoned=True, transfers=0),
        CallFact("k2", micros(ago(4)), queue_wait_s=300, abandoned=False, transfers=2),
        CallFact("k3", micros(ago(120)), queue_wait_s=900, abandoned=True, transfers=5),
    ]
    signals = Signals(
        answers=answers,
        negative_texts=[micros(ago(1)), micros(ago(91))],
        calls=calls,
    )
    case = OpenCase(case_id="x", opened_at=ago(3), updated_at=ago(3), subject=None)
    value = customer_value(profile(orders=1, last_order_days=200, open_cases=[case]), signals, NOW)
    assert (value.nps_trend.latest, value.nps_trend.previous, value.nps_trend.change) == (4, 9, -5)
    points = {f.factor: (f.count, f.points) for f in value.churn_risk.factors}
    assert points == {
        "no_recent_order": (200, 10),
        "single_order": (1, 5),
        "nps_detractor": (1, 15),
        "nps_falling": (1, 10),
        "low_csat": (3, 20),
        "hard_effort": (1, 5),
        "negative_sentiment": (1, 5),
        "long_wait": (1, 5),
        "abandoned_call": (1, 10),
        "transfers": (2, 10),
        "open_cases": (1, 5),
    }
    # 10+5+15+10+20+5+5+5+10+10+5 = 100
    assert value.churn_risk.score == 100
    assert value.churn_risk.band == "high"
    assert [f.factor for f in value.churn_risk.factors][:2] == ["low_csat", "nps_detractor"]


def test_the_score_is_capped_at_100_and_a_year_without_orders_gives_20() -> None:
    calls = [CallFact(f"k{i}", micros(ago(1)), 600, True, 3) for i in range(5)]
    answers = [SurveyAnswer("nps", 0, micros(ago(1)), "n")]
    repeat = RepeatContact(
        contact=ContactRef(event_id="b", at=ago(2), channel="phone", touchpoint="t"),
        earlier=ContactRef(event_id="a", at=ago(4), channel="phone", touchpoint="t"),
    )
    value = customer_value(
        profile(orders=2, last_order_days=366, repeat_contact=repeat),
        Signals(answers=answers, negative_texts=[micros(ago(1))] * 4, calls=calls),
        NOW,
    )
    points = {f.factor: f.points for f in value.churn_risk.factors}
    # 20 + 15 + 15 + 10 + 15 + 20 + 15 = 110, capped
    assert points == {"no_recent_order": 20, "nps_detractor": 15, "negative_sentiment": 15,
                      "repeat_contact": 10, "long_wait": 15, "abandoned_call": 20,
                      "transfers": 15}  # fmt: skip
    assert value.churn_risk.score == 100


def test_a_customer_who_never_ordered_has_no_recency_and_a_medium_risk_from_service() -> None:
    answers = [
        SurveyAnswer("csat", 2, micros(ago(1)), "s"),
        SurveyAnswer("ces", 1, micros(ago(1)), "e"),
    ]
    calls = [CallFact("k", micros(ago(1)), 0, True, 1)]
    value = customer_value(
        profile(orders=0, last_order_days=None), Signals(answers, (), calls), NOW
    )
    assert (value.recency_days, value.last_order_at, value.monetary) == (None, None, [])
    assert value.nps_trend.latest is None
    # low_csat 10 + hard_effort 5 + abandoned 10 + transfers 5 = 30
    assert (value.churn_risk.score, value.churn_risk.band) == (30, "medium")


def fact(
    type_: str, event_id: str, days: float, corr: str, customer: str = "c1", **extra: object
) -> dict[str, object]:
    """A `service_events` row (services/service_metrics/facts.py)."""
    row: dict[str, object] = {
        "tenant_id": "t", "event_id": event_id, "customer_id": customer, "correlation_id": corr,
        "type": type_, "touchpoint": "line", "channel": "phone", "derived_at": micros(ago(days)),
        "agent": "", "queue": "", "sender": "", "direction": "", "queue_wait_s": 0.0,
        "handle_s": 0.0, "abandoned": 0, "survey_id": "",
    }  # fmt: skip
    return row | extra


def test_a_call_in_steps_is_read_as_service_metrics_read_it() -> None:
    facts = [
        # Twilio-style: the wait on the answer (filed under no known customer), none on the end.
        fact("call.offered", "o1", 3.0, "k1", queue="billing", direction="inbound"),
        fact("call.answered", "a1", 2.99, "k1", customer="?", agent="ana", queue_wait_s=400.0),
        fact("call.answered", "a2", 2.98, "k1", agent="bo", queue_wait_s=20.0),  # a transfer
        fact("call.transferred", "t1", 2.985, "k1"),
        fact("call.ended", "e1", 2.97, "k1", direction="inbound", abandoned=0),
        # Its own wait wins over the answer's.
        fact("call.answered", "a3", 2.0, "k2", agent="ana", queue_wait_s=900.0),
        fact("call.ended", "e2", 1.99, "k2", direction="inbound", queue_wait_s=30.0),
        # Outbound by its offer, the end saying inbound (the default): not the customer's call.
        fact("call.offered", "o3", 1.0, "k3", queue="sales", direction="outbound"),
        fact("call.ended", "e3", 0.99, "k3", direction="inbound", queue_wait_s=500.0, abandoned=1),
        # A call back in k1 after e1 ended: e1's steps are not its own.
        fact("call.answered", "a4", 0.5, "k1", agent="cy", queue_wait_s=0.0),
        fact("call.ended", "e4", 0.49, "k1", direction="inbound", abandoned=1),
        # Another customer's call.
        fact("call.ended", "e5", 0.4, "k5", customer="c2", direction="inbound", abandoned=1),
    ]
    calls = sorted(call_facts(facts + facts[:3], {"c1"}), key=lambda c: c.at)
    assert [(c.event_id, c.queue_wait_s, c.abandoned, c.transfers) for c in calls] == [
        ("e1", 400.0, False, 1),  # the first answer's wait: a transfer answered again is not it
        ("e2", 30.0, False, 0),
        ("e4", 0.0, True, 1),  # its conversation's transfer too, counted once below
    ]
    value = customer_value(profile(), Signals(calls=calls), NOW)
    points = {f.factor: f.points for f in value.churn_risk.factors}
    # k1's one transfer is 5 points, not 5 for each of its two calls (a review).
    assert points == {"long_wait": 5, "abandoned_call": 10, "transfers": 5}
