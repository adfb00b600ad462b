"""The demo population: customers, the contact-centre agents who serve them, the stores."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from random import Random

import phonenumbers

from cem.demo.draws import cumulative, pick, random_digits, random_hex
from cem.demo.people import Agent, Customer
from cem.demo.reference import (
    COUNTRIES,
    COUNTRY_DRAW,
    EN_FIRST,
    EN_LAST,
    ES_FIRST,
    ES_LAST,
    KINDS,
    PERSONA_DRAW,
    PERSONAS,
    QUEUES,
    SEGMENT_DRAW,
    SEGMENTS,
    STORES,
)


@dataclass(frozen=True)
class Population:
    """The demo's customers, the contact-centre agents who serve them and the stores."""

    customers: tuple[Customer, ...]
    agents: tuple[Agent, ...]
    stores: tuple[str, ...]
    activity_cum: tuple[float, ...] = field(repr=False)
    agents_by_queue: Mapping[str, tuple[Agent, ...]] = field(repr=False)

    @classmethod
    def generate(cls, rng: Random, customers: int) -> Population:
        if customers < 1:
            raise ValueError("a population needs at least one customer")
        made = _Maker(rng)
        people = tuple(made.customer(i) for i in range(customers))
        agents = made.agents(max(8, min(80, customers // 100)))
        by_queue = {q: tuple(a for a in agents if q in a.queues) for q in QUEUES}
        activity = cumulative(SEGMENTS[c.segment][1] for c in people)
        return cls(people, agents, tuple(STORES), activity, by_queue)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _journey_cum(persona: str, unavailable: Iterable[str]) -> tuple[float, ...]:
    """The persona's channel mix without the kinds of contact this customer cannot make."""
    weights = list(PERSONAS[persona][1])
    for kind in unavailable:
        weights[KINDS.index(kind)] = 0
    return cumulative(weights)


class _Maker:
    """Draws customers and agents, keeping every identifier unique."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def unique(self, make: Callable[[], str]) -> str:
        value = make()
        while value in self.used:
            value = make()
        self.used.add(value)
        return value

    def hex(self, bits: int) -> str:
        return random_hex(self.rng, bits)

    def digits(self, n: int) -> str:
        return random_digits(self.rng, n)

    def customer(self, index: int) -> Customer:
        r = self.rng
        country = pick(r, *COUNTRY_DRAW)
        _, currency, spanish, domains = COUNTRIES[country]
        language = "es" if r.random() < spanish else "en"
        first, last = self.name(language)
        persona = pick(r, *PERSONA_DRAW)
        has_phone, has_email = self.reachable()
        loyal = r.random() < (0.9 if persona == "store_first" else 0.4)
        social = self.social(first, last)
        app_id = self.unique(lambda: f"app-{self.hex(64)}") if r.random() < 0.45 else None
        available = {"call": has_phone, "sms": has_phone, "social": social, "app": app_id,
                     "email": has_email}  # fmt: skip
        local_stores = [s for s, v in STORES.items() if v[1] == country] or ["mad-gran-via"]
        return Customer(
            index=index,
            name=f"{first} {last}",
            language=language,
            country=country,
            email=self.unique(lambda: self.email(first, last, domains)) if has_email else None,
            phone=self.unique(lambda: self.phone(country)) if has_phone else None,
            customer_id=self.unique(lambda: f"cus_{self.hex(48)}") if r.random() < 0.7 else None,
            web_ids=tuple(
                self.unique(lambda: f"web-{self.hex(80)}") for _ in range(r.randint(1, 3))
            ),
            app_id=app_id,
            crm_id=self.unique(lambda: f"CRM-{self.digits(7)}") if r.random() < 0.85 else None,
            loyalty_id=self.unique(lambda: f"LOY{self.digits(10)}") if loyal else None,
            social=social,
            persona=persona,
            segment=pick(r, *SEGMENT_DRAW),
            currency=currency,
            home_store=r.choice(local_stores),
            marketing_opt_in=has_email and r.random() < 0.35,
            joined_days_ago=r.uniform(0, 3 * 365) if r.random() < 0.7 else r.uniform(0, 240),
            journey_cum=_journey_cum(persona, [k for k, v in available.items() if not v]),
        )

    def reachable(self) -> tuple[bool, bool]:
        """Whether the customer gave a phone and an email: at least one, or no channel knows them."""
        has_phone, has_email = self.rng.random() < 0.92, self.rng.random() < 0.9
        return has_phone, has_email or not has_phone

    def social(self, first: str, last: str) -> tuple[str, str] | None:
        """The (network, handle) of the minority who talk to the shop on social media."""
        r = self.rng
        if r.random() >= 0.3:
            return None
        network = r.choice(("instagram", "x"))
        return network, self.unique(lambda: f"@{_ascii(first)}_{_ascii(last)}{r.randrange(100)}")

    def name(self, language: str) -> tuple[str, str]:
        r = self.rng
        if language == "es":
            # Spanish speakers usually carry two surnames; forms often get both.
            last = r.choice(ES_LAST) + (f" {r.choice(ES_LAST)}" if r.random() < 0.6 else "")
            return r.choice(ES_FIRST), last
        return r.choice(EN_FIRST), r.choice(EN_LAST)

    def login(self, name: str) -> str:
        base = ".".join(_ascii(part) for part in name.split())
        return self.unique(lambda: f"{base}{self.rng.randrange(10, 100)}")

    def email(self, first: str, last: str, domains: tuple[str, ...]) -> str:
        r, f, surname = self.rng, _ascii(first), _ascii(last.split()[0])
        local = r.choice((f"{f}.{surname}", f"{f}{surname}", f"{f[0]}{surname}", f"{f}_{surname}"))
        if r.random() < 0.5:
            local += str(r.randrange(1, 100))
        return f"{local}@{r.choice(domains)}"

    def phone(self, country: str) -> str:
        """A mobile number valid in `country` as libphonenumber reads it: identity drops any
        other (a browser review found a fifth of the Spanish ones, `+3475…`, filed as several
        customers, and half the American ones were no numbers either). One drawn as before, and
        an invalid one drawn again from its own generator: the rest of the population is the
        same as before."""
        drawn = _phone_shape(country, self.rng)
        again = Random(drawn)
        for _ in range(1000):
            number = phonenumbers.parse(drawn)
            valid = phonenumbers.is_valid_number(number)
            if valid and phonenumbers.region_code_for_number(number) == country:
                return drawn
            drawn = _phone_shape(country, again)
        raise AssertionError(f"no valid number drawn for {country}")  # never: most are valid

    def agents(self, count: int) -> tuple[Agent, ...]:
        return tuple(self.agent(i) for i in range(count))

    def agent(self, i: int) -> Agent:
        r = self.rng
        first, last = self.name("es" if r.random() < 0.8 else "en")
        queues: tuple[str, ...] = (QUEUES[i % len(QUEUES)],)
        if r.random() < 0.5:
            queues += (r.choice([q for q in QUEUES if q != queues[0]]),)
        # A few agents are clearly weaker than the rest: the dashboard should show it.
        skill = max(-0.2, min(0.15, r.gauss(0, 0.06) + (-0.14 if i % 7 == 3 else 0)))
        name = f"{first} {last.split()[0]}"
        return Agent(self.login(name), name, queues, round(skill, 3))


def _phone_shape(country: str, r: Random) -> str:
    """A mobile number as `country` writes them (not always one that exists)."""

    def d(n: int) -> str:
        return random_digits(r, n)

    if country == "ES":
        return f"+34{r.choice('67')}{d(8)}"
    if country == "GB":
        return f"+447{d(9)}"
    if country == "US":
        return f"+1{r.randint(2, 9)}{d(2)}{r.randint(2, 9)}{d(6)}"
    if country == "MX":
        return f"+52{r.choice(('55', '33', '81'))}{d(8)}"
    if country == "PT":
        return f"+3519{r.choice('1236')}{d(7)}"
    return f"+33{r.choice('67')}{d(8)}"
