"""Which paths of an event hold personal data: declared once, for crypto-shredding
(`kernel/shredding.py`, docs/erasure.md).

Personal here means data about the customer the event is about: their identifiers, text they
wrote or that was written about them, and what a link or a page can carry about them. The
employees an event names (agents, managers acting on alerts) and the tenant's own names (queues,
campaigns, topics, stores) are not the customer's, and the metrics read them: they stay in clear,
each with its reason in `NOT_PERSONAL`. `tests/unit/test_personal_paths.py` holds this list to the
published JSON Schemas: every declared path exists, and every text field of every schema is
either declared here or listed as not personal.
"""

from __future__ import annotations

import re

from schemas.families import CUSTOM_PREFIX

# Every identifier of the envelope's `customer` member. An explicit `customer_id` is the sending
# system's id of the person (a CRM or shop account), so it is personal too.
CUSTOMER_PATHS = (
    "customer.customer_id",
    "customer.email",
    "customer.phone",
    "customer.anonymous_id",
    "customer.external_ids",
)

_EMAIL = ("subject",)  # a subject line is often personalised ("Ana, your order has shipped")

# Event type -> the payload fields holding personal data.
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "call.ended": ("transcript",),  # both speakers' words
    "message.received": ("text",),
    "message.sent": ("text",),  # an agent's reply quotes and names the customer
    "email.sent": _EMAIL,
    "email.delivered": _EMAIL,
    "email.opened": _EMAIL,
    "email.clicked": (*_EMAIL, "url"),  # tracked links carry tokens, sometimes the address
    "email.bounced": (*_EMAIL, "reason"),  # a bounce reason quotes the address (550 ana@x.io…)
    "email.replied": (*_EMAIL, "text"),
    "page.viewed": ("url", "title", "referrer"),  # query strings, "Ana's account"
    "order.returned": ("reason",),  # what the customer said was wrong
    "case.opened": ("subject",),
    "case.resolved": ("resolution",),
    "survey.answered": ("comment",),
    "alert.assigned": ("note",),  # a manager's note about the customer
    "alert.acknowledged": ("note",),
    "alert.resolved": ("note",),
}

# Text fields of the envelope and the typed payloads that are not the customer's personal data,
# and why. (Strings held to an enum or a pattern, a currency or a scale, carry no free text.)
NOT_PERSONAL: dict[str, str] = {
    "agent": "the employee who handled the contact, not the customer; attribution reads it",
    "from_agent": "the employee who transferred the call; attribution reads it",
    "to_agent": "the employee the call went to; attribution reads it",
    "actor": "the API key or manager who acted on an alert",
    "assignee": "the manager an alert was assigned to",
    "queue": "a queue of the tenant's contact centre; attribution reads it",
    "to_queue": "the queue a call went to; attribution reads it",
    "topic": "a category from the tenant's list; first-contact resolution pairs contacts by it",
    "campaign": "the tenant's campaign",
    "name": "an action's name in the tenant's app (action.performed)",
    "message_id": "the provider's id of a message",
    "order_id": "the shop's id of an order",
    "store_id": "the tenant's store",
    "case_id": "the tenant's id of a case",
    "survey_id": "the tenant's id of a survey",
    "alert_id": "the platform's id of an alert",
    "correlation_id": "the channel system's id of a conversation (envelope), not of a person",
    "erasure_reason": "an admin's reference for an erasure (a ticket), kept readable as the "
    "record of it; the route asks for no personal data there",
}


# `payload.attributes` is a flat map a producer fills as it likes (Segment's context and
# properties land there as `context.ip`, `properties.first_name`), in any language and spelling.
# So an attribute is personal unless every word of its key is one that names no person
# (`product`, `properties.plan`, `context.locale`): an unforeseen key (`domicilio`, `dirección`,
# `whatsapp`, `fecha_nacimiento`) is sealed, not left readable (found by a review, when a list of
# personal words decided: each key it missed stayed in clear after an erasure).
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ANONYMOUS_WORDS = _words(
    # where a key comes from (Segment's context and properties; not `traits`, the person's)
    "properties context "
    # what was bought, as a single value (the value projection reads `product`); not `products`,
    # `order`, `cart`, `checkout`, `shipping` or `payment`, whose values are often whole objects
    # kept as JSON text (a billing address, the buyer's email), nor `value`, `content` or `term`
    # (what was typed in a form, a campaign's search terms: an email, often; found by a review)
    "product sku category brand variant plan tier quantity qty units "
    "price amount total subtotal revenue currency discount coupon tax "
    # the shop's and the campaign's own words
    "store shop campaign source medium affiliation position step "
    # the client, not the person (no id, address or fingerprint of it)
    "locale language timezone library version os app build platform screen width height "
    "density network wifi cellular bluetooth carrier "
    # Spanish
    "producto categoria marca plan cantidad precio importe moneda descuento "
    "cupon impuesto tienda campana idioma"
)
# Segment's device id is an identifier, its user agent a fingerprint, whatever their words.
ATTRIBUTE_KEYS = frozenset({"context.userAgent", "context.device.id"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def attribute_words(key: str) -> list[str]:
    """`properties.firstName` -> properties, first, name (an accented letter splits a word:
    `dirección` -> direcci, n, which no list holds)."""
    return [w for w in _NOT_WORD.split(_CAMEL.sub(" ", key).lower()) if w]


def is_personal_attribute(key: str) -> bool:
    words = attribute_words(key)
    return key in ATTRIBUTE_KEYS or not words or not ANONYMOUS_WORDS.issuperset(words)


def payload_fields(event_type: str) -> tuple[str, ...]:
    """The payload fields of a typed event that are personal (for a custom type, see
    `whole_payload`)."""
    return PAYLOAD_FIELDS.get(event_type, ())


def whole_payload(event_type: str) -> bool:
    """True when the whole payload of the type is personal: a custom type (`custom.*`) has no
    schema, its payload is whatever the producer sent (Segment's identify traits, alias ids, the
    context with the IP)."""
    return event_type.startswith(CUSTOM_PREFIX)
