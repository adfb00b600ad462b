"""Shopify webhooks: `orders/create` → `order.placed` (online) or `store.purchased` (point of sale,
`source_name: pos`), `refunds/create` → `order.returned`.

Shopify signs the raw body: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 under the app's
client secret. An order or a refund is created once, so the topic and the resource's id are
the key: a retry, and the delivery of each of a shop's subscriptions to one topic (which come
under different `X-Shopify-Webhook-Id`s), are one event. The customer is the order's
`customer` (its Shopify id as the `shopify` external id, email, phone) or the order's own email
or phone. The person's name goes where identity and the console read one (`payload.attributes`
`first_name` and `last_name`, or `name`): the customer's, else the billing address's (a guest
checkout). A refund carries no customer, only its order: it is filed under the `shopify_order`
external id of that order (see docs/channels.md).

A refund that moved no money (no `refund` transaction: items sent back, nothing paid back, as
in Shopify's own sample) is a return of amount 0, in the shop currency its lines or adjustments
state, else `XXX` (ISO 4217: no currency involved); money paid back in no stated currency is a
dead letter.

A test order (`"test": true`: the sample order of the admin's "Send test notification", or one
paid through a test gateway) and a refund whose every transaction is a test are no customer's
activity: they map to no event and are acknowledged (the router counts them), so no test money
is counted as revenue or returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from schemas.envelope import Slug
from schemas.families import NO_CURRENCY
from schemas.violations import Violation
from services.ingest.channels.base import (
    Ack,
    ChannelSettings,
    WebhookRequest,
    event_id,
    hmac_b64,
    json_body,
    parse_iso,
    raise_if,
    required,
    same_digest,
    violation,
)
from services.ingest.channels.registry import register

TOPICS = ("orders/create", "refunds/create")


def _customer(order: Mapping[str, Any]) -> dict[str, Any]:
    found_person = order.get("customer")
    person: Mapping[str, Any] = found_person if isinstance(found_person, Mapping) else {}
    found: dict[str, Any] = {}
    if person.get("id") is not None:
        found["external_ids"] = {"shopify": str(person["id"])}
    email = person.get("email") or order.get("email")
    phone = person.get("phone") or order.get("phone")
    if email:
        found["email"] = email
    if phone:
        found["phone"] = phone
    return found


def _text(value: Any) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


def _person_name(order: Mapping[str, Any]) -> dict[str, str]:
    """The buyer's name as the v1 API's attributes carry it: the customer record's given name and
    surname (the person the order is filed under), else the billing address's; a given name
    and a surname together, else the one field. Empty when the order names nobody."""
    lone = ""  # the customer record's single field: the billing's whole name only if it is hers
    for key in ("customer", "billing_address"):
        found = order.get(key)
        person: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        first, last = _text(person.get("first_name")), _text(person.get("last_name"))
        # A billing name that is not the customer's given name is another person's (a partner's
        # card): the customer's "Ana" stays, not "John Smith"; "Ana López" completes it.
        if first and last and (not lone or first.casefold() == lone.casefold()):
            return {"first_name": first, "last_name": last}
        lone = lone or _text(person.get("name")) or first or last
    return {"name": lone} if lone else {}


def _items(order: Mapping[str, Any]) -> int:
    lines = order.get("line_items") or []
    return sum(int(line.get("quantity") or 0) for line in lines if isinstance(line, Mapping))


def _is_test(topic: str, body: Mapping[str, Any]) -> bool:
    """An order Shopify marks as a test, or a refund that moved only test transactions."""
    if topic == "orders/create":
        return body.get("test") is True
    found = body.get("transactions")
    transactions = found if isinstance(found, list) else []
    return bool(transactions) and all(
        isinstance(t, Mapping) and t.get("test") is True for t in transactions
    )


def _refunded(refund: Mapping[str, Any], problems: list[Violation]) -> tuple[Decimal, str | None]:
    """The amount refunded by the refund's `refund` transactions that went through or are on
    their way (`success`, `pending`: no second webhook comes when a pending one succeeds; one
    without a status is taken as done), and their currency. A `failure` or `error` one paid
    nothing back."""
    total, currency = Decimal(0), None
    for index, txn in enumerate(_list(refund.get("transactions"))):
        if not isinstance(txn, Mapping) or txn.get("kind") != "refund":
            continue
        currency = currency or txn.get("currency")
        if txn.get("status", "success") not in ("success", "pending"):
            continue
        try:
            total += Decimal(str(txn.get("amount")))
        except InvalidOperation:
            problems.append(
                violation(f"transactions.{index}.amount", "not an amount", "bad_number")
            )
    return total, currency


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _stated_currency(refund: Mapping[str, Any]) -> str | None:
    """The shop currency the refund's lines, adjustments or duties state (`*_set.shop_money`),
    for a refund that moved no money and so has no transaction to name one."""
    lines = [line for line in _list(refund.get("refund_line_items")) if isinstance(line, Mapping)]
    adjusted = [a for a in _list(refund.get("order_adjustments")) if isinstance(a, Mapping)]
    sets = [line.get(key) for line in lines for key in ("subtotal_set", "total_tax_set")]
    sets += [a.get("amount_set") for a in adjusted] + [refund.get("total_duties_set")]
    for money in sets:
        shop = money.get("shop_money") if isinstance(money, Mapping) else None
        code = shop.get("currency_code") if isinstance(shop, Mapping) else None
        if isinstance(code, str) and code:
            return code
    return None


def _key(request: WebhookRequest, topic: str, body: Mapping[str, Any]) -> str:
    """What one event is known by: the order or refund it creates (`orders/create:<id>`), since
    each is created once. Not the delivery's `X-Shopify-Webhook-Id`: a shop with two
    subscriptions to a topic gets one delivery of each, under two ids (Shopify's guide to
    duplicates), and both were stored. Without a resource id, Shopify's event id (the same on
    every subscription's delivery), else the delivery's id."""
    resource = body.get("id")
    if isinstance(resource, int | str) and not isinstance(resource, bool) and str(resource):
        return f"{topic}:{resource}"
    headers = request.headers
    found = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
    if not found:
        raise_if([violation("id", "id is required to map this delivery", "missing")])
    return f"{topic}:event:{found}"


class ShopifySettings(ChannelSettings):
    """A Shopify channel's settings: the touchpoint of point-of-sale orders, and the store id of
    those without a location."""

    pos_touchpoint: Slug | None = None
    store_id: str | None = Field(default=None, min_length=1, max_length=200)


class Shopify:
    name: ClassVar[str] = "shopify"
    secret_help: ClassVar[str] = "the Shopify app's client secret (webhook signing secret)"
    signature_header: ClassVar[str] = "X-Shopify-Hmac-Sha256"
    timestamp_header: ClassVar[str | None] = None
    settings_model: ClassVar[type[BaseModel]] = ShopifySettings

    def verify(self, request: WebhookRequest, secret: str) -> bool:
        given = request.headers.get("x-shopify-hmac-sha256")
        return same_digest(hmac_b64(secret, request.body), given)

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        topic = request.headers.get("x-shopify-topic", "")
        if topic not in TOPICS:
            message = f"topic {topic!r} is not mapped; subscribe to {', '.join(TOPICS)}"
            raise_if([violation("headers.x-shopify-topic", message, "unmapped_topic")])
        body = json_body(request)
        if not isinstance(body, Mapping):
            raise_if([violation("$", "the body is not a JSON object", "not_an_object")])
        if _is_test(topic, body):
            return []
        key = _key(request, topic, body)
        if topic == "orders/create":
            return [self._order(body, key, settings)]
        return [self._refund(body, key, settings)]

    def _order(
        self, order: Mapping[str, Any], key: str, settings: Mapping[str, Any]
    ) -> dict[str, Any]:
        problems: list[Violation] = []
        for path in ("id", "created_at", "total_price", "currency"):
            required(order, path, problems)
        customer = _customer(order)
        if not customer:
            problems.append(violation("customer", "the order names no customer", "missing"))
        occurred_at = parse_iso(order.get("created_at"), "created_at", problems)
        raise_if(problems)
        pos = order.get("source_name") == "pos"
        payload: dict[str, Any] = {
            "order_id": str(order.get("name") or order["id"]), "amount": str(order["total_price"]),
            "currency": order["currency"], "items": _items(order),
            "attributes": {"provider": "shopify", "shopify_order_id": str(order["id"]),
                           **_person_name(order)},
        }  # fmt: skip
        if pos:
            payload["store_id"] = str(order.get("location_id") or settings.get("store_id", "pos"))
        return {
            "event_id": event_id(self.name, key), "source_id": self.name,
            "channel": "store" if pos else "web",
            "type": "store.purchased" if pos else "order.placed",
            "touchpoint": settings.get("pos_touchpoint" if pos else "touchpoint",
                                       "store_checkout" if pos else "checkout"),
            "customer": customer, "occurred_at": occurred_at,
            "correlation_id": str(order["id"]), "payload": payload,
        }  # fmt: skip

    def _refund(
        self, refund: Mapping[str, Any], key: str, settings: Mapping[str, Any]
    ) -> dict[str, Any]:
        problems: list[Violation] = []
        for path in ("id", "order_id", "created_at"):
            required(refund, path, problems)
        occurred_at = parse_iso(refund.get("created_at"), "created_at", problems)
        amount, currency = _refunded(refund, problems)
        currency = currency or _stated_currency(refund)
        if currency is None and amount:
            message = "money was paid back in no stated currency"
            problems.append(violation("transactions", message, "missing"))
        raise_if(problems)
        order_id = str(refund["order_id"])
        return {
            "event_id": event_id(self.name, key), "source_id": self.name, "channel": "web",
            "type": "order.returned", "touchpoint": settings.get("touchpoint", "checkout"),
            "customer": {"external_ids": {"shopify_order": order_id}},
            "occurred_at": occurred_at, "correlation_id": order_id,
            "payload": {"order_id": order_id, "amount": str(amount),
                        "currency": currency or NO_CURRENCY,
                        "items": sum(int(r.get("quantity") or 0) for r in refund.get("refund_line_items") or []),
                        "reason": refund.get("note") or None,
                        "attributes": {"provider": "shopify", "refund_id": str(refund["id"])}},
        }  # fmt: skip

    def ack(self) -> Ack:
        return Ack(200, b"ok")


register(Shopify())
