"""A reproducible log of touchpoints full of identity hazards, and a way to file it in a separate
process, for the determinism tests (RELIABILITY D02).

`python -m tests.identity_log STORE BATCH SEED` files the log generated from SEED through the
identity filing stage (`IdentityFiler`, as both modes' runners use it) in batches of BATCH events
on a fresh identity store (STORE: `sqlite:<path>` or `postgres:<dsn>|<schema>`), and prints one
JSON object: each event id -> [the customer it was filed under, the customer that is now].
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta

from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from schemas.envelope import CustomerRef, Event
from services.identity import IdentityResolver, IdentityRules
from services.identity.filing import IdentityFiler

TENANT = "acme"
START = datetime(2026, 1, 1, tzinfo=UTC)
NAMESPACE = uuid.UUID("5f0e6a53-0000-4000-8000-000000000000")
# The key opaque customer ids derive from: a deployment's is fixed (`kernel.opaque_ids`), and
# without one each resolver draws its own, so no two runs would name a customer alike.
ID_KEY = b"identity-log-determinism-key-32b"


def _person(rng: random.Random, n: int) -> dict[str, str]:
    """One person's identifiers as people write them (the same number in several spellings)."""
    mobile = f"6{rng.randrange(10**7, 10**8)}"
    spellings = [
        mobile,
        f"+34 {mobile[:3]} {mobile[3:6]} {mobile[6:]}",
        f"0034{mobile}",
        f"34{mobile}",
    ]
    return {"email": f"p{n}.{rng.randrange(1000)}@gmail.com", "phone": rng.choice(spellings)}


def touchpoints(seed: int, people: int = 60, events: int = 600) -> list[CustomerRef]:
    return [ref for ref, _ in named_touchpoints(seed, people, events)]


# Given names and surnames: the people sharing a tablet share a surname, and some a given name too
# (a parent and a child), so names both join (one person's two addresses) and must not.
GIVEN = ("María José", "José", "Lucía", "Ana")
SURNAMES = ("García", "López", "Pérez", "Ruiz", "Gómez")


def _name(n: int, rng: random.Random) -> str:
    """Person n's name as someone typed it: in full, or the given name and first surname."""
    given, first, second = GIVEN[n % 4], SURNAMES[n % 5], SURNAMES[n // 5 % 5]
    return rng.choice((f"{given} {first} {second}", f"{given} {first}", f"{given.upper()} {first}"))


def named_touchpoints(
    seed: int, people: int = 60, events: int = 600
) -> list[tuple[CustomerRef, str]]:
    """Touchpoints of `people` people: emails, phones in every spelling, shared household lines
    and tablets, placeholders agents type, a mistyped domain, a cookie that turns into a login,
    a second email on one's own browser; and the name some carry ("" when none)."""
    rng = random.Random(seed)
    persons = [_person(rng, n) for n in range(people)]
    households = [f"+34 91{rng.randrange(10**6, 10**7)}" for _ in range(people // 4)]
    tablets = [f"tablet-{n}" for n in range(people // 5)]
    refs = []
    for _ in range(events):
        n = rng.randrange(people)
        person = persons[n]
        shape = rng.randrange(10)
        name = _name(n, rng) if rng.random() < 0.6 else ""
        fields: dict[str, str] = {}
        if shape == 0:
            fields = {"email": person["email"]}
        elif shape == 1:
            fields = {"phone": person["phone"]}
        elif shape == 2:
            fields = {"email": person["email"], "phone": person["phone"]}
        elif shape == 3:
            fields = {"phone": households[n % len(households)], "email": person["email"]}
        elif shape == 4:
            fields = {"anonymous_id": tablets[n % len(tablets)]}
        elif shape == 5:
            fields = {"anonymous_id": f"cookie-{n}-{rng.randrange(3)}"}
        elif shape == 6:
            fields = {"email": rng.choice(["sin@email.com", "no tiene"]), "phone": person["phone"]}
        elif shape == 7:
            fields = {
                "email": person["email"].replace("gmail", "gmakl"),
                "anonymous_id": f"cookie-{n}-0",
            }
        elif shape == 8:
            fields = {"email": f"p{n}.trabajo@empresa.es", "anonymous_id": f"cookie-{n}-0"}
        else:
            fields = {"phone": households[n % len(households)]}
        refs.append((CustomerRef(**fields), name))
    return refs


def log(seed: int) -> list[Event]:
    """The touchpoints as stored events, in log order, with ids fixed by the seed."""
    return [
        Event(
            event_id=uuid.uuid5(NAMESPACE, f"{seed}/{i}"),
            tenant_id=TENANT,
            source_id="http",
            channel="phone",
            type="call.ended",
            touchpoint="support_line",
            customer=ref,
            occurred_at=START + timedelta(hours=i),
            received_at=START + timedelta(hours=i),
            derived_at=START + timedelta(hours=i),
            payload={"attributes": {"name": name}} if name else {},
        )
        for i, (ref, name) in enumerate(named_touchpoints(seed))
    ]


def resolver(store: str) -> IdentityResolver:
    engine, _, target = store.partition(":")
    if engine == "sqlite":
        return IdentityResolver(SqliteIdentityStore(target), IdentityRules(), id_key=ID_KEY)
    dsn, _, schema = target.partition("|")
    return IdentityResolver(PostgresIdentityStore(dsn, schema), IdentityRules(), id_key=ID_KEY)


def filings(store: str, batch: int, seed: int) -> dict[str, list[str]]:
    identity = resolver(store)
    try:
        filer = IdentityFiler(identity, chunk=batch)
        events = log(seed)
        homes: list[str] = []
        for start in range(0, len(events), batch):
            homes += [str(h) for h in filer.file(events[start : start + batch])]
        version = identity.identity_version(TENANT)
        return {
            str(e.event_id): [home, identity.canonical_id(TENANT, home, version)]
            for e, home in zip(events, homes, strict=True)
        }
    finally:
        identity.close()


if __name__ == "__main__":
    store_arg, batch_arg, seed_arg = sys.argv[1:4]
    print(json.dumps(filings(store_arg, int(batch_arg), int(seed_arg)), sort_keys=True))
