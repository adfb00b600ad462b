"""The customer profile: what a CRM knows about a customer, as per-event facts folded at read time.

Every event contributes facts (`to_profile_facts`), never an updated profile row: the warehouse
stores the facts and the read combines them with commutative operations only — count, sum, min, max
and "latest by (derived_at, event_id)". So any arrival order, a reprocessed batch (once deduplicated
by event id) and a replay all give the same profile (B08, F03, F13).

Money is exact: amounts are stored as integer ten-thousandths (`to_units`), never floats, and
reported back as decimal strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kernel.customer_key import customer_key
from kernel.processing import to_micros
from schemas import families as f
from schemas.envelope import Event
from schemas.families import PLATFORM_TYPES, SCALES, filed_customer, parse_payload
from services.identity.person_names import may_be_one, normalise_name, written_name
from services.identity.rules import TenantRules
from services.projections.identifiers import event_identifiers
from services.projections.repeat_contact import RepeatContact
from services.projections.timeline import amount_text, from_micros

UNITS_PER_AMOUNT = 10_000  # payload amounts have at most 4 decimal places

# Fact fields. The field decides how the read combines a fact; the key says what it is about.
TOUCH = "touch"  # every contact (not a platform event); key = channel, str = touchpoint
ORDER = "order"  # key = currency, num = amount in units
RETURN = "return"  # key = currency, num = amount in units
SURVEY = "survey"  # key = survey kind, num = score
CASE = "case"  # key = case id, str = "open" | "resolved"
CASE_SUBJECT = "case_subject"  # key = case id, str = subject or topic
IDENTIFIER = "identifier"  # key = "kind:value"
NAME = "name"  # key = the name normalised (person_names), str = as written
# A platform event (alert action, erasure) on the customer's timeline: no contact, but the
# customer exists (an erased customer keeps only its erasure's rows). key = type.
PLATFORM = "platform"


def to_units(amount: Decimal) -> int:
    """An amount as an exact integer of ten-thousandths; refuses to round."""
    scaled = amount.scaleb(4)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {amount} has more than 4 decimal places")
    return int(scaled)


def format_units(units: int) -> str:
    return amount_text(Decimal(units).scaleb(-4))


# --- facts -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One thing an event says about its customer. (event, field, key) is unique per event."""

    field: str
    key: str
    str_value: str = ""
    num_value: int = 0


def _order_facts(p: f.Order | f.StorePurchased) -> list[Fact]:
    return [Fact(ORDER, p.currency, num_value=to_units(p.amount))]


def _return_facts(p: f.OrderReturned) -> list[Fact]:
    return [Fact(RETURN, p.currency, num_value=to_units(p.amount))]


def _survey_facts(p: f.SurveyAnswered) -> list[Fact]:
    return [Fact(SURVEY, p.kind, num_value=p.score)]


def _case_opened_facts(p: f.CaseOpened) -> list[Fact]:
    subject = p.subject or p.topic
    described = [Fact(CASE_SUBJECT, p.case_id, subject)] if subject else []
    return [Fact(CASE, p.case_id, "open"), *described]


def _case_state(state: str) -> Callable[[f.Case], list[Fact]]:
    return lambda p: [Fact(CASE, p.case_id, state)]


_FAMILY_FACTS: dict[str, Callable[[Any], list[Fact]]] = {
    "order.placed": _order_facts,
    "store.purchased": _order_facts,
    "order.returned": _return_facts,
    "survey.answered": _survey_facts,
    "case.opened": _case_opened_facts,
    "case.reopened": _case_state("open"),
    "case.resolved": _case_state("resolved"),
}


def facts_of(event: Event, rules: TenantRules | None = None) -> list[Fact]:
    # The platform's own events (a manager working an alert, an erasure) are on the customer's
    # timeline but are no contact of theirs: they do not move the last contact, the channels
    # used or the event count (a browser review: resolving an alert made the header say the
    # customer had been in touch a minute ago, on channel "other").
    if event.type in PLATFORM_TYPES:
        activity = Fact(PLATFORM, event.type, event.touchpoint)
    else:
        activity = Fact(TOUCH, event.channel.value, event.touchpoint, 1)
    # The identifiers identity reads with the tenant's rules (identifiers.py): no placeholder.
    known = [Fact(IDENTIFIER, f"{k}:{v}") for k, v in event_identifiers(event, rules)]
    family = _FAMILY_FACTS.get(event.type)
    extra = family(parse_payload(event.type, event.payload)) if family else []
    return [activity, *known, *extra, *_name_facts(event)]


def _name_facts(event: Event) -> list[Fact]:
    """The person's name the touchpoint gives, keyed by its normalised spelling so that one
    name written several ways is one group (a platform event's payload names nobody)."""
    if filed_customer(event) is not None:
        return []
    written = written_name(event.payload)
    return [Fact(NAME, normalise_name(written), written)] if written else []


def to_profile_facts(
    event: Event, customer_id: str | None = None, rules: TenantRules | None = None
) -> list[dict[str, Any]]:
    """The profile_facts rows of one event, filed under `customer_id` (default: its customer key),
    read with the tenant's identity `rules`."""
    base = {
        "tenant_id": event.tenant_id,
        "customer_id": customer_id or customer_key(event.customer),
        "event_id": str(event.event_id),
        "derived_at": to_micros(event.derived_at),
    }
    return [{**base, **vars(fact)} for fact in facts_of(event, rules)]


# --- the folded profile ----------------------------------------------------------------------
@dataclass(frozen=True)
class FactGroup:
    """The facts of one (field, key) combined by the read query (see sql.PROFILE_QUERY)."""

    field: str
    key: str
    n: int
    total: int
    first_at: int
    last_at: int
    latest_str: str
    latest_num: int
    latest_event: str

    @property
    def latest(self) -> tuple[int, str]:
        """The timeline position of the group's latest fact, to compare groups with each other."""
        return (self.last_at, self.latest_event)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FactGroup:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class ChannelUsage(BaseModel):
    channel: str
    events: int
    first_at: datetime
    last_at: datetime


class Spend(BaseModel):
    """Orders and returns in one currency; amounts are exact decimal strings."""

    currency: str
    orders: int
    amount: str
    returns: int
    returned_amount: str
    net_amount: str = Field(description="amount minus returned_amount")


class Orders(BaseModel):
    count: int
    returns: int
    by_currency: list[Spend]
    last_at: datetime | None = Field(default=None, description="the latest order; null: none")


class Score(BaseModel):
    """The customer's latest answer of one survey kind."""

    score: int
    scale: str
    at: datetime
    responses: int = Field(description="how many answers of this kind the customer gave")


class Satisfaction(BaseModel):
    csat: Score | None = None
    nps: Score | None = None
    ces: Score | None = None


class OpenCase(BaseModel):
    case_id: str
    opened_at: datetime
    updated_at: datetime
    subject: str | None


class Profile(BaseModel):
    """What is known about a customer, from every event filed under them or a customer merged
    into them."""

    customer_id: str
    members: list[str] = Field(
        description="customer ids whose events this profile gathers: the customer itself first, "
        "then every customer merged into it"
    )
    first_seen: datetime
    last_seen: datetime = Field(
        description="the customer's last touchpoint; the platform's own events on the timeline "
        "(a manager working an alert, an erasure) are no contact of theirs and count in none "
        "of last_seen, events, last_channel, last_touchpoint and channels"
    )
    events: int = Field(description="the customer's touchpoints")
    last_channel: str
    last_touchpoint: str
    channels: list[ChannelUsage] = Field(description="most used first")
    orders: Orders
    satisfaction: Satisfaction
    open_cases: list[OpenCase] = Field(description="most recently updated first")
    identifiers: list[str] = Field(description="every identifier seen, as kind:value")
    name: str | None = Field(
        default=None,
        description="the person's name the customer's touchpoints give most often "
        "(payload.attributes; a shorter and a fuller form of one name count together and show "
        "in the fuller), as last written; null when none gave one",
        examples=["María José García López"],
    )
    repeat_contact: RepeatContact | None = Field(
        default=None,
        description="the latest contact that came within 7 days after an earlier one "
        "(repeat_contact@1), with that earlier contact; null when none did",
    )


def _channels(touches: list[FactGroup]) -> list[ChannelUsage]:
    usage = [
        ChannelUsage(
            channel=g.key,
            events=g.n,
            first_at=from_micros(g.first_at),
            last_at=from_micros(g.last_at),
        )
        for g in touches
    ]
    return sorted(usage, key=lambda u: (-u.events, u.channel))


def _spend(currency: str, order: FactGroup | None, returned: FactGroup | None) -> Spend:
    amount, refunded = order.total if order else 0, returned.total if returned else 0
    return Spend(
        currency=currency,
        orders=order.n if order else 0,
        amount=format_units(amount),
        returns=returned.n if returned else 0,
        returned_amount=format_units(refunded),
        net_amount=format_units(amount - refunded),
    )


def _orders(orders: list[FactGroup], returns: list[FactGroup]) -> Orders:
    by_order, by_return = {g.key: g for g in orders}, {g.key: g for g in returns}
    # A return that paid nothing back in no currency (NO_CURRENCY) counts, but is no spend.
    currencies = sorted((by_order.keys() | by_return.keys()) - {f.NO_CURRENCY})
    return Orders(
        count=sum(g.n for g in orders),
        returns=sum(g.n for g in returns),
        by_currency=[_spend(c, by_order.get(c), by_return.get(c)) for c in currencies],
        last_at=from_micros(max(g.last_at for g in orders)) if orders else None,
    )


def _satisfaction(surveys: list[FactGroup]) -> Satisfaction:
    scores = {
        g.key: Score(
            score=g.latest_num,
            scale="{}-{}".format(*SCALES[g.key]),
            at=from_micros(g.last_at),
            responses=g.n,
        )
        for g in surveys
        if g.key in SCALES
    }
    return Satisfaction(**scores)


def _open_cases(cases: list[FactGroup], subjects: list[FactGroup]) -> list[OpenCase]:
    subject_of = {g.key: g.latest_str for g in subjects}
    still_open = [g for g in cases if g.latest_str == "open"]
    found = [
        OpenCase(
            case_id=g.key,
            opened_at=from_micros(g.first_at),
            updated_at=from_micros(g.last_at),
            subject=subject_of.get(g.key),
        )
        for g in sorted(still_open, key=lambda g: g.latest, reverse=True)
    ]
    return found


def fold_profile(
    customer_id: str, groups: Iterable[FactGroup], members: Sequence[str] = ()
) -> Profile | None:
    """The profile from the combined facts; None when nothing is known about the customer."""
    by_field: dict[str, list[FactGroup]] = defaultdict(list)
    for group in groups:
        by_field[group.field].append(group)
    touches = by_field[TOUCH]
    # Only platform events left (an erased customer, or contacts past retention): the customer
    # exists, with no contact (events 0, no channel).
    seen = touches or by_field[PLATFORM]
    if not seen:
        return None
    latest = max(touches, key=lambda g: g.latest) if touches else None
    return Profile(
        customer_id=customer_id,
        members=list(members or [customer_id]),
        first_seen=from_micros(min(g.first_at for g in seen)),
        last_seen=from_micros(max(g.last_at for g in seen)),
        events=sum(g.n for g in touches),
        last_channel=latest.key if latest else "",
        last_touchpoint=latest.latest_str if latest else "",
        channels=_channels(touches),
        orders=_orders(by_field[ORDER], by_field[RETURN]),
        satisfaction=_satisfaction(by_field[SURVEY]),
        open_cases=_open_cases(by_field[CASE], by_field[CASE_SUBJECT]),
        identifiers=sorted(g.key for g in by_field[IDENTIFIER]),
        name=_name(by_field[NAME]),
    )


# Names weighed against each other (`_name`): the most given, enough for any real customer.
MAX_NAMES = 50


def _name(names: list[FactGroup]) -> str | None:
    """The name the customer's touchpoints give most often, as it was last written. A name
    counts the touchpoints giving it and those giving a shorter or longer form of it (`may_be_one`,
    as identity reads names: `Ana García` and `Ana García López`, `Ma. Dolores` and `Mª Dolores
    Rojas`, are one person's, so together they outweigh a daughter's `Lucía Ruiz` given three
    times); among equals, the fuller name, then the one given last.
    None when none gave one."""
    if not names:
        return None
    ranked = sorted(names, key=lambda g: (g.n, g.latest), reverse=True)[:MAX_NAMES]

    def weight(group: FactGroup) -> tuple[int, int, tuple[int, str]]:
        given = sum(other.n for other in ranked if may_be_one(group.key, other.key))
        return given, len(group.key.split()), group.latest

    return max(ranked, key=weight).latest_str
