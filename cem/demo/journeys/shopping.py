"""Shopping: web and app sessions, checkout, delivery, returns, store visits."""

from __future__ import annotations

from typing import Any

from cem.demo.draws import random_digits
from cem.demo.journeys.cases import case
from cem.demo.journeys.contact_centre import get_in_touch
from cem.demo.journeys.identifiers import (
    app_ids,
    order_ids,
    shipping_label_ids,
    store_ids,
    web_ids,
)
from cem.demo.journeys.sim import Sim, Thread
from cem.demo.journeys.surveys import survey
from cem.demo.people import Customer
from cem.demo.reference import (
    ACTIONS,
    CARRIERS,
    PAGES,
    PRICE_LOG,
    REFERRERS,
    RETURN_REASONS,
    SEGMENTS,
    SHOP_EN,
    SHOP_ES,
    STORES,
)
from cem.demo.timing import DAY, HOUR, MINUTE, SECOND

Order = dict[str, Any]  # order_id, amount, currency, items


def web(sim: Sim, c: Customer, t: int) -> None:
    session(sim, c, t, app=False)


def app(sim: Sim, c: Customer, t: int) -> None:
    session(sim, c, t, app=True)


def session(sim: Sim, c: Customer, t: int, app: bool, referrer: str | None = None) -> None:
    """Browsing the website or the app, sometimes ending in a purchase."""
    logged_in = c.customer_id is not None and sim.rng.random() < (0.85 if app else 0.4)
    if app:
        visit = sim.thread("mobile_app", "mobile_app", app_ids(c, logged_in))
    else:
        visit = sim.thread("web", "website", web_ids(sim.rng, c, logged_in))
        referrer = referrer or sim.rng.choice(REFERRERS)
    t = _browse(sim, c, t, visit, app, referrer)
    if sim.rng.random() < SEGMENTS[c.segment][3]:
        checkout(sim, c, t, visit)


def _browse(sim: Sim, c: Customer, t: int, visit: Thread, app: bool,
            referrer: str | None) -> int:  # fmt: skip
    """Page views with the odd action in between. Returns when the customer stops."""
    r, host = sim.rng, SHOP_ES if c.language == "es" else SHOP_EN
    for i in range(1 + min(14, int(r.expovariate(1 / 3)))):
        path, title_es, title_en = r.choice(PAGES)
        url = f"app://{path.strip('/') or 'home'}" if app else host + path
        page = {"url": url, "title": title_es if c.language == "es" else title_en}
        if i == 0 and referrer:
            page["referrer"] = referrer
        visit(t, "page.viewed", page)
        if r.random() < 0.3:
            t += sim.between(2 * SECOND, 20 * SECOND)
            visit(t, "action.performed", {"name": r.choice(ACTIONS)})
        t += sim.between(8 * SECOND, 90 * SECOND)
    return t


def basket(sim: Sim, c: Customer) -> tuple[float, int]:
    """The amount and number of items of a purchase, priced for the customer's segment."""
    r, median = sim.rng, PRICE_LOG[c.segment]
    items = 1 + min(7, int(r.expovariate(1.2)))
    return round(sum(r.lognormvariate(median, 0.6) for _ in range(items)), 2), items


def checkout(sim: Sim, c: Customer, t: int, visit: Thread) -> None:
    order_id = f"ORD-{random_digits(sim.rng, 8)}"
    buy = Thread(sim, visit.channel, "checkout", order_ids(c, visit.ids), order_id)
    buy(t, "action.performed", {"name": "checkout_started"})
    amount, items = basket(sim, c)
    t += sim.between(40 * SECOND, 6 * MINUTE)
    order = {"order_id": order_id, "amount": amount, "currency": c.currency, "items": items}
    # The shop sends the name on the order (its billing name): agents find the customer by it.
    buy(t, "order.placed", {**order, "attributes": {"name": c.name}})
    survey(sim, c, t, buy, 0.04 * (c.segment in ("vip", "loyal")), via="email")
    if sim.timing.long_horizon:
        delivery(sim, c, t, order)


def delivery(sim: Sim, c: Customer, ordered_at: int, order: Order) -> None:
    """The parcel arrives, now and then late or damaged; the customer may chase it or return it."""
    r, order_id = sim.rng, order["order_id"]
    parcel = Thread(sim, "other", "delivery", shipping_label_ids(c), f"dlv-{order_id}")
    late_days = 0 if r.random() > 0.2 else sim.between(1, 6)
    promised = ordered_at // DAY + (1 if c.segment == "vip" else sim.between(2, 3))
    arrival_day_ms = (promised + late_days) * DAY
    t = arrival_day_ms + sim.between(7 * HOUR, 18 * HOUR)
    if late_days >= 3 and r.random() < 0.5:  # customers chase late parcels
        asked = (promised + 1) * DAY + sim.between(8 * HOUR, 12 * HOUR)
        get_in_touch(sim, c, asked, "delivery_status", 1)
    if c.phone and r.random() < 0.5:
        delivery_sms(sim, c, arrival_day_ms + 6 * HOUR, order_id, parcel.corr)
    damaged = _delivered(sim, c, t, parcel, order_id, late_days)
    mood = 0.04 - 0.06 * late_days - 0.25 * damaged + 0.04 * (late_days == 0)
    survey(sim, c, t, parcel, mood, via="email")
    if r.random() < 0.06 + 0.12 * (damaged or late_days > 2):
        returns(sim, c, t + sim.between(DAY, 20 * DAY), order, None)


def _delivered(sim: Sim, c: Customer, t: int, parcel: Thread, order_id: str,
               late_days: int) -> bool:  # fmt: skip
    """The carrier's delivery scan; a damaged parcel gets a case. Returns whether it was."""
    damaged = sim.rng.random() < 0.04
    delivered = {"order_id": order_id, "carrier": sim.rng.choice(CARRIERS),
                 "late_days": late_days, "damaged": damaged}  # fmt: skip
    parcel(t, "custom.shipment.delivered", delivered)
    if damaged:
        opened = t + sim.between(HOUR, 6 * HOUR)
        channel = "email" if c.email else "phone"
        case(sim, c, opened, channel, "delivery", "delivery_status", sim.agent("orders"))
    return damaged


def delivery_sms(sim: Sim, c: Customer, t: int, order_id: str, corr: str | None) -> None:
    thread = Thread(sim, "sms", "delivery", {"phone": c.phone}, corr)
    thread.message(t, "bot", sim.say(c, "sms.notice").format(order_id))
    if sim.rng.random() < 0.12:
        t += sim.between(2 * MINUTE, 30 * MINUTE)
        thread.message(t, "customer", sim.say(c, "sms.ask"))
        t += sim.between(MINUTE, 20 * MINUTE)
        thread.message(t, "agent", sim.say(c, "sms.answer"), agent=sim.agent("orders").login)


def returns(sim: Sim, c: Customer, t: int, order: Order, store_id: str | None) -> None:
    """Some or all of an order's items come back, in the store it was bought in or online."""
    corr = f"ret-{order['order_id']}"
    if store_id:
        back = Thread(sim, "store", "returns", store_ids(c), corr)
    else:
        back = Thread(sim, "web", "returns", order_ids(c, web_ids(sim.rng, c, True)), corr)
    items = sim.between(1, order["items"])
    refund = round(order["amount"] * items / order["items"], 2)
    reason = sim.rng.choice(RETURN_REASONS)
    returned = {**order, "amount": refund, "items": items, "reason": reason}
    if store_id:
        returned["attributes"] = {"store_id": store_id}
    back(t, "order.returned", returned)
    survey(sim, c, t, back, -0.06 * (reason in ("damaged", "late_delivery")), via="email")


def store(sim: Sim, c: Customer, t: int) -> None:
    """A visit to a store, usually the customer's own; most visitors buy something."""
    r = sim.rng
    store_id = c.home_store if r.random() < 0.8 else r.choice(sim.pop.stores)
    visit = sim.thread("store", "store_visit", store_ids(c), "visit")
    visit(t, "store.visited", {"store_id": store_id})
    if r.random() >= 0.6:
        return
    t += sim.between(5 * MINUTE, 40 * MINUTE)
    amount, items = basket(sim, c)
    ticket = {"store_id": store_id, "order_id": f"TKT-{random_digits(r, 9)}", "amount": amount,
              "currency": STORES[store_id][0], "items": items}  # fmt: skip
    visit(t, "store.purchased", ticket)
    survey(sim, c, t, visit, 0.05 * (c.segment == "vip"), via="email")
    if sim.timing.long_horizon and r.random() < 0.05:
        order = {k: ticket[k] for k in ("order_id", "amount", "currency", "items")}
        returns(sim, c, t + sim.between(DAY, 14 * DAY), order, store_id)
