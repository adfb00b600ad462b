"""What each channel system knows of a person at a touchpoint, and the v1 event it sends.

The web and the app know a cookie or an install id, and the account when the person is logged in;
the switchboard knows the calling line and the agent types the rest; the email provider knows the
mailbox it wrote to; a till knows the loyalty card and what the clerk typed; a chat form has what
the person typed. Names travel where a channel carries one: in `payload.attributes` as `name`
(one field: chat forms, CRM notes) or `first_name` and `last_name` (checkout, loyalty card).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bench.identity import names
from bench.identity.people import Person
from bench.identity.phones import Phone, caller_id, whatsapp
from bench.identity.placeholders import Habit, placeholder_email
from bench.identity.spelling import Identifiers, cased

SHOP = "https://tienda.example.es"
# Rough shares of touchpoints by channel for a retailer with stores, a web shop and a call centre.
CHANNELS = {
    "web": 25,
    "mobile_app": 8,
    "order": 12,
    "chat": 8,
    "phone": 15,
    "email": 15,
    "store": 10,
    "survey": 4,
    "sms": 3,
}


@dataclass(frozen=True)
class World:
    """What people meet: call-centre agents, stores with their clerks and kiosks."""

    agents: list[Habit]
    clerks: dict[str, list[Habit]]  # store id -> its clerks' habits
    kiosks: dict[str, str]  # store id -> the kiosk's device id


@dataclass
class Made:
    channel: str
    event_type: str
    payload: dict[str, Any]
    ids: Identifiers


def cookie(person: Person, rng: random.Random, ids: Identifiers) -> None:
    """The browser's cookie: a new one when the person cleared them (or the browser did)."""
    browser = rng.randrange(person.browsers)
    lineage = person.cookies.setdefault(browser, [])
    if not lineage or rng.random() < 0.12:
        lineage.append(f"ck-{rng.getrandbits(64):016x}")
    ids.put(
        "anonymous_id",
        lineage[-1],
        f"cookie:{lineage[-1]}",
        *(["cleared_cookie"] if len(lineage) > 1 else []),
    )


def _named(person: Person, rng: random.Random, split: bool) -> dict[str, Any]:
    if split:
        return {"first_name": person.given, "last_name": " ".join(person.surnames)}
    return {"name": names.written_name(person.given, person.surnames, rng)}


def _mailbox_now(person: Person, day: float, rng: random.Random) -> tuple[str | None, list[str]]:
    """The mailbox a person gives today and its hazards: the main one, now and then the work
    one, or (after a change) out of habit the old one."""
    main = person.mailbox_at(day)
    if person.work_mailbox and rng.random() < 0.2:
        return person.work_mailbox, ["second_email"]
    if person.changed_mailbox and main == person.changed_mailbox[1]:
        return (person.mailboxes[0] if rng.random() < 0.2 else main), ["changed_email"]
    return main, []


def _line(person: Person, day: float, rng: random.Random) -> Phone | None:
    """The line a person calls from or gives: their mobile, or the household's landline."""
    mobile = person.mobile_at(day)
    if person.landline and (mobile is None or rng.random() < 0.35):
        return person.landline
    return mobile


def line_hazards(person: Person, line: Phone) -> list[str]:
    found = {
        "shared_landline": line is person.landline,
        "recycled_number": (person.old_mobile is not None and line is person.old_mobile[1])
        or (person.mobile_from > 0 and line is person.mobile),
        "foreign_number": line.country != "ES",
    }
    return [hazard for hazard, present in found.items() if present]


def web(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids = Identifiers()
    if person.tablet and rng.random() < 0.3:
        ids.put("anonymous_id", person.tablet, f"tablet:{person.tablet}", "shared_tablet")
    else:
        cookie(person, rng, ids)
    if person.account and rng.random() < 0.3:
        ids.put("customer_id", person.account, f"account:{person.account}")
    page = rng.choice(("/", "/ofertas", "/producto/123", "/ayuda", "/mi-cuenta"))
    return Made("web", "page.viewed", {"url": SHOP + page}, ids)


def mobile_app(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids = Identifiers()
    if person.app:
        ids.put("anonymous_id", person.app, f"app:{person.app}")
    if person.account and rng.random() < 0.8:
        ids.put("customer_id", person.account, f"account:{person.account}")
    return Made("mobile_app", "action.performed", {"name": "product_viewed"}, ids)


def order(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids, payload = Identifiers(), _order_payload(rng)
    cookie(person, rng, ids)
    mailbox, hazards = _mailbox_now(person, day, rng)
    if person.account and rng.random() < 0.6:  # logged in: the account and its mailbox
        ids.put("customer_id", person.account, f"account:{person.account}")
        if mailbox:
            ids.put("email", *cased(mailbox, rng), *hazards)
        return Made("web", "order.placed", payload, ids)
    if mailbox:  # a guest checkout: typed by the person
        ids.typed_email(mailbox, rng, False, *hazards)
    else:
        ids.placeholder("email", placeholder_email(rng))
    phone = person.mobile_at(day)
    if phone and rng.random() < 0.7:
        ids.written_phone(phone, rng, *line_hazards(person, phone))
    payload["attributes"] = _named(person, rng, split=True)
    return Made("web", "order.placed", payload, ids)


def _order_payload(rng: random.Random) -> dict[str, Any]:
    amount = f"{rng.uniform(5, 300):.2f}"
    return {"order_id": f"o-{rng.getrandbits(48):012x}", "amount": amount, "currency": "EUR"}


def chat(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids = Identifiers()
    mailbox, hazards = _mailbox_now(person, day, rng)
    if mailbox:
        ids.typed_email(mailbox, rng, False, *hazards)
    else:  # the form wants an address; the person types what they think of
        ids.placeholder("email", placeholder_email(rng))
    phone = person.mobile_at(day)
    if phone and rng.random() < 0.2:
        ids.written_phone(phone, rng, *line_hazards(person, phone))
    if rng.random() < 0.7:
        cookie(person, rng, ids)
    payload: dict[str, Any] = {"text": "Hola, tengo una duda con mi pedido"}
    if rng.random() < 0.8:
        payload["attributes"] = _named(person, rng, split=False)
    return Made("chat", "message.received", payload, ids)


def phone(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids, agent = Identifiers(), rng.randrange(len(world.agents))
    line = _line(person, day, rng)
    if line:
        hazards = line_hazards(person, line)
        ids.put("phone", caller_id(line), f"phone:{line.e164}", *hazards)
    if rng.random() < 0.25 or not line:  # the agent fills in the CRM's email field
        mailbox, hazards = _mailbox_now(person, day, rng)
        if mailbox and rng.random() < 0.85:
            ids.typed_email(mailbox, rng, True, *hazards)
        else:
            ids.placeholder("email", world.agents[agent].email)
    payload: dict[str, Any] = {
        "agent": f"agent-{agent}",
        "queue": "atencion",
        "talk_s": rng.randint(30, 900),
    }
    if rng.random() < 0.5:
        payload["attributes"] = _named(person, rng, split=False)
    return Made("phone", "call.ended", payload, ids)


def email(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids = Identifiers()
    mailbox, hazards = _mailbox_now(person, day, rng)
    if mailbox:  # the provider writes the address as it was registered
        ids.put("email", *cased(mailbox, rng), *hazards)
    payload = {"message_id": f"m-{rng.getrandbits(48):012x}", "campaign": "semanal"}
    return Made("email", "email.opened", payload, ids)


def store(person: Person, day: float, rng: random.Random, world: World) -> Made:
    shop = sorted(world.clerks)[person.index % len(world.clerks)]
    ids, clerk = Identifiers(), rng.choice(world.clerks[shop])
    payload: dict[str, Any] = {
        "store_id": shop,
        "amount": f"{rng.uniform(3, 200):.2f}",
        "currency": "EUR",
    }
    if shop in world.kiosks and rng.random() < 0.15:
        ids.put("anonymous_id", world.kiosks[shop], f"kiosk:{world.kiosks[shop]}", "kiosk")
    if person.loyalty and rng.random() < 0.8:
        ids.put_external("loyalty", person.loyalty, f"loyalty:{person.loyalty}")
        payload["attributes"] = _named(person, rng, split=True)
        if rng.random() < 0.5:
            return Made("store", "store.purchased", payload, ids)
    _asked_at_till(person, day, rng, ids, clerk)
    return Made("store", "store.purchased", payload, ids)


def _asked_at_till(
    person: Person, day: float, rng: random.Random, ids: Identifiers, clerk: Habit
) -> None:
    """The clerk asks for a phone or an email for the receipt; with none given, types a habit."""
    line, mailbox, roll = _line(person, day, rng), person.mailbox_at(day), rng.random()
    if roll < 0.55 and line:
        ids.written_phone(line, rng, *line_hazards(person, line))
    elif roll < 0.8 and mailbox:
        ids.typed_email(mailbox, rng, True)
    elif rng.random() < 0.5:
        ids.placeholder("phone", clerk.phone)
    else:
        ids.placeholder("email", clerk.email)


def survey(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids = Identifiers()
    mailbox, mobile = person.mailbox_at(day), person.mobile_at(day)
    if mailbox and (rng.random() < 0.7 or not mobile):
        ids.put("email", *cased(mailbox, rng))
    elif mobile:
        hazards = line_hazards(person, mobile)
        ids.put("phone", whatsapp(mobile), f"phone:{mobile.e164}", "phone_country_digits", *hazards)
    payload = {"kind": "csat", "score": rng.randint(1, 5)}
    return Made("survey", "survey.answered", payload, ids)


def sms(person: Person, day: float, rng: random.Random, world: World) -> Made:
    ids = Identifiers()
    line = person.home_phone if person.home_phone and rng.random() < 0.4 else person.mobile_at(day)
    if line:
        hazards = line_hazards(person, line)
        ids.put("phone", whatsapp(line), f"phone:{line.e164}", "phone_country_digits", *hazards)
    return Made("sms", "message.received", {"text": "Gracias"}, ids)


BUILDERS = {
    "web": web,
    "mobile_app": mobile_app,
    "order": order,
    "chat": chat,
    "phone": phone,
    "email": email,
    "store": store,
    "survey": survey,
    "sms": sms,
}
