"""First-contact resolution (`fcr@1`) and the repeat-contact rate, from timeline rows. Pure.

A contact is `repeat_contact@1`'s (services/projections/repeat_contact.py): one conversation, at
its first inbound customer event. It is **resolved** when its conversation (its correlation id, or
a case it names) holds a `call.ended` with `resolved: true` or a `case.resolved`. It is a **first
contact** when no contact of the same customer about the same topic came in the 7 days before it.
A resolved first contact is **FCR** when no later contact of the same customer about the same
topic comes within 7 days (inclusive, as repeat_contact@1): provisional until the window has
passed, then final; a repeat makes it final and not FCR at once. Two contacts are about the same
topic when they share a topic or a case, or when either names no topic at all (an unknown topic
cannot be told apart, so it is counted against FCR, never for it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from services.projections.repeat_contact import (
    CONTACT_TYPES,
    WINDOW_MICROS,
    Contact,
    is_contact,
    repeats,
)

DEFINITION = "fcr@1"
REPEAT_RATE_DEFINITION = "repeat_contact_rate@1"
RESOLUTION_TYPES = ("case.resolved", "case.reopened")
# What the reads fetch: every contact type, and the case events that resolve or name a topic.
READ_TYPES = tuple(dict.fromkeys((*CONTACT_TYPES, "case.opened", *RESOLUTION_TYPES)))

Status = Literal["fcr_final", "fcr_provisional", "repeated"]
Pair = tuple[Mapping[str, Any], dict[str, Any]]  # a timeline row and its decoded payload


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


@dataclass(frozen=True)
class Outcome:
    """What fcr@1 says of one resolved first contact as of a moment."""

    contact: FcrContact
    status: Status
    repeat_event_id: str | None  # the later contact that made it not FCR


def same_topic(a: FcrContact, b: FcrContact) -> bool:
    """Whether two contacts of a customer count as being about the same topic."""
    if not a.topics or not b.topics:
        return True
    return bool(a.topics & b.topics or a.cases & b.cases)


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    return value if isinstance(value, str) else ""


def _group_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    corr = row["correlation_id"]
    return (row["customer_id"], "c", corr) if corr else (row["customer_id"], "e", row["event_id"])


def _resolves(row: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    return row["type"] == "case.resolved" or (
        row["type"] == "call.ended" and payload.get("resolved") is True
    )


def _latest(pairs: list[Pair], name: str) -> str:
    ordered = sorted(pairs, key=lambda p: (p[0]["derived_at"], p[0]["event_id"]))
    return next((_text(p, name) for _, p in reversed(ordered) if _text(p, name)), "")


def fcr_contacts(rows: Iterable[Mapping[str, Any]]) -> list[FcrContact]:
    """The contacts among timeline rows of any customers (each row with `customer_id`), oldest
    first, each with its conversation's topics, cases, queue, agent and resolution."""
    groups: dict[tuple[str, str, str], list[Pair]] = defaultdict(list)
    cases: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for row in rows:
        payload = orjson.loads(row["payload_json"])
        groups[_group_key(row)].append((row, payload))
        if _text(payload, "case_id"):
            cases[(row["customer_id"], _text(payload, "case_id"))].append((row, payload))
    found = (_contact_of(pairs, cases) for pairs in groups.values())
    return sorted((c for c in found if c is not None), key=lambda c: c.contact)


def _contact_of(
    pairs: list[Pair],
    cases: Mapping[tuple[str, str], list[Pair]],
) -> FcrContact | None:
    firsts = [
        Contact(r["derived_at"], r["event_id"], r["channel"], r["touchpoint"])
        for r, p in pairs
        if is_contact(r["type"], r["channel"], p)
    ]
    if not firsts:
        return None
    customer = pairs[0][0]["customer_id"]
    case_ids = frozenset(_text(p, "case_id") for _, p in pairs if _text(p, "case_id"))
    linked = pairs + [pair for case in sorted(case_ids) for pair in cases[(customer, case)]]
    return FcrContact(
        contact=min(firsts),
        customer_id=customer,
        queue=_latest(linked, "queue"),
        agent=_latest(linked, "agent"),
        topics=frozenset(_text(p, "topic") for _, p in linked if _text(p, "topic")),
        cases=case_ids,
        resolved=any(_resolves(r, p) for r, p in linked),
    )


def _by_customer(contacts: Iterable[FcrContact]) -> dict[str, list[FcrContact]]:
    found: dict[str, list[FcrContact]] = defaultdict(list)
    for c in sorted(contacts, key=lambda c: c.contact):
        found[c.customer_id].append(c)
    return found


def _is_first(earlier: Sequence[FcrContact], contact: FcrContact, window: int) -> bool:
    return not any(
        contact.contact.at - e.contact.at <= window and same_topic(e, contact) for e in earlier
    )


def _repeat_of(later: Sequence[FcrContact], contact: FcrContact, window: int) -> str | None:
    return next(
        (
            c.contact.event_id
            for c in later
            if c.contact.at - contact.contact.at <= window and same_topic(c, contact)
        ),
        None,
    )


def outcomes(
    contacts: Iterable[FcrContact], as_of: int, window: int = WINDOW_MICROS
) -> list[Outcome]:
    """fcr@1 of every resolved first contact among `contacts`, as of `as_of` (epoch micros)."""
    found: list[Outcome] = []
    for mine in _by_customer(contacts).values():
        for i, contact in enumerate(mine):
            if not contact.resolved or not _is_first(mine[:i], contact, window):
                continue
            repeat = _repeat_of(mine[i + 1 :], contact, window)
            closed = as_of > contact.contact.at + window
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
