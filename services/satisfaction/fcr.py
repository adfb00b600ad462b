"""First-contact resolution (`fcr@1`) and the repeat-contact rate, from timeline rows. Pure.

A contact is `repeat_contact@1`'s (services/projections/repeat_contact.py): one conversation, at
its first inbound customer event. It is **resolved** when its conversation (its correlation id, or
a case it names) holds a `call.ended` with `resolved: true` or a `case.resolved`. It is a **first
contact** when no contact of the same customer about the same topic came in the 7 days before it.
A resolved first contact is **FCR** when no later contact of the same customer about the same
topic comes, and no case of its conversation is reopened, within 7 days (inclusive, as
repeat_contact@1): provisional until the window has passed, then final; a repeat or a reopen makes
it final and not FCR at once. Two contacts are about the same topic when they share a topic or a
case, or when either names no topic at all (an unknown topic cannot be told apart, so it is counted
against FCR, never for it). The customer is the canonical one of the customer each row was filed
under (a merged customer's members are one customer), given by the caller from the identity map.

This is the rule's reference, over timeline rows. The route pairs contact events instead
(`fcr_pairing.py`, the same rule in one pass over narrow rows), tested equal to this.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from services.projections.contact_events import CONTACT_EVENT_TYPES, payload_facts
from services.projections.repeat_contact import WINDOW_MICROS, Contact, repeats

DEFINITION = "fcr@1"
REPEAT_RATE_DEFINITION = "repeat_contact_rate@1"
# What the reads fetch: every contact type, and the case events that resolve or name a topic.
READ_TYPES = CONTACT_EVENT_TYPES

Status = Literal["fcr_final", "fcr_provisional", "repeated"]


@dataclass(frozen=True)
class FcrContact:
    """A contact with what its conversation tells: who, where, which topics and cases, resolved."""

    contact: Contact
    customer_id: str
    queue: str
    agent: str
    topics: frozenset[str]
    cases: frozenset[str]
    resolved: bool
    # (derived_at, event_id) of each `case.reopened` of its cases, oldest first
    reopens: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What fcr@1 says of one resolved first contact as of a moment."""

    contact: FcrContact
    status: Status
    repeat_event_id: str | None  # the later contact, or the case reopen, that made it not FCR


def same_topic(a: FcrContact, b: FcrContact) -> bool:
    """Whether two contacts of a customer count as being about the same topic."""
    if not a.topics or not b.topics:
        return True
    return bool(a.topics & b.topics or a.cases & b.cases)


@dataclass(frozen=True)
class _Fact:
    """What one timeline row tells fcr@1, read from its payload once."""

    order: tuple[int, str]  # (derived_at, event_id)
    contact: Contact | None  # when the row is an inbound contact
    topic: str
    case_id: str
    agent: str
    queue: str
    resolves: bool
    reopens: bool


def _fact(row: Mapping[str, Any]) -> _Fact:
    at, event_id, channel = row["derived_at"], row["event_id"], row["channel"]
    facts = payload_facts(row["type"], channel, orjson.loads(row["payload_json"]))
    contact = Contact(at, event_id, channel, row["touchpoint"])
    return _Fact(
        order=(at, event_id),
        contact=contact if facts.contact else None,
        topic=facts.topic,
        case_id=facts.case_id,
        agent=facts.agent,
        queue=facts.queue,
        resolves=facts.resolves,
        reopens=facts.reopens,
    )


def _group_key(customer: str, row: Mapping[str, Any]) -> tuple[str, str, str]:
    corr = row["correlation_id"]
    return (customer, "c", corr) if corr else (customer, "e", row["event_id"])


def _latest(facts: list[_Fact], name: str) -> str:
    named = [(f.order, getattr(f, name)) for f in facts if getattr(f, name)]
    return max(named)[1] if named else ""


def fcr_contacts(
    rows: Iterable[Mapping[str, Any]], canonical: Mapping[str, str] | None = None
) -> list[FcrContact]:
    """The contacts among timeline rows of any customers (each row with `customer_id`), oldest
    first, each with its conversation's topics, cases, queue, agent and resolution. `canonical`
    maps a merged customer's absorbed ids to the customer they stand for now (the identity map's
    redirects): rows filed under any member are that one customer's."""
    redirects = canonical or {}
    groups: dict[tuple[str, str, str], list[_Fact]] = defaultdict(list)
    cases: dict[tuple[str, str], list[_Fact]] = defaultdict(list)
    for row in rows:
        fact = _fact(row)
        customer = redirects.get(row["customer_id"], row["customer_id"])
        groups[_group_key(customer, row)].append(fact)
        if fact.case_id:
            cases[(customer, fact.case_id)].append(fact)
    found = (_contact_of(key[0], facts, cases) for key, facts in groups.items())
    return sorted((c for c in found if c is not None), key=_order)


def _order(contact: FcrContact) -> tuple[int, str]:
    return (contact.contact.at, contact.contact.event_id)


def _contact_of(
    customer: str, facts: list[_Fact], cases: Mapping[tuple[str, str], list[_Fact]]
) -> FcrContact | None:
    firsts = [f.contact for f in facts if f.contact is not None]
    if not firsts:
        return None
    case_ids = frozenset(f.case_id for f in facts if f.case_id)
    linked = facts + [f for case in sorted(case_ids) for f in cases[(customer, case)]]
    return FcrContact(
        contact=min(firsts, key=lambda c: (c.at, c.event_id)),
        customer_id=customer,
        queue=_latest(linked, "queue"),
        agent=_latest(linked, "agent"),
        topics=frozenset(f.topic for f in linked if f.topic),
        cases=case_ids,
        resolved=any(f.resolves for f in linked),
        reopens=tuple(sorted({f.order for f in linked if f.reopens})),
    )


def _by_customer(contacts: Iterable[FcrContact]) -> dict[str, list[FcrContact]]:
    found: dict[str, list[FcrContact]] = defaultdict(list)
    for c in sorted(contacts, key=_order):
        found[c.customer_id].append(c)
    return found


def _is_first(earlier_in_window: Sequence[FcrContact], contact: FcrContact) -> bool:
    return not any(same_topic(e, contact) for e in earlier_in_window)


def _repeat_of(later: Sequence[FcrContact], contact: FcrContact, window: int) -> str | None:
    """The first later contact about the same topic, or reopen of one of its cases, within the
    window (a reopen says the resolution did not hold, as a contact back about it does)."""
    start = contact.contact.at
    found = [(c.contact.at, c.contact.event_id) for c in later if same_topic(c, contact)]
    found += [r for r in contact.reopens if r >= (start, contact.contact.event_id)]
    within = [f for f in found if f[0] - start <= window]
    return min(within)[1] if within else None


def outcomes(
    contacts: Iterable[FcrContact], as_of: int, window: int = WINDOW_MICROS
) -> list[Outcome]:
    """fcr@1 of every resolved first contact among `contacts`, as of `as_of` (epoch micros)."""
    found: list[Outcome] = []
    for mine in _by_customer(contacts).values():
        ats = [c.contact.at for c in mine]  # oldest first: the window's ends are found by bisection
        for i, contact in enumerate(mine):
            at = contact.contact.at
            before = mine[bisect_left(ats, at - window, 0, i) : i]
            if not contact.resolved or not _is_first(before, contact):
                continue
            repeat = _repeat_of(mine[i + 1 : bisect_right(ats, at + window)], contact, window)
            closed = as_of > at + window
            status: Status = "repeated" if repeat else "fcr_final" if closed else "fcr_provisional"
            found.append(Outcome(contact, status, repeat))
    return found


def repeated_contacts(contacts: Iterable[FcrContact], window: int = WINDOW_MICROS) -> set[str]:
    """Event ids of the contacts that repeat an earlier one of the same customer (repeat_contact@1,
    whatever the topic)."""
    return {
        event_id
        for mine in _by_customer(contacts).values()
        for event_id in repeats([c.contact for c in mine], window)
    }
