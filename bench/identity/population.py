"""The identity benchmark's population: people, their touchpoints as v1 events, and the truth.

Seeded and deterministic. Built only from what it creates (people.py, channels.py): it knows
nothing of the identity rules it is used to measure, and a test keeps it that way. Hazards are
drawn the way real data has them; see the modules named below for each:
- phones written as people of four countries write them (phones.py);
- emails mistyped on a Spanish keyboard, in odd case, with spaces, Gmail dots moved (spelling.py);
- placeholders typed by agents and clerks out of habit (placeholders.py);
- households sharing a landline and a tablet, store kiosks, recycled mobiles, second and changed
  emails, cleared cookies (people.py, channels.py);
- malformed identifiers next to valid ones (spelling.py).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.identity.channels import BUILDERS, CHANNELS, Made, World
from bench.identity.people import DAYS, Person, make_people
from bench.identity.placeholders import make_habits

START = datetime(2026, 6, 1, tzinfo=UTC)
SOURCES = {"phone": "cti", "email": "esp", "store": "pos", "survey": "surveys", "sms": "sms"}


@dataclass(frozen=True)
class Touch:
    """One touchpoint: the event its channel system sends, and who truly made it."""

    event_id: str
    person: int
    day: float
    channel: str
    event: dict[str, Any]  # the v1 envelope, as sent to the ingest
    evidence: frozenset[str]  # truth keys of the usable identifiers it carries
    carried: frozenset[str]  # evidence and placeholders: every key that could join people
    hazards: frozenset[str]
    spelled: tuple[tuple[str, str], ...]  # (truth key, as written)

    @property
    def at(self) -> datetime:
        return START + timedelta(days=self.day)


def make_world(people: int, rng: random.Random) -> World:
    stores = [f"tienda-{i:02d}" for i in range(max(3, people // 150))]
    agents = 40  # call-centre seats; each store has three clerks
    habits = make_habits(agents + 3 * len(stores), rng)  # one company: habits travel
    return World(
        agents=habits[:agents],
        clerks={s: habits[agents + 3 * i : agents + 3 * i + 3] for i, s in enumerate(stores)},
        kiosks={s: f"kiosk-{s}" for s in stores if rng.random() < 0.6},
    )


def generate(people: int, seed: int) -> list[Touch]:
    """Every touchpoint of `people` people over the period, in time order."""
    rng = random.Random(seed)
    population = make_people(people, rng)
    world = make_world(people, rng)
    found = [t for person in population for t in _touches(person, world, rng)]
    return sorted(found, key=lambda t: (t.day, t.event_id))


def _touches(person: Person, world: World, rng: random.Random) -> list[Touch]:
    # Heavy-tailed activity: most people come a handful of times, a few every week.
    count = min(60, 1 + int(rng.lognormvariate(1.4, 0.8)))
    taste = {c: w * rng.uniform(0.2, 1.8) for c, w in CHANNELS.items()}
    days = sorted(rng.uniform(0.0, DAYS) for _ in range(count))
    made = [_touch(person, day, world, taste, rng) for day in days]
    return [t for t in made if t is not None]


def _touch(
    person: Person, day: float, world: World, taste: dict[str, float], rng: random.Random
) -> Touch | None:
    kind = rng.choices(list(taste), weights=list(taste.values()))[0]
    made = BUILDERS[kind](person, day, rng, world)
    if not made.ids.customer:
        return None  # the channel knew nobody: no event names a customer
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    evidence, carried = made.ids.finish()
    return Touch(
        event_id=event_id,
        person=person.index,
        day=day,
        channel=made.channel,
        event=_envelope(event_id, day, made),
        evidence=evidence,
        carried=carried,
        hazards=frozenset(made.ids.hazards),
        spelled=tuple(sorted(made.ids.spelled.items())),
    )


def _envelope(event_id: str, day: float, made: Made) -> dict[str, Any]:
    at = START + timedelta(days=day)
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event_id": event_id,
        "source_id": SOURCES.get(made.channel, "web-sdk"),
        "channel": made.channel,
        "type": made.event_type,
        "customer": made.ids.customer,
        "occurred_at": stamp,
        "payload": made.payload,
    }
