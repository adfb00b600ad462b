"""Typed payloads of the v1 event families, keyed by event type."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from schemas.envelope import NAME_MAX, Channel, Event, IdStr, Name, SafeStr

Seconds = Annotated[float, Field(ge=0, le=7 * 24 * 3600)]
Text = Annotated[SafeStr, StringConstraints(max_length=20_000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# ISO 4217's code for "no currency involved": a return that paid nothing back and names no
# currency (a Shopify refund without a transaction). Counted as a return, shown in no currency.
NO_CURRENCY = "XXX"
# The JSON Schema is spelled out: pydantic versions differ in what they emit for Decimal.
MONEY_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1e12},
        {"type": "string", "pattern": r"^\d{1,13}(\.\d{1,4})?$"},
    ],
    "description": "an amount ≥ 0 with at most 4 decimals, as a number or a decimal string",
}
Money = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1e12"), max_digits=18, decimal_places=4),
    WithJsonSchema(MONEY_SCHEMA),
]
Attributes = dict[
    Annotated[str, StringConstraints(max_length=100)], str | int | float | bool | None
]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attributes: Attributes = Field(default_factory=dict, max_length=50)


# --- calls -----------------------------------------------------------------------------------
class CallOffered(Payload):
    queue: Name
    direction: Literal["inbound", "outbound"] = "inbound"


class CallAnswered(Payload):
    queue: Name | None = None
    agent: Name
    queue_wait_s: Seconds = 0


class CallHeld(Payload):
    agent: Name | None = None
    hold_s: Seconds


class CallTransferred(Payload):
    from_agent: Name | None = None
    to_agent: Name | None = None
    to_queue: Name | None = None


class CallEnded(Payload):
    agent: Name | None = None
    queue: Name | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    queue_wait_s: Seconds = 0
    talk_s: Seconds = 0
    hold_s: Seconds = 0
    wrap_s: Seconds = 0
    abandoned: bool = False
    resolved: bool | None = None
    topic: Name | None = None
    transcript: Text | None = None


# --- messages on chat, SMS and social ----------------------------------------------------------
class Message(Payload):
    sender: Literal["customer", "agent", "bot"]
    text: Text = ""
    agent: Name | None = None
    queue: Name | None = None
    message_id: Name | None = None


class MessageReceived(Message):
    sender: Literal["customer", "agent", "bot"] = "customer"


class MessageSent(Message):
    sender: Literal["customer", "agent", "bot"] = "agent"


# --- email -----------------------------------------------------------------------------------
class Email(Payload):
    message_id: Name
    campaign: Name | None = None
    subject: Annotated[SafeStr, StringConstraints(max_length=1000)] | None = None


class EmailClicked(Email):
    url: Annotated[SafeStr, StringConstraints(max_length=4000)]


class EmailBounced(Email):
    reason: Name | None = None
    hard: bool = True


class EmailReplied(Email):
    text: Text = ""


# --- web and app -----------------------------------------------------------------------------
class PageViewed(Payload):
    url: Annotated[SafeStr, StringConstraints(min_length=1, max_length=4000)]
    title: Annotated[SafeStr, StringConstraints(max_length=1000)] | None = None
    referrer: Annotated[SafeStr, StringConstraints(max_length=4000)] | None = None


class ActionPerformed(Payload):
    name: Name


# --- orders and stores -----------------------------------------------------------------------
class Order(Payload):
    order_id: Name
    amount: Money
    currency: Currency
    items: int = Field(default=1, ge=0, le=100_000)


class OrderReturned(Order):
    reason: Name | None = None


class StoreVisited(Payload):
    store_id: Name


class StorePurchased(Payload):
    store_id: Name
    order_id: Name | None = None
    amount: Money
    currency: Currency
    items: int = Field(default=1, ge=0, le=100_000)


# --- cases -----------------------------------------------------------------------------------
class Case(Payload):
    case_id: Name
    topic: Name | None = None
    agent: Name | None = None
    queue: Name | None = None


class CaseOpened(Case):
    subject: Annotated[SafeStr, StringConstraints(max_length=1000)] | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"


class CaseResolved(Case):
    resolution: Annotated[SafeStr, StringConstraints(max_length=1000)] | None = None


# --- alert lifecycle (a manager's actions on an at-risk alert) --------------------------------
Note = Annotated[SafeStr, StringConstraints(min_length=1, max_length=2000)]


class AlertAction(Payload):
    alert_id: Name
    actor: Name | None = Field(None, description="the key or person who acted")
    note: Note | None = None


class AlertAssigned(AlertAction):
    assignee: Name


class AlertResolved(AlertAction):
    note: Note


# --- erasure (a customer's personal data erased at an admin's request, issue 11) -------------
MAX_ERASURE_MEMBERS = 100  # a group as previewed, at most (more than any group identity keeps)


class CustomerErased(Payload):
    """Recorded by the platform (`POST /v1/customers/{id}/erase`); the customer it names is the
    opaque id the erasure is of (`filed_subject`). No personal data: the reason is the record of
    why (a ticket reference, never the person's data) and stays readable after the erasure."""

    erasure_reason: Note
    actor: Name = Field(description="the admin key or person who asked for the erasure")
    members: list[Annotated[IdStr, StringConstraints(min_length=1, max_length=400)]] | None = Field(
        default=None,
        max_length=MAX_ERASURE_MEMBERS,
        description="the group as the admin confirmed it (the preview's members): the filing "
        "stage refuses the erasure when the customer's group is not exactly these customers "
        "when it is carried out",
    )


# --- surveys ---------------------------------------------------------------------------------
SurveyKind = Literal["nps", "csat", "ces"]
# METRICS.md v1: NPS 0-10, CSAT 1-5, CES 2.0 1-7.
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class SurveySent(Payload):
    survey_id: Name
    kind: SurveyKind


class SurveyAnswered(Payload):
    survey_id: Name | None = None
    kind: SurveyKind
    score: int
    scale: Annotated[str, StringConstraints(pattern=r"^\d+-\d+$")] | None = None
    comment: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_scale(cls, data: Any) -> Any:
        # The scale is stored with every answer so that a later definition can tell them apart.
        kind = data.get("kind") if isinstance(data, dict) else None
        if isinstance(kind, str) and kind in SCALES and data.get("scale") is None:
            low, high = SCALES[data["kind"]]
            return {**data, "scale": f"{low}-{high}"}
        return data

    @field_validator("scale")
    @classmethod
    def _known_scale(cls, scale: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if isinstance(kind, str) and kind in SCALES and scale != "{}-{}".format(*SCALES[kind]):
            raise ValueError("scale for {} must be {}-{}".format(kind, *SCALES[kind]))
        return scale

    @field_validator("score")
    @classmethod
    def _score_in_scale(cls, score: int, info: ValidationInfo) -> int:
        kind = info.data.get("kind")
        if (
            isinstance(kind, str)
            and kind in SCALES
            and not SCALES[kind][0] <= score <= SCALES[kind][1]
        ):
            raise ValueError(
                "score {} outside the {} scale {}-{}".format(score, kind, *SCALES[kind])
            )
        return score


class CustomPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


_MESSAGING = frozenset({Channel.chat, Channel.sms, Channel.social})
_ANY: frozenset[Channel] = frozenset(Channel)

# type -> (payload model, channels it may arrive on)
FAMILIES: dict[str, tuple[type[BaseModel], frozenset[Channel]]] = {
    "call.offered": (CallOffered, frozenset({Channel.phone})),
    "call.answered": (CallAnswered, frozenset({Channel.phone})),
    "call.held": (CallHeld, frozenset({Channel.phone})),
    "call.transferred": (CallTransferred, frozenset({Channel.phone})),
    "call.ended": (CallEnded, frozenset({Channel.phone})),
    "message.received": (MessageReceived, _MESSAGING),
    "message.sent": (MessageSent, _MESSAGING),
    "email.sent": (Email, frozenset({Channel.email})),
    "email.delivered": (Email, frozenset({Channel.email})),
    "email.opened": (Email, frozenset({Channel.email})),
    "email.clicked": (EmailClicked, frozenset({Channel.email})),
    "email.bounced": (EmailBounced, frozenset({Channel.email})),
    "email.replied": (EmailReplied, frozenset({Channel.email})),
    "page.viewed": (PageViewed, frozenset({Channel.web, Channel.mobile_app})),
    "action.performed": (ActionPerformed, frozenset({Channel.web, Channel.mobile_app})),
    "order.placed": (Order, _ANY),
    "order.returned": (OrderReturned, _ANY),
    "store.visited": (StoreVisited, frozenset({Channel.store})),
    "store.purchased": (StorePurchased, frozenset({Channel.store})),
    "case.opened": (CaseOpened, _ANY),
    "case.resolved": (CaseResolved, _ANY),
    "case.reopened": (Case, _ANY),
    "survey.sent": (SurveySent, _ANY),
    "survey.answered": (SurveyAnswered, _ANY),
    "alert.assigned": (AlertAssigned, frozenset({Channel.other})),
    "alert.acknowledged": (AlertAction, frozenset({Channel.other})),
    "alert.resolved": (AlertResolved, frozenset({Channel.other})),
    "customer.erased": (CustomerErased, frozenset({Channel.other})),
}

# The event an erasure is recorded by; the filing stage erases the customer it names.
ERASURE_TYPE = "customer.erased"
# Types the platform records itself (a manager's actions on alerts, an admin's erasure of a
# customer), never a channel system.
PLATFORM_TYPES = frozenset({"alert.assigned", "alert.acknowledged", "alert.resolved", ERASURE_TYPE})

# The subject a platform event names when it is about the tenant, not a customer: a manager's
# action on a touchpoint's drift alert (the payload names the touchpoint). The envelope needs an
# identifier, and this reserved one is filed as it is, without identity (`kernel.processing.
# file_events`); no timeline, profile or customer lookup shows it (services/projections).
TENANT_SUBJECT = "cem:tenant"


def is_tenant_level(event: Event) -> bool:
    """A platform event about the tenant (a touchpoint), filed under `TENANT_SUBJECT`."""
    return event.type in PLATFORM_TYPES and event.customer.customer_id == TENANT_SUBJECT


# How a platform event names the one customer it is about (a manager's action on an at-risk
# alert): `FILED_PREFIX` + the id the customer's events are filed under, filed under that id as it
# is, without identity. Naming the customer by an identifier instead would be resolved again when
# the action is filed, and after a merge, split or unlink that identifier may be someone else's.
FILED_PREFIX = "cem:customer:"


def filed_subject(customer_id: str) -> str | None:
    """The customer id an event names to be filed under `customer_id` exactly; None when that
    does not fit in an envelope's `customer_id` (only a readable key of over 187 characters)."""
    named = FILED_PREFIX + customer_id
    return named if len(named) <= NAME_MAX else None


def filed_customer(event: Event) -> str | None:
    """The customer a platform event is filed under as it is (`filed_subject`), if it names one."""
    named = event.customer.customer_id
    if event.type not in PLATFORM_TYPES or not named or not named.startswith(FILED_PREFIX):
        return None
    return named.removeprefix(FILED_PREFIX) or None


CUSTOM_PREFIX = "custom."


def payload_model(event_type: str) -> tuple[type[BaseModel], frozenset[Channel]] | None:
    """The payload model and allowed channels of a type; None if the type is unknown."""
    if event_type.startswith(CUSTOM_PREFIX):
        return CustomPayload, _ANY
    return FAMILIES.get(event_type)


def parse_payload(event_type: str, payload: dict[str, Any]) -> BaseModel:
    """Validate a payload known to be of a registered type (raises pydantic.ValidationError)."""
    found = payload_model(event_type)
    if found is None:
        raise KeyError(event_type)
    return found[0].model_validate(payload)
