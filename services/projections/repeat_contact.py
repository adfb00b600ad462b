"""Repeat contacts (`repeat_contact@1`): a customer who contacts us again within 7 days.

Pure: which timeline rows are contacts, and which contact repeats which. Computed when read, from
the timeline table (`repeat_contact_sql.py`), so a flag appears as soon as the second contact is
stored, whatever the arrival order, and a replay gives the same flags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import orjson
from pydantic import BaseModel, Field

from services.projections.timeline import from_micros

DEFINITION = "repeat_contact@1"
WINDOW_DAYS = 7  # METRICS.md: FCR's window, "within 7 days" (inclusive)
WINDOW_MICROS = WINDOW_DAYS * 86_400 * 1_000_000


def _inbound_call(channel: str, payload: Mapping[str, Any]) -> bool:
    return payload.get("direction", "inbound") == "inbound"


def _from_customer(default: str) -> Callable[[str, Mapping[str, Any]], bool]:
    return lambda channel, payload: payload.get("sender", default) == "customer"


# Inbound, customer-initiated interactions, by type; the payload or channel decides for some.
# Not contacts: the rest of a call (answered, held, transferred), outbound calls, agent and bot
# messages, what we send by email (sent, delivered, opened, clicked, bounced), page views and app
# actions, orders, returns and store purchases (sales), cases opened beside a call or chat (an
# agent's record of a contact counted already), case updates, surveys, alerts, custom events.
CONTACTS: dict[str, Callable[[str, Mapping[str, Any]], bool]] = {
    "call.offered": _inbound_call,
    "call.ended": _inbound_call,  # answered or abandoned: the customer called either way
    "message.received": _from_customer("customer"),
    "message.sent": _from_customer("agent"),
    "email.replied": lambda channel, payload: True,
    # v1 has no `email.received`: a support email arriving opens a case on the email channel.
    "case.opened": lambda channel, payload: channel == "email",
    "store.visited": lambda channel, payload: True,
}
CONTACT_TYPES = tuple(CONTACTS)


def is_contact(event_type: str, channel: str, payload: Mapping[str, Any]) -> bool:
    """Whether an event is an inbound contact from the customer."""
    rule = CONTACTS.get(event_type)
    return rule is not None and rule(channel, payload)


@dataclass(frozen=True, order=True)
class Contact:
    """One contact, at its first inbound event; ordered as the timeline is, by (time, id)."""

    at: int  # derived_at, epoch micros
    event_id: str
    channel: str
    touchpoint: str


def contacts_of(rows: Iterable[Mapping[str, Any]]) -> list[Contact]:
    """The contacts among timeline rows, oldest first. The events of one conversation (one
    `correlation_id`: a call's offered and ended, a chat's messages) are one contact, at its first
    inbound event; an event without a correlation id is a contact of its own."""
    first: dict[tuple[str, str], Contact] = {}
    for row in rows:
        payload = orjson.loads(row["payload_json"])
        if not is_contact(row["type"], row["channel"], payload):
            continue
        found = Contact(row["derived_at"], row["event_id"], row["channel"], row["touchpoint"])
        corr = row["correlation_id"]
        conversation = ("conversation", corr) if corr else ("event", found.event_id)
        if conversation not in first or found < first[conversation]:
            first[conversation] = found
    return sorted(set(first.values()))


def repeats(contacts: Sequence[Contact], window: int = WINDOW_MICROS) -> dict[str, Contact]:
    """Each contact that comes at most `window` after the contact before it, by event id, with
    that earlier contact (the latest one before it)."""
    return {
        later.event_id: earlier
        for earlier, later in pairwise(contacts)
        if later.at - earlier.at <= window
    }


class ContactRef(BaseModel):
    event_id: str
    at: datetime
    channel: str
    touchpoint: str

    @classmethod
    def of(cls, contact: Contact) -> ContactRef:
        return cls(
            event_id=contact.event_id,
            at=from_micros(contact.at),
            channel=contact.channel,
            touchpoint=contact.touchpoint,
        )


class RepeatContact(BaseModel):
    """The customer's latest contact that came within the window after an earlier one."""

    definition: str = Field(
        default=DEFINITION, description="the versioned definition (docs/metrics.md)"
    )
    window_days: int = WINDOW_DAYS
    contact: ContactRef = Field(description="the repeat contact")
    earlier: ContactRef = Field(description="the contact before it, at most window_days earlier")


def latest_repeat(contacts: Sequence[Contact], window: int = WINDOW_MICROS) -> RepeatContact | None:
    """The latest repeat contact among `contacts`; None when none repeats an earlier one."""
    found = repeats(contacts, window)
    later = next((c for c in reversed(contacts) if c.event_id in found), None)
    if later is None:
        return None
    earlier = found[later.event_id]
    return RepeatContact(contact=ContactRef.of(later), earlier=ContactRef.of(earlier))
