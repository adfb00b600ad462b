"""fcr@1 paired from contact events (`fcr_pairing.py`) gives the cells of the reference rule
(`fcr.py` over timeline rows) on random populations: conversations, cases resolved and reopened,
topics missing or not text, outbound calls and bot messages, ties in time, windows' edges, merged
customers, late events, every bucket. And the contact event of a timeline row holds its facts."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projections.contact_events import contact_event_row, to_contact_event_rows
from services.satisfaction.fcr import fcr_contacts, outcomes
from services.satisfaction.fcr_cells import to_cells
from services.satisfaction.fcr_pairing import columns_of, pair_cells
from services.satisfaction.fcr_sql import known_at

DAY = 86_400 * 1_000_000
T0 = 1_780_000_000_000_000
TOPICS: list[Any] = [None, "billing", "delivery", 5]


def timeline_row(i: int, at: int, customer: str, type_: str, channel: str, payload: dict[str, Any],
                 corr: str = "", received: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "tenant_id": "t1",
        "customer_id": customer,
        "event_id": f"e{i * 7919 % 1000:03d}-{i}",  # ids not in time order
        "derived_at": at,
        "received_at": at + 1_000_000 if received is None else received,
        "type": type_,
        "channel": channel,
        "touchpoint": {"phone": "line", "chat": "web_chat"}.get(channel, "desk"),
        "correlation_id": corr,
        "payload_json": orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(),
    }


def events(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The contact events of timeline rows, by column (all of them: the pairing skips those not
    known as of the moment read)."""
    return columns_of(to_contact_event_rows(rows))


def _with_topic(payload: dict[str, Any], topic: Any) -> dict[str, Any]:
    return payload if topic is None else {**payload, "topic": topic}


def event(i: int, spec: tuple[int, int, int, int, int, int, bool]) -> dict[str, Any]:
    """One event of a population: (half-day, customer, kind, topic, conversation, case, late)."""
    slot, who, kind, topic_at, conv, case_at, late = spec
    at, customer, topic = T0 + slot * DAY // 2, f"c{who}", TOPICS[topic_at]
    who_handled = {"agent": ["ann", "bob"][conv % 2], "queue": ["q1", "q2"][case_at % 2]}
    # Cases name a queue or agent of their own, at times later than the conversation's.
    case = {"case_id": f"K{case_at}", **({"queue": f"q{conv}"} if conv % 3 == 1 else {}),
            **({"agent": "dee"} if conv % 3 == 2 else {})}  # fmt: skip
    chat, call = f"chat-{conv}", f"call-{conv}"
    kinds: list[tuple[str, str, dict[str, Any], str]] = [
        ("call.ended", "phone", _with_topic({"resolved": conv % 3 != 0, **who_handled}, topic), ""),
        ("call.ended", "phone", {"direction": "outbound", "resolved": True}, ""),
        ("message.received", "chat", _with_topic({"text": "hi"}, TOPICS[conv % 4]), chat),
        ("message.sent", "chat", {"sender": "agent", **who_handled}, chat),
        ("case.opened", "email", _with_topic(case, topic), ""),
        ("case.opened", "phone", case, chat),
        ("case.resolved", "other", _with_topic(case, topic), chat if conv % 2 else ""),
        ("case.reopened", "other", case, chat if conv % 3 == 0 else ""),
        ("email.replied", "email", {"message_id": "m"}, ""),
        ("call.offered", "phone", {"queue": "q3"}, call),
        ("call.ended", "phone", _with_topic({"resolved": True, "agent": "cy"}, topic), call),
        ("message.received", "sms", {"sender": "bot", "text": "menu"}, chat),
        # A call in steps (Twilio's callbacks): the agent on the answer, none on the end.
        ("call.answered", "phone", {"agent": "eve", "queue": "q4", "queue_wait_s": 30}, call),
        ("call.ended", "phone", _with_topic({"resolved": True}, topic), call),
    ]
    type_, channel, payload, corr = kinds[kind]
    received = at + (3 * DAY if late else 1_000_000)
    return timeline_row(i, at, customer, type_, channel, payload, corr, received)


SPECS = st.tuples(
    st.integers(0, 40),
    st.integers(0, 3),
    st.integers(0, 13),
    st.integers(0, 3),
    st.integers(0, 6),
    st.integers(0, 4),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(SPECS, min_size=5, max_size=80),
    st.dictionaries(st.sampled_from(["c0", "c1", "c2"]), st.sampled_from(["c3", "c4"])),
    st.integers(0, 20),
    st.integers(1, 20),
    st.integers(0, 70),
    st.sampled_from(["hour", "day", "week", "month", "total"]),
)
def test_pairing_contact_events_equals_the_reference_rule(
    specs: list[tuple[int, int, int, int, int, int, bool]],
    merged: dict[str, str],
    start_day: int,
    days: int,
    as_of_day: int,
    bucket: str,
) -> None:
    rows = [event(i, spec) for i, spec in enumerate(specs)]
    since, until = T0 + start_day * DAY, T0 + (start_day + days) * DAY
    as_of = T0 + as_of_day * DAY // 2 + 1  # between the events' times: both sides of an edge
    known = [r for r in rows if known_at(r, as_of)]
    contacts = fcr_contacts(known, merged)
    expected = to_cells(contacts, outcomes(contacts, as_of), since, until, bucket)
    found = pair_cells(events(rows), merged, as_of, since, until, bucket)
    assert found == expected


def population(seed: int, customers: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    specs = [(rng.randrange(60), rng.randrange(customers), rng.randrange(12), rng.randrange(4),
              rng.randrange(7), rng.randrange(5), rng.random() < 0.1) for _ in range(300)]  # fmt: skip
    return [event(i, spec) for i, spec in enumerate(specs)]


@pytest.mark.parametrize("seed", range(12))
def test_seeded_populations_pair_as_the_reference_rule(seed: int) -> None:
    rows = population(seed, customers=20 + 10 * (seed % 4))
    merged = {f"c{i}": f"c{i + 1}" for i in range(0, 10, 3)}
    for as_of_day, bucket in ((12, "hour"), (27, "day"), (40, "week"), (90, "total")):
        as_of, since, until = T0 + as_of_day * DAY, T0 + 5 * DAY, T0 + 25 * DAY
        known = [r for r in rows if known_at(r, as_of)]
        cells = pair_cells(events(rows), merged, as_of, since, until, bucket)
        contacts = fcr_contacts(known, merged)
        assert cells == to_cells(contacts, outcomes(contacts, as_of), since, until, bucket)


def test_a_seeded_population_reaches_every_outcome() -> None:
    """The comparisons above see every outcome, not only empty cells."""
    rows = population(2, customers=60)
    as_of, since, until = T0 + 27 * DAY, T0 + 5 * DAY, T0 + 25 * DAY
    cells = pair_cells(events(rows), {"c0": "c3"}, as_of, since, until, "day")
    names = ("fcr_final", "fcr_provisional", "repeated", "repeat_contacts")
    assert all(sum(getattr(c, name) for c in cells) for name in names)


def test_a_contact_event_holds_the_facts_its_payload_tells() -> None:
    call = timeline_row(1, T0, "ana", "call.ended", "phone",
                        {"resolved": True, "topic": "billing", "agent": "bob", "queue": 7})  # fmt: skip
    assert contact_event_row(call) == {
        "tenant_id": "t1", "customer_id": "ana", "derived_at": T0, "event_id": call["event_id"],
        "received_at": T0 + 1_000_000, "channel": "phone", "touchpoint": "line",
        "correlation_id": "", "contact": 1, "resolves": 1, "reopens": 0, "topic": "billing",
        "case_id": "", "agent": "bob", "queue": "",
    }  # fmt: skip
    reopened = timeline_row(2, T0, "ana", "case.reopened", "other", {"case_id": "K1"}, "c-1")
    found = contact_event_row(reopened) or {}
    assert {k: found[k] for k in ("contact", "resolves", "reopens", "case_id", "correlation_id")} == {
        "contact": 0, "resolves": 0, "reopens": 1, "case_id": "K1", "correlation_id": "c-1"
    }  # fmt: skip
    bot = timeline_row(3, T0, "ana", "message.received", "chat", {"sender": "bot"})
    assert contact_event_row(bot)["contact"] == 0  # type: ignore[index]
    viewed = timeline_row(4, T0, "ana", "page.viewed", "web", {"url": "https://x.io"})
    assert contact_event_row(viewed) is None


def cells_both_ways(rows: list[dict[str, Any]], as_of: int) -> list[tuple[str, int, int, int]]:
    """(channel, fcr_final, repeated, resolved first contacts) of the first day's cells, paired
    from contact events, after checking that the reference rule gives the same cells."""
    contacts = fcr_contacts(rows)
    expected = to_cells(contacts, outcomes(contacts, as_of), T0, T0 + DAY, "total")
    found = pair_cells(events(rows), None, as_of, T0, T0 + DAY, "total")
    assert found == expected
    return [(c.channel, c.fcr_final, c.repeated, c.resolved_first_contacts) for c in found]


def test_a_case_tells_its_conversations_topic_and_a_shared_case_is_the_same_topic() -> None:
    as_of = T0 + 30 * DAY
    # Ana's chat names no topic; its case, resolved apart from the chat, is about billing: her
    # unresolved call about delivery two days later does not repeat it.
    ana = [
        timeline_row(1, T0, "ana", "message.received", "chat", {"text": "hi"}, "chat-1"),
        timeline_row(2, T0 + 60, "ana", "case.opened", "phone", {"case_id": "K1"}, "chat-1"),
        timeline_row(3, T0 + 90, "ana", "case.resolved", "other",
                     {"case_id": "K1", "topic": "billing"}),
        timeline_row(4, T0 + 2 * DAY, "ana", "call.ended", "phone", {"topic": "delivery"}),
    ]  # fmt: skip
    assert cells_both_ways(ana, as_of) == [("chat", 1, 0, 1)]
    # Leo's call about billing and his email about delivery two days later share a case: the
    # same topic, so the call was not FCR.
    leo = [
        timeline_row(5, T0, "leo", "call.ended", "phone",
                     {"resolved": True, "topic": "billing"}, "call-5"),
        timeline_row(6, T0 + 60, "leo", "case.opened", "phone", {"case_id": "K2"}, "call-5"),
        timeline_row(7, T0 + 2 * DAY, "leo", "email.replied", "email", {"topic": "delivery"},
                     "mail-7"),
        timeline_row(8, T0 + 2 * DAY, "leo", "case.opened", "other", {"case_id": "K2"}, "mail-7"),
    ]  # fmt: skip
    assert cells_both_ways(leo, as_of) == [("phone", 0, 1, 1)]


def test_a_reopen_exactly_seven_days_later_counts_and_a_microsecond_more_does_not() -> None:
    def call_reopened_after(delay: int) -> list[dict[str, Any]]:
        call = {"resolved": True, "topic": "refund"}
        return [
            timeline_row(1, T0, "mia", "call.ended", "phone", call, "call-1"),
            timeline_row(2, T0, "mia", "case.opened", "phone", {"case_id": "K3"}, "call-1"),
            timeline_row(3, T0 + delay, "mia", "case.reopened", "other", {"case_id": "K3"}),
        ]

    as_of = T0 + 30 * DAY
    assert cells_both_ways(call_reopened_after(7 * DAY), as_of) == [("phone", 0, 1, 1)]
    assert cells_both_ways(call_reopened_after(7 * DAY + 1), as_of) == [("phone", 1, 0, 1)]


def test_a_call_in_steps_is_its_answering_agents_and_queues() -> None:
    # Twilio's callbacks: offered to q3, answered by eve (in q4), ended naming neither.
    call = [
        timeline_row(1, T0, "ana", "call.offered", "phone", {"queue": "q3"}, "call-1"),
        timeline_row(2, T0 + 60, "ana", "call.answered", "phone",
                     {"agent": "eve", "queue": "q4", "queue_wait_s": 60}, "call-1"),
        timeline_row(3, T0 + 600, "ana", "call.ended", "phone", {"resolved": True}, "call-1"),
    ]  # fmt: skip
    as_of = T0 + 30 * DAY
    contacts = fcr_contacts(call)
    expected = to_cells(contacts, outcomes(contacts, as_of), T0, T0 + DAY, "total")
    found = pair_cells(events(call), None, as_of, T0, T0 + DAY, "total")
    assert found == expected
    assert [(c.queue, c.agent, c.contacts, c.fcr_final) for c in found] == [("q4", "eve", 1, 1)]
    # An answer is no contact of its own, and an end naming its agent is its own agent's.
    assert contact_event_row(call[1])["contact"] == 0  # type: ignore[index]
    named = [*call[:2], timeline_row(4, T0 + 600, "ana", "call.ended", "phone",
                                     {"resolved": True, "agent": "bob"}, "call-1")]  # fmt: skip
    [cell] = pair_cells(events(named), None, as_of, T0, T0 + DAY, "total")
    assert (cell.queue, cell.agent) == ("q4", "bob")
