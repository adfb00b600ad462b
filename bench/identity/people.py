"""The people of the population and everything that is truly theirs (or shared), over time.

Customers of a Spanish retailer: most are Spanish, a quarter came from Mexico, Argentina or
Colombia (many keep their home number for WhatsApp beside a Spanish one). Over the period a person
may change their main email, give up their mobile (which the carrier hands to someone else after
ageing it), clear their browser's cookies, and share a landline and a tablet with their household.
Times are days from the start of the period.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from bench.identity import names
from bench.identity.phones import Phone, draw

DAYS = 120.0
COUNTRIES = (("ES", 75), ("MX", 10), ("AR", 8), ("CO", 7))
AGEING_DAYS = (30.0, 60.0)  # carriers keep a given-up number this long before reassigning it


@dataclass
class Person:
    index: int
    country: str
    given: str
    surnames: tuple[str, str]
    mailboxes: list[str]  # main first; empty for people without email
    mobile: Phone | None
    home_phone: Phone | None = None  # an emigrant's number from home, kept for WhatsApp
    account: str | None = None  # web/app login
    loyalty: str | None = None  # store card
    browsers: int = 1
    app: str | None = None  # app install id
    work_mailbox: str | None = None  # a second email, used now and then
    changed_mailbox: tuple[float, str] | None = None  # (from day, new main mailbox)
    old_mobile: tuple[float, Phone] | None = None  # (given up on day, number) before `mobile`
    mobile_from: float = 0.0  # a recycled number is this person's only from this day
    landline: Phone | None = None  # shared with the household
    tablet: str | None = None  # shared with the household
    cookies: dict[int, list[str]] = field(default_factory=dict)  # per browser, oldest first

    def mailbox_at(self, day: float) -> str | None:
        if self.changed_mailbox and day >= self.changed_mailbox[0]:
            return self.changed_mailbox[1]
        return self.mailboxes[0] if self.mailboxes else None

    def mobile_at(self, day: float) -> Phone | None:
        if self.old_mobile and day < self.old_mobile[0]:
            return self.old_mobile[1]
        return self.mobile if day >= self.mobile_from else None


# Gmail ignores dots in the part before the @ (Google's own help: "Dots don't matter in Gmail
# addresses"), so it never gives `ana.ruiz@` and `anaruiz@` to two people: they are one mailbox.
DOTLESS_PROVIDERS = ("gmail.com", "googlemail.com")


def _delivered_to(address: str) -> str:
    """The mailbox an address reaches, as its provider decides (a fact of the provider, not a rule
    of the platform under test)."""
    local, _, domain = address.partition("@")
    return f"{local.replace('.', '')}@{domain}" if domain in DOTLESS_PROVIDERS else address


class _Unique:
    """Draws values until one is new: two people never get one mailbox or number by chance."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set[str]()

    def phone(self, country: str, mobile: bool) -> Phone:
        while (found := draw(country, mobile, self.rng)).e164 in self.used:
            pass
        self.used.add(found.e164)
        return found

    def mailbox(self, local: str, domain: str) -> str:
        candidate, n = f"{local}@{domain}", 1
        while _delivered_to(candidate) in self.used:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used.add(_delivered_to(candidate))
        return candidate

    def token(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex


def make_people(count: int, rng: random.Random) -> list[Person]:
    unique = _Unique(rng)
    people = [_person(i, unique, rng) for i in range(count)]
    _households(people, unique, rng)
    _recycle_mobiles(people, unique, rng)
    _change_mailboxes(people, unique, rng)
    return people


def _person(index: int, unique: _Unique, rng: random.Random) -> Person:
    country = rng.choices([c for c, _ in COUNTRIES], weights=[w for _, w in COUNTRIES])[0]
    given, surnames = names.draw_name(country, rng)
    person = Person(index, country, given, surnames, [], None)
    if rng.random() < 0.92:  # some people (often older ones) have no email at all
        person.mailboxes.append(_mailbox(person, unique, rng))
    _phones(person, unique, rng)
    person.account = unique.token()[:12] if rng.random() < 0.45 else None
    person.loyalty = "L" + unique.token()[:10].upper() if rng.random() < 0.35 else None
    person.browsers = rng.choice((1, 1, 2))
    person.app = unique.token() if rng.random() < 0.3 else None
    if person.mailboxes and rng.random() < 0.15:
        local = f"{person.given[0]}.{person.surnames[0]}"
        person.work_mailbox = unique.mailbox(names.plain(local), rng.choice(names.WORKPLACES))
    return person


def _mailbox(person: Person, unique: _Unique, rng: random.Random) -> str:
    local = names.mailbox_local(person.given, person.surnames, rng)
    return unique.mailbox(local, names.provider(person.country, rng))


def _phones(person: Person, unique: _Unique, rng: random.Random) -> None:
    if person.country == "ES":
        person.mobile = unique.phone("ES", True) if rng.random() < 0.93 else None
        return
    # Emigrants: most got a Spanish mobile; many still use the one from home.
    has_spanish = rng.random() < 0.65
    person.mobile = unique.phone("ES", True) if has_spanish else unique.phone(person.country, True)
    if has_spanish and rng.random() < 0.5:
        person.home_phone = unique.phone(person.country, True)


def _households(people: list[Person], unique: _Unique, rng: random.Random) -> None:
    """About a fifth of people live with others (2-4) sharing a landline, half also a tablet."""
    pool = [p for p in people if rng.random() < 0.2]
    rng.shuffle(pool)
    while len(pool) >= 2:
        size = min(len(pool), rng.choice((2, 2, 3, 4)))
        members, pool = pool[:size], pool[size:]
        landline = unique.phone("ES", False)
        tablet = unique.token() if rng.random() < 0.5 else None
        for member in members:
            member.landline, member.tablet = landline, tablet


def _recycle_mobiles(people: list[Person], unique: _Unique, rng: random.Random) -> None:
    """3% of mobiles are given up early in the period; the carrier hands each, after ageing
    it, to someone without a mobile of their own, who uses it until the end."""
    givers = [p for p in people if p.mobile and p.mobile.country == "ES" and not p.old_mobile]
    takers = [p for p in people if p.mobile is None and p.home_phone is None]
    for giver in rng.sample(givers, k=min(len(givers) * 3 // 100, len(takers))):
        taker = takers.pop(rng.randrange(len(takers)))
        number, given_up = giver.mobile, rng.uniform(5.0, 45.0)
        assert number is not None
        giver.old_mobile, giver.mobile = (given_up, number), unique.phone("ES", True)
        taker.mobile, taker.mobile_from = number, given_up + rng.uniform(*AGEING_DAYS)


def _change_mailboxes(people: list[Person], unique: _Unique, rng: random.Random) -> None:
    """6% of people move to a new main mailbox part-way (a new provider, a married name …)."""
    for person in people:
        if person.mailboxes and rng.random() < 0.06:
            new = _mailbox(person, unique, rng)
            person.changed_mailbox = (rng.uniform(10.0, DAYS - 10.0), new)
