"""A clean synthetic workload of people and their touchpoints, with the truth of who is who.

Used to measure resolution speed (throughput.py) and by the identity store's contract tests: every
touchpoint is a valid `CustomerRef`. The accuracy benchmark uses population.py instead, whose
hazards are drawn the way real data has them.

Seeded and deterministic. It carries the hazards that break identity resolution in practice:
households sharing a landline and a tablet, store kiosks used by many, recycled mobile numbers,
people with several email addresses, email case and domain typos, every way of writing a phone
number, and placeholder values typed by agents. Numbers are Spanish (the tenant's phone region).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers

from schemas.envelope import CustomerRef

REGION = "ES"
PERIOD_START, PERIOD = datetime(2025, 1, 1, tzinfo=UTC), timedelta(days=365)
RECYCLED_AT = 0.5  # recycled numbers are given up halfway through the period (a year) ...
AGED = 90 / 365  # ... and reassigned after the carrier has aged them for 90 days
FIRST = (
    "ana",
    "luis",
    "maria",
    "jose",
    "carmen",
    "javier",
    "lucia",
    "pablo",
    "elena",
    "diego",
    "sofia",
    "marta",
    "raul",
    "irene",
    "sergio",
    "laura",
    "hugo",
    "paula",
    "alba",
    "ivan",
)
LAST = (
    "garcia",
    "lopez",
    "martin",
    "sanchez",
    "perez",
    "gomez",
    "ruiz",
    "diaz",
    "moreno",
    "alvarez",
    "romero",
    "navarro",
    "torres",
    "dominguez",
    "vazquez",
    "ramos",
    "gil",
    "serrano",
)
DOMAINS = ("gmail.com", "hotmail.com", "yahoo.es", "outlook.com", "telefonica.net", "icloud.com")
TYPOS = {"gmail.com": "gmial.com", "hotmail.com": "hotmial.com", "outlook.com": "outlok.com"}
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "email": ("test@test.com", "unknown@unknown.com", "noemail@gmail.com", "a@a.com"),
    "phone": ("0000000000", "999999999", "123456789"),
}


@dataclass
class Person:
    index: int
    emails: list[str]
    mobile: str | None
    account: str | None
    loyalty: str | None
    devices: list[str]
    landline: str | None = None  # shared with the household
    tablet: str | None = None  # shared with the household
    old_mobile: str | None = None  # given up halfway through; reassigned to someone else
    mobile_from: float = 0.0  # when `mobile` became this person's (later for recycled numbers)


@dataclass(frozen=True)
class Touch:
    """One touchpoint event and the person who truly made it."""

    event_id: str
    person: int
    at: float
    channel: str
    ref: CustomerRef
    evidence: frozenset[
        str
    ]  # the true identifiers behind `ref` ("kind:value"), placeholders left out
    hazards: frozenset[str]  # what makes this touchpoint hard: shared_landline, kiosk, ...


@dataclass
class _Factory:
    rng: random.Random
    used: set[str] = field(default_factory=set)

    def unique(self, make: Any) -> str:
        while (value := make()) in self.used:
            pass
        self.used.add(value)
        return value

    def phone(self, first_digits: str) -> str:
        """A valid Spanish number starting with one of the digits (6/7 mobile, 8/9 landline)."""

        def make() -> str:
            while True:
                digits = self.rng.choices("0123456789", k=8)
                national = self.rng.choice(first_digits) + "".join(digits)
                if phonenumbers.is_valid_number(phonenumbers.parse(national, REGION)):
                    return national

        return self.unique(make)

    def email(self) -> str:
        def make() -> str:
            name = f"{self.rng.choice(FIRST)}.{self.rng.choice(LAST)}{self.rng.randint(1, 999)}"
            return f"{name}@{self.rng.choice(DOMAINS)}"

        return self.unique(make)

    def token(self, prefix: str) -> str:
        return self.unique(lambda: prefix + uuid.UUID(int=self.rng.getrandbits(128)).hex[:16])


def make_people(count: int, rng: random.Random) -> list[Person]:
    factory = _Factory(rng)
    people = [_person(i, factory, rng) for i in range(count)]
    _make_households(people, factory, rng)
    _recycle_numbers(people, factory, rng)
    return people


def _person(index: int, factory: _Factory, rng: random.Random) -> Person:
    email_count = rng.choices([1, 2, 3], weights=[75, 20, 5])[0]
    return Person(
        index=index,
        emails=[factory.email() for _ in range(email_count)],
        mobile=factory.phone("67") if rng.random() < 0.9 else None,
        account=factory.token("u") if rng.random() < 0.5 else None,
        loyalty=factory.token("L") if rng.random() < 0.4 else None,
        devices=[factory.token("d") for _ in range(rng.choice([0, 1, 1, 2]))],
    )


def _make_households(people: list[Person], factory: _Factory, rng: random.Random) -> None:
    """About a fifth of people live in households of 2-4 sharing a landline and maybe a tablet."""
    pool = [p for p in people if rng.random() < 0.2]
    rng.shuffle(pool)
    while len(pool) >= 2:
        size = min(len(pool), rng.choice([2, 2, 3, 4]))
        members, pool = pool[:size], pool[size:]
        landline = factory.phone("89")
        tablet = factory.token("t") if rng.random() < 0.5 else None
        for member in members:
            member.landline, member.tablet = landline, tablet


def _recycle_numbers(people: list[Person], factory: _Factory, rng: random.Random) -> None:
    """2% of mobiles belonged to someone else first, who moved to a new number."""
    with_mobile = [p for p in people if p.mobile]
    for new_owner in rng.sample(with_mobile, k=len(with_mobile) // 50):
        former = rng.choice(people)
        if former is new_owner or former.old_mobile or new_owner.old_mobile:
            continue
        former.old_mobile, former.mobile = new_owner.mobile, factory.phone("67")
        new_owner.mobile_from = RECYCLED_AT + AGED


def touches(people: list[Person], kiosks: list[str], rng: random.Random) -> list[Touch]:
    found = [t for person in people for t in _person_touches(person, set(kiosks), rng)]
    return sorted(found, key=lambda t: (t.at, t.event_id))


def _person_touches(person: Person, kiosks: set[str], rng: random.Random) -> list[Touch]:
    times = sorted(rng.random() for _ in range(rng.randint(4, 14)))
    found = [_touch(person, at, kiosks, rng) for at in times]
    return [t for t in found if t is not None]


def _touch(person: Person, at: float, kiosks: set[str], rng: random.Random) -> Touch | None:
    channel = rng.choices(CHANNELS, weights=WEIGHTS)[0]
    fields = {k: v for k, v in _identifiers(channel, person, kiosks, at, rng).items() if v}
    if not fields:
        return None
    hazards, evidence, written = _hazards(person, fields, kiosks), set(), {}
    for kind, value in fields.items():
        written[kind], hazard = _spell(kind, value, rng)
        hazards |= {hazard} if hazard else set()
        if hazard != "placeholder":
            evidence.add(f"{kind}:{value}")
    event_id = str(uuid.UUID(int=rng.getrandbits(128)))
    ref = CustomerRef(**written)
    return Touch(event_id, person.index, at, channel, ref, frozenset(evidence), frozenset(hazards))


def _hazards(person: Person, fields: dict[str, Any], kiosks: set[str]) -> set[str]:
    phone, device, email = fields.get("phone"), fields.get("anonymous_id"), fields.get("email")
    found = {
        "shared_landline": phone is not None and phone == person.landline,
        "shared_tablet": device is not None and device == person.tablet,
        "kiosk": device in kiosks,
        "recycled_number": phone is not None
        and (phone == person.old_mobile or (person.mobile_from > 0 and phone == person.mobile)),
        "second_email": email is not None and email != person.emails[0],
    }
    return {name for name, present in found.items() if present}


def _mobile_at(person: Person, at: float) -> str | None:
    if person.old_mobile and at < RECYCLED_AT:
        return person.old_mobile
    return person.mobile if at >= person.mobile_from else None


def _device(person: Person, rng: random.Random) -> str | None:
    devices = person.devices + ([person.tablet] if person.tablet else [])
    return rng.choice(devices) if devices else None


def _identifiers(
    channel: str, person: Person, kiosks: set[str], at: float, rng: random.Random
) -> dict[str, Any]:
    mobile = _mobile_at(person, at)
    email = rng.choice(person.emails)
    device = _device(person, rng)
    phone = mobile if not person.landline or rng.random() < 0.7 else person.landline
    fields: dict[str, Any] = {}
    if channel == "web":
        fields = {"anonymous_id": device}
        if person.account and rng.random() < 0.5:
            fields["customer_id"] = person.account
    elif channel == "chat":
        fields = {"email": email, "anonymous_id": device if rng.random() < 0.5 else None}
    elif channel == "call":
        fields = {"phone": phone}
    elif channel in ("email", "survey"):
        fields = {"email": email}
    elif channel == "order":
        fields = {"email": email, "phone": mobile, "customer_id": person.account}
    elif channel == "store":
        fields = _store(person, kiosks, email, mobile, rng)
    elif channel == "sms":
        fields = {"phone": mobile}
    return fields


def _store(
    person: Person, kiosks: set[str], email: str, mobile: str | None, rng: random.Random
) -> dict[str, Any]:
    fields: dict[str, Any] = {"phone": mobile} if rng.random() < 0.5 else {"email": email}
    if person.loyalty:
        fields["external_ids"] = {"loyalty": person.loyalty}
    if kiosks and rng.random() < 0.3:
        fields["anonymous_id"] = rng.choice(sorted(kiosks))
    return fields


def _spell(kind: str, value: Any, rng: random.Random) -> tuple[Any, str | None]:
    """Write a value the way people and systems actually write it, and name the hazard if any."""
    if kind in PLACEHOLDERS and rng.random() < 0.02:
        return rng.choice(PLACEHOLDERS[kind]), "placeholder"
    if kind == "email":
        return _spell_email(value, rng)
    if kind == "phone":
        return _spell_phone(value, rng), None
    return value, None


def _spell_email(email: str, rng: random.Random) -> tuple[str, str | None]:
    local, _, domain = email.partition("@")
    typo = domain in TYPOS and rng.random() < 0.05
    spelled = f"{local}@{TYPOS[domain] if typo else domain}"
    roll = rng.random()
    if roll < 0.15:
        spelled = spelled.upper()
    elif roll < 0.3:
        spelled = spelled.capitalize()
    elif roll < 0.35:
        spelled = f"{local.title()}@{spelled.partition('@')[2].upper()}"
    return spelled, "email_typo" if typo else None


def _spell_phone(national: str, rng: random.Random) -> str:
    n = national
    formats = (
        n,
        f"+34{n}",
        f"+34 {n[:3]} {n[3:5]} {n[5:7]} {n[7:]}",
        f"0034{n}",
        f"{n[:3]} {n[3:6]} {n[6:]}",
        f"+34 ({n[:3]}) {n[3:6]}-{n[6:]}",
        f"+34.{n[:3]}.{n[3:6]}.{n[6:]}",
    )
    return rng.choice(formats)


CHANNELS = ("web", "chat", "call", "email", "order", "store", "sms", "survey")
WEIGHTS = (20, 10, 15, 15, 15, 10, 8, 7)


def touched_at(touch: Touch) -> datetime:
    """The population's times are fractions of its period: one year here."""
    return PERIOD_START + touch.at * PERIOD


def population(customers: int, seed: int) -> list[Touch]:
    rng = random.Random(seed)
    people = make_people(customers, rng)
    kiosks = [f"kiosk-{seed}-{i}" for i in range(max(1, customers // 200))]
    return touches(people, kiosks, rng)
