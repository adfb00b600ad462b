"""The repeat-contact rule (`repeat_contact@1`) on timeline rows: what a contact is, the window's
edges, conversations, and the members of a merged customer counted together."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from services.projections.repeat_contact import (
    WINDOW_MICROS,
    contacts_of,
    is_contact,
    latest_repeat,
    repeats,
)
from services.projections.timeline import from_micros

DAY = 86_400 * 1_000_000
T0 = 1_780_000_000_000_000


def row(at: int, type_: str = "call.ended", channel: str = "phone", **extra: Any) -> dict[str, Any]:
    payload = extra.pop("payload", {})
    return {
        "event_id": extra.pop("event_id", str(uuid.uuid4())),
        "customer_id": extra.pop("customer_id", "cust-1"),
        "derived_at": at,
        "type": type_,
        "channel": channel,
        "touchpoint": extra.pop("touchpoint", "support_line"),
        "correlation_id": extra.pop("correlation_id", ""),
        "payload_json": orjson.dumps(payload).decode(),
    }


def flagged(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {later: earlier.event_id for later, earlier in repeats(contacts_of(rows)).items()}


@pytest.mark.parametrize(
    ("type_", "channel", "payload", "expected"),
    [
        ("call.offered", "phone", {"queue": "q"}, True),
        ("call.ended", "phone", {"abandoned": True}, True),
        ("call.ended", "phone", {"direction": "outbound"}, False),
        ("call.answered", "phone", {"agent": "bob"}, False),
        ("message.received", "chat", {"text": "hi"}, True),
        ("message.received", "sms", {"sender": "bot"}, False),
        ("message.sent", "chat", {"agent": "bob"}, False),
        ("email.replied", "email", {"message_id": "m"}, True),
        ("email.opened", "email", {"message_id": "m"}, False),
        ("case.opened", "email", {"case_id": "C1"}, True),
        ("case.opened", "phone", {"case_id": "C1"}, False),
        ("store.visited", "store", {"store_id": "S1"}, True),
        ("store.purchased", "store", {"store_id": "S1"}, False),
        ("page.viewed", "web", {"url": "https://x.io"}, False),
        ("survey.answered", "survey", {"kind": "csat", "score": 1}, False),
        ("order.placed", "web", {"order_id": "A1"}, False),
    ],
)
def test_contacts_are_inbound_customer_interactions(
    type_: str, channel: str, payload: dict[str, Any], expected: bool
) -> None:
    assert is_contact(type_, channel, payload) is expected


def test_exactly_seven_days_later_is_a_repeat_one_microsecond_more_is_not() -> None:
    first, at_edge = row(T0), row(T0 + WINDOW_MICROS)
    past_edge = row(T0 + WINDOW_MICROS + 1, "message.received", "chat")
    assert flagged([first, at_edge]) == {at_edge["event_id"]: first["event_id"]}
    assert flagged([first, past_edge]) == {}


def test_non_contacts_between_neither_link_nor_break_the_repeat() -> None:
    first, second = row(T0), row(T0 + 3 * DAY, "message.received", "chat")
    between = [
        row(T0 + DAY, "page.viewed", "web", payload={"url": "https://x.io"}),
        row(T0 + 2 * DAY, "survey.answered", "survey", payload={"kind": "csat", "score": 2}),
        row(T0 + 2 * DAY, "message.sent", "chat", payload={"sender": "agent"}),
    ]
    assert flagged([second, *between, first]) == {second["event_id"]: first["event_id"]}


def test_a_repeat_links_the_latest_earlier_contact_in_any_order() -> None:
    rows = [row(T0), row(T0 + DAY, "store.visited", "store"), row(T0 + 2 * DAY)]
    expected = {rows[1]["event_id"]: rows[0]["event_id"], rows[2]["event_id"]: rows[1]["event_id"]}
    assert flagged(rows) == expected
    assert flagged(rows[::-1]) == expected


def test_one_conversation_is_one_contact_at_its_first_inbound_event() -> None:
    call = [
        row(T0, "call.offered", correlation_id="call-1"),
        row(T0 + 60_000_000, "call.answered", correlation_id="call-1"),
        row(T0 + 600_000_000, "call.ended", correlation_id="call-1"),
    ]
    chat = [
        row(T0 + DAY, "message.sent", "chat", correlation_id="chat-1", payload={"sender": "bot"}),
        row(T0 + DAY + 5, "message.received", "chat", correlation_id="chat-1"),
        row(T0 + DAY + 9, "message.received", "chat", correlation_id="chat-1"),
    ]
    contacts = contacts_of([*chat, *call])
    assert [c.event_id for c in contacts] == [call[0]["event_id"], chat[1]["event_id"]]
    assert flagged([*chat, *call]) == {chat[1]["event_id"]: call[0]["event_id"]}


def test_members_of_a_merged_customer_count_together() -> None:
    by_email = row(T0, "email.replied", "email", customer_id="email:ana@x.io")
    by_phone = row(T0 + 2 * DAY, customer_id="phone:+34600000001")
    assert flagged([by_email, by_phone]) == {by_phone["event_id"]: by_email["event_id"]}


def test_the_profile_names_the_latest_repeat_with_both_contacts() -> None:
    rows = [row(T0), row(T0 + DAY, "message.received", "chat"), row(T0 + 30 * DAY)]
    found = latest_repeat(contacts_of(rows))
    assert found is not None
    assert (found.contact.event_id, found.earlier.event_id) == (
        rows[1]["event_id"],
        rows[0]["event_id"],
    )
    assert (found.contact.channel, found.earlier.channel) == ("chat", "phone")
    assert (found.contact.at, found.earlier.at) == (from_micros(T0 + DAY), from_micros(T0))
    assert (found.definition, found.window_days) == ("repeat_contact@1", 7)
    assert latest_repeat(contacts_of([rows[0], rows[2]])) is None
