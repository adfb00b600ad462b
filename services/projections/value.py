"""Customer value (`value@1`) and churn risk (`churn_risk@1`), for one customer, at read time.

Pure: the customer's profile (already folded from its facts) plus the signals read beside it
(`value_sql.py`) and the instant the answer is for give the value; no I/O, clock or randomness.
Money is never added across currencies: every amount is per currency, as the profile's orders.

The churn risk is a heuristic, not a trained model: a sum of documented points per factor, each
factor capped, the total capped at 100 (docs/metrics.md). Every factor that contributes is
returned with its points, so an agent sees why a customer is at risk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from kernel.processing import to_micros
from services.projections.profile import Profile, Spend
from services.service_metrics.facts import CALL_TRANSFERRED
from services.service_metrics.rules import completed_calls

VALUE_DEFINITION = "value@1"
CHURN_DEFINITION = "churn_risk@1"
LOOKBACK_DAYS = 90  # the service signals (surveys, texts, calls, repeat contact) that count
LONG_WAIT_S = 300.0  # a call answered or abandoned after more than 5 minutes in the queue
TOP_PRODUCTS = 5
MAX_SCORE = 100
MEDIUM_AT, HIGH_AT = 25, 50
DAY_MICROS = 86_400 * 1_000_000


@dataclass(frozen=True)
class SurveyAnswer:
    kind: str  # csat, nps, ces
    score: int
    at: int  # epoch micros
    event_id: str


@dataclass(frozen=True)
class CallFact:
    """One inbound call that ended, with how many times it was transferred."""

    event_id: str
    at: int
    queue_wait_s: float
    abandoned: bool
    transfers: int  # of its conversation: every call of a conversation names the same ones
    conversation: str = ""  # its correlation id; '' for a call without one


def call_facts(facts: Iterable[dict[str, Any]], members: Collection[str]) -> list[CallFact]:
    """The inbound calls filed under the customer's `members`, from `service_events` facts (the
    tenant's, or at least the customer's and their conversations' steps), each read as service
    metrics read it (docs/metrics.md, "A call in steps"): the wait is its own, else the first
    answer's; outbound when it or a step says so. Its transfers are the customer's
    `call.transferred` of its conversation. The reference of `value_sql`'s calls."""
    listed = list({f["event_id"]: f for f in facts}.values())
    transfers = Counter(
        f["correlation_id"]
        for f in listed
        if f["type"] == CALL_TRANSFERRED and f["customer_id"] in members and f["correlation_id"]
    )
    return [
        CallFact(
            c["event_id"],
            c["derived_at"],
            c["queue_wait_s"],
            bool(c["abandoned"]),
            transfers[c["correlation_id"]] if c["correlation_id"] else 0,
            c["correlation_id"],
        )  # fmt: skip
        for c in completed_calls(listed)
        if c["customer_id"] in members and c["direction"] == "inbound"
    ]


@dataclass(frozen=True)
class Signals:
    """What the value reads beside the profile; the rule keeps only what falls in its windows."""

    answers: Sequence[SurveyAnswer] = ()
    negative_texts: Sequence[int] = ()  # when each negative text of the customer was written
    calls: Sequence[CallFact] = ()
    products: Sequence[str] = field(default_factory=tuple)  # one per order naming a product


# --- points: (points each, cap) per factor; docs/metrics.md lists the same table ---------------
@dataclass(frozen=True)
class Rule:
    points: int
    cap: int
    reason: str


RULES: dict[str, Rule] = {
    "no_recent_order": Rule(10, 20, "days since the last order: 10 points after 180, 20 after 365"),
    "single_order": Rule(5, 5, "one order only"),
    "nps_detractor": Rule(15, 15, "latest NPS answer 0-6"),
    "nps_falling": Rule(10, 10, "latest NPS answer 2 or more below the one before"),
    "low_csat": Rule(10, 20, "CSAT answers of 1-2"),
    "hard_effort": Rule(5, 10, "CES answers of 1-3"),
    "negative_sentiment": Rule(5, 15, "texts of the customer read as negative"),
    "repeat_contact": Rule(10, 10, "contacted us again within 7 days (repeat_contact@1)"),
    "long_wait": Rule(5, 15, f"calls with more than {int(LONG_WAIT_S)} s in the queue"),
    "abandoned_call": Rule(10, 20, "calls abandoned in the queue"),
    "transfers": Rule(5, 15, "transfers of the customer's calls (a chain counts each)"),
    "open_cases": Rule(5, 10, "cases still open"),
}


class Factor(BaseModel):
    factor: str = Field(description="the factor's key (docs/metrics.md, churn_risk@1)")
    count: int = Field(description="how many times it happened (days for no_recent_order)")
    points: int = Field(description="its contribution to the score, after its cap")
    cap: int = Field(description="the most points this factor can give")
    reason: str


class ChurnRisk(BaseModel):
    definition: str = CHURN_DEFINITION
    score: int = Field(description="0-100: the sum of the factors' points, capped at 100")
    band: Literal["low", "medium", "high"] = Field(description="low < 25 ≤ medium < 50 ≤ high")
    lookback_days: int = LOOKBACK_DAYS
    factors: list[Factor] = Field(description="the contributing factors, most points first")


class ProductCount(BaseModel):
    product: str
    orders: int


class NpsTrend(BaseModel):
    latest: int | None = None
    previous: int | None = None
    change: int | None = Field(default=None, description="latest minus previous")


class CustomerValue(BaseModel):
    """Recency, frequency, monetary value and the churn risk of a customer (`value@1`)."""

    definition: str = VALUE_DEFINITION
    as_of: datetime
    last_order_at: datetime | None
    recency_days: int | None = Field(description="whole days since the last order; null: none")
    frequency: int = Field(description="orders and store purchases")
    monetary: list[Spend] = Field(
        description="per currency, never added across currencies; net_amount is the lifetime "
        "value so far (orders minus returns)"
    )
    tenure_days: int = Field(description="whole days since the customer was first seen")
    first_seen: datetime
    channels_used: list[str] = Field(description="most used first")
    preferred_channel: str = Field(
        description="the most used channel; '' for a customer with no contact left (an erased "
        "one: only the platform's own events remain)"
    )
    products: list[ProductCount] = Field(description=f"the top {TOP_PRODUCTS} products bought")
    nps_trend: NpsTrend
    open_cases: int
    churn_risk: ChurnRisk


def _days(micros: int) -> int:
    return max(0, micros // DAY_MICROS)


def _factor(key: str, count: int, points: int | None = None) -> Factor:
    rule = RULES[key]
    earned = rule.points * count if points is None else points
    return Factor(factor=key, count=count, points=min(earned, rule.cap), cap=rule.cap,
                  reason=rule.reason)  # fmt: skip


def nps_trend(answers: Sequence[SurveyAnswer]) -> NpsTrend:
    """The latest NPS answer against the one before it (by time, then event id)."""
    nps = sorted((a for a in answers if a.kind == "nps"), key=lambda a: (a.at, a.event_id))
    latest, previous = (nps[-1].score if nps else None), (nps[-2].score if len(nps) > 1 else None)
    change = latest - previous if latest is not None and previous is not None else None
    return NpsTrend(latest=latest, previous=previous, change=change)


def _order_factors(recency_days: int | None, frequency: int) -> list[Factor]:
    found = []
    if recency_days is not None and recency_days > 180:
        found.append(_factor("no_recent_order", recency_days, 20 if recency_days > 365 else 10))
    if frequency == 1:
        found.append(_factor("single_order", 1))
    return found


def _survey_factors(trend: NpsTrend, recent: Sequence[SurveyAnswer]) -> list[Factor]:
    found = []
    if trend.latest is not None and trend.latest <= 6:
        found.append(_factor("nps_detractor", 1))
    if trend.change is not None and trend.change <= -2:
        found.append(_factor("nps_falling", 1))
    found.append(_factor("low_csat", sum(a.kind == "csat" and a.score <= 2 for a in recent)))
    found.append(_factor("hard_effort", sum(a.kind == "ces" and a.score <= 3 for a in recent)))
    return found


def _call_factors(calls: Sequence[CallFact]) -> list[Factor]:
    return [
        _factor("long_wait", sum(c.queue_wait_s > LONG_WAIT_S for c in calls)),
        _factor("abandoned_call", sum(c.abandoned for c in calls)),
        # A conversation's transfers once, however many of its calls the customer made (a
        # call-back carries the same conversation's transfers as the call before it).
        _factor(
            "transfers", sum({c.conversation or c.event_id: c.transfers for c in calls}.values())
        ),
    ]


def churn_risk(
    profile: Profile, signals: Signals, as_of: int, recency_days: int | None, trend: NpsTrend
) -> ChurnRisk:
    """The points of every factor in the lookback before `as_of` (epoch micros), summed."""
    since = as_of - LOOKBACK_DAYS * DAY_MICROS
    in_window = lambda at: since <= at <= as_of  # noqa: E731
    repeat = profile.repeat_contact
    repeated = repeat is not None and in_window(to_micros(repeat.contact.at))
    factors = [
        *_order_factors(recency_days, profile.orders.count),
        *_survey_factors(trend, [a for a in signals.answers if in_window(a.at)]),
        _factor("negative_sentiment", sum(in_window(at) for at in signals.negative_texts)),
        _factor("repeat_contact", int(repeated)),
        *_call_factors([c for c in signals.calls if in_window(c.at)]),
        _factor("open_cases", len(profile.open_cases)),
    ]
    contributing = sorted((f for f in factors if f.points > 0), key=lambda f: (-f.points, f.factor))
    score = min(MAX_SCORE, sum(f.points for f in contributing))
    band: Literal["low", "medium", "high"] = (
        "high" if score >= HIGH_AT else "medium" if score >= MEDIUM_AT else "low"
    )
    return ChurnRisk(score=score, band=band, factors=contributing)


def top_products(products: Sequence[str]) -> list[ProductCount]:
    counted = sorted(Counter(products).items(), key=lambda item: (-item[1], item[0]))
    return [ProductCount(product=p, orders=n) for p, n in counted[:TOP_PRODUCTS]]


def customer_value(profile: Profile, signals: Signals, as_of: datetime) -> CustomerValue:
    """The customer's value and churn risk as of `as_of`."""
    now = to_micros(as_of)
    last_order = profile.orders.last_at
    recency = _days(now - to_micros(last_order)) if last_order else None
    trend = nps_trend(signals.answers)
    return CustomerValue(
        as_of=as_of,
        last_order_at=last_order,
        recency_days=recency,
        frequency=profile.orders.count,
        monetary=profile.orders.by_currency,
        tenure_days=_days(now - to_micros(profile.first_seen)),
        first_seen=profile.first_seen,
        channels_used=[c.channel for c in profile.channels],
        preferred_channel=profile.channels[0].channel if profile.channels else "",
        products=top_products(signals.products),
        nps_trend=trend,
        open_cases=len(profile.open_cases),
        churn_risk=churn_risk(profile, signals, now, recency, trend),
    )


class ValuedProfile(Profile):
    """The profile with the customer's value and churn risk as of the read."""

    value: CustomerValue | None = Field(
        default=None, description="value@1 and churn_risk@1 (docs/metrics.md) as of the read"
    )
