"""fcr@1 on timeline rows, by hand: resolution, topics, the 7-day window's edge (exactly 7 days
later is a repeat), provisional then final, first contacts, and the cells' percentages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projections.repeat_contact import WINDOW_MICROS
from services.satisfaction.buckets import bucket_start
from services.satisfaction.fcr import fcr_contacts, outcomes, same_topic
from services.satisfaction.fcr_cells import to_cells
from tests.unit.test_repeat_contact import row

DAY = 86_400 * 1_000_000
T0 = 1_780_000_000_000_000  # 2026-05-28T20:26:40Z


def resolved_call(at: int, topic: str | None = "billing", **extra: Any) -> dict[str, Any]:
    payload = {"resolved": True, "agent": "ana", "queue": "q1"}
    if topic:
        payload["topic"] = topic
    return row(at, payload=payload, **extra)


def statuses(
    rows: list[dict[str, Any]], as_of: int, canonical: dict[str, str] | None = None
) -> dict[str, tuple[str, str | None]]:
    found = outcomes(fcr_contacts(rows, canonical), as_of)
    return {o.contact.contact.event_id: (o.status, o.repeat_event_id) for o in found}


def test_a_resolved_call_is_provisional_for_seven_days_then_final() -> None:
    call = resolved_call(T0, event_id="call")
    assert statuses([call], T0 + DAY) == {"call": ("fcr_provisional", None)}
    # The window is inclusive: at exactly 7 days a contact could still repeat it.
    assert statuses([call], T0 + WINDOW_MICROS) == {"call": ("fcr_provisional", None)}
    assert statuses([call], T0 + WINDOW_MICROS + 1) == {"call": ("fcr_final", None)}


def test_a_repeat_exactly_seven_days_later_is_not_fcr_and_a_microsecond_more_is() -> None:
    call = resolved_call(T0, event_id="call")
    edge = row(T0 + WINDOW_MICROS, "message.received", "chat", event_id="chat")
    assert statuses([call, edge], T0 + DAY * 30) == {"call": ("repeated", "chat")}
    late = row(T0 + WINDOW_MICROS + 1, "message.received", "chat", event_id="chat")
    assert statuses([call, late], T0 + DAY * 30) == {"call": ("fcr_final", None)}


def test_a_repeat_is_final_at_once_even_inside_the_window() -> None:
    call = resolved_call(T0, event_id="call")
    again = resolved_call(T0 + DAY, event_id="again")
    # The second call repeats the first (same topic), so it is not a first contact itself.
    assert statuses([call, again], T0 + 2 * DAY) == {"call": ("repeated", "again")}


def test_another_topic_does_not_repeat_but_an_unknown_topic_does() -> None:
    call = resolved_call(T0, "billing", event_id="call")
    delivery = resolved_call(T0 + DAY, "delivery", event_id="delivery")
    unknown = row(T0 + 2 * DAY, "store.visited", "store", payload={"store_id": "S1"})
    assert statuses([call, delivery], T0 + DAY * 30) == {
        "call": ("fcr_final", None),
        "delivery": ("fcr_final", None),
    }
    unknown["event_id"] = "visit"
    assert statuses([call, delivery, unknown], T0 + DAY * 30) == {
        "call": ("repeated", "visit"),
        "delivery": ("repeated", "visit"),
    }


def test_another_customer_never_repeats_a_contact() -> None:
    call = resolved_call(T0, event_id="call")
    stranger = row(T0 + DAY, "message.received", "chat", customer_id="cust-2")
    assert statuses([call, stranger], T0 + DAY * 30) == {"call": ("fcr_final", None)}


def test_members_of_a_merged_customer_repeat_each_other_on_any_channel() -> None:
    # A call filed under the phone's customer, an email two days later filed under the email's;
    # the two were merged afterwards (the email's customer survived).
    call = resolved_call(T0, event_id="call", customer_id="by-phone")
    mail = row(T0 + 2 * DAY, "email.replied", "email", event_id="mail", customer_id="by-mail")
    assert statuses([call, mail], T0 + DAY * 30) == {"call": ("fcr_final", None)}
    merged = {"by-phone": "by-mail"}
    assert statuses([call, mail], T0 + DAY * 30, merged) == {"call": ("repeated", "mail")}
    [first, _] = fcr_contacts([call, mail], merged)
    assert first.customer_id == "by-mail"


def test_a_case_reopened_within_the_window_is_not_fcr() -> None:
    case = {"case_id": "K", "topic": "refund"}
    opened = row(T0, "case.opened", "email", event_id="mail", payload=case)
    done = row(T0 + DAY, "case.resolved", "other", payload=case)
    reopened = row(T0 + 2 * DAY, "case.reopened", "other", event_id="reopen", payload=case)
    assert statuses([opened, done, reopened], T0 + DAY * 30) == {"mail": ("repeated", "reopen")}
    # Final at once, inside the window, even when resolved again afterwards.
    again = row(T0 + 3 * DAY, "case.resolved", "other", payload=case)
    assert statuses([opened, done, reopened, again], T0 + 4 * DAY) == {
        "mail": ("repeated", "reopen")
    }
    # Not known yet as of a moment before the reopen: FCR so far.
    assert statuses([opened, done], T0 + 2 * DAY - 1) == {"mail": ("fcr_provisional", None)}
    # A reopen after the window does not undo a resolution that held for 7 days.
    late = row(T0 + WINDOW_MICROS + 1, "case.reopened", "other", payload=case)
    assert statuses([opened, done, late], T0 + DAY * 30) == {"mail": ("fcr_final", None)}


def test_a_reopen_counts_against_the_contact_whose_case_it_is_even_of_a_chat() -> None:
    chat = {"correlation_id": "chat-9"}
    first = row(T0, "message.received", "chat", event_id="m1", **chat)
    done = row(T0 + 1, "case.resolved", "chat", payload={"case_id": "K9"}, **chat)
    reopened = row(T0 + DAY, "case.reopened", "other", event_id="r", payload={"case_id": "K9"})
    assert statuses([first, done, reopened], T0 + DAY * 30) == {"m1": ("repeated", "r")}


def test_unresolved_contacts_and_calls_resolved_false_are_not_in_the_denominator() -> None:
    unresolved = row(T0, payload={"topic": "billing", "resolved": False})
    silent = row(T0 + DAY, "message.received", "chat")
    assert statuses([unresolved, silent], T0 + DAY * 30) == {}


def test_a_case_resolved_later_resolves_the_email_that_opened_it() -> None:
    opened = row(T0, "case.opened", "email", event_id="mail", payload={"case_id": "K1"})
    done = row(T0 + 2 * DAY, "case.resolved", "other", payload={"case_id": "K1", "topic": "refund"})
    assert statuses([opened], T0 + DAY * 30) == {}
    [contact] = fcr_contacts([opened, done])
    assert (contact.topics, contact.cases, contact.resolved) == ({"refund"}, {"K1"}, True)
    assert statuses([opened, done], T0 + DAY * 30) == {"mail": ("fcr_final", None)}


def test_a_chat_resolved_by_a_case_with_its_correlation_id_is_one_contact() -> None:
    chat = {"correlation_id": "chat-1"}
    first = row(T0, "message.received", "chat", event_id="m1", **chat)
    second = row(T0 + 60_000_000, "message.received", "chat", **chat)
    done = row(T0 + 120_000_000, "case.resolved", "chat", payload={"case_id": "K2"}, **chat)
    assert statuses([first, second, done], T0 + DAY) == {"m1": ("fcr_provisional", None)}


def test_a_resolved_contact_that_repeats_an_earlier_one_is_not_a_first_contact() -> None:
    first = row(T0, payload={"topic": "billing"}, event_id="first")  # not resolved
    second = resolved_call(T0 + 3 * DAY, event_id="second")
    assert statuses([first, second], T0 + DAY * 30) == {}
    # Eight days apart it is a first contact again.
    later = resolved_call(T0 + 8 * DAY, event_id="later")
    assert statuses([first, later], T0 + DAY * 30) == {"later": ("fcr_final", None)}


def test_same_topic_by_shared_case_or_topic() -> None:
    rows = [
        row(T0, payload={"topic": "a", "case_id": "K"}),
        row(T0 + 1, payload={"topic": "b", "case_id": "K"}, correlation_id="x"),
        row(T0 + 2, payload={"topic": "b"}, correlation_id="y"),
        row(T0 + 3, payload={"topic": "c"}, correlation_id="z"),
    ]
    a, b, b2, c = fcr_contacts(rows)
    # a and b share the case K (so each carries both topics): same topic.
    assert same_topic(a, b) and same_topic(b, b2) and same_topic(a, b2)
    assert not same_topic(b2, c)


def test_cells_count_fcr_and_repeat_rate_per_touchpoint_channel_queue_agent() -> None:
    # Day 0: three resolved calls on the support line (queue q1, agent ana) from three customers;
    # one of them calls back the next day (same topic): FCR 2 / 3, one repeat among 4 contacts.
    rows = [resolved_call(T0 + i, customer_id=f"c{i}") for i in range(3)]
    rows.append(row(T0 + DAY, payload={"topic": "billing"}, customer_id="c0", event_id="back"))
    contacts = fcr_contacts(rows)
    day0 = bucket_start(T0, "day", 0) * 1_000_000
    as_of = T0 + 2 * DAY
    cells = to_cells(contacts, outcomes(contacts, as_of), day0, day0 + 3 * DAY, "total")
    assert len(cells) == 2
    calls = next(c for c in cells if c.agent == "ana")
    assert (calls.contacts, calls.resolved_first_contacts) == (3, 3)
    assert (calls.fcr_provisional, calls.fcr_final, calls.repeated) == (2, 0, 1)
    assert calls.fcr.value == pytest.approx(200 / 3) and calls.fcr.n == 3
    assert not calls.final
    back = next(c for c in cells if c.agent == "")
    assert (back.contacts, back.repeat_contacts, back.repeat_contact_rate.value) == (1, 1, 100.0)
    assert back.fcr.value is None and back.fcr.n == 0
    later = to_cells(contacts, outcomes(contacts, T0 + 9 * DAY), day0, day0 + 3 * DAY, "total")
    assert next(c for c in later if c.agent == "ana").final


def test_buckets_are_utc_hours_days_iso_weeks_and_months() -> None:
    at = T0  # Thursday 2026-05-28 20:26:40 UTC
    assert bucket_start(at, "hour", 0) == 1_779_998_400
    assert bucket_start(at, "day", 0) == 1_779_926_400
    assert bucket_start(at, "week", 0) == 1_779_926_400 - 3 * 86_400
    assert bucket_start(at, "month", 0) == 1_777_593_600
    assert bucket_start(at, "total", 5_000_000) == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5), st.integers(0, 3)), max_size=25),
       st.randoms(use_true_random=False))  # fmt: skip
def test_outcomes_do_not_depend_on_the_order_rows_arrive(
    specs: list[tuple[int, int, int]], rng: Any
) -> None:
    # (day, customer, kind): a resolved call about billing or delivery, a chat, an unresolved call.
    kinds = [
        lambda at, who: resolved_call(at, "billing", customer_id=who),
        lambda at, who: resolved_call(at, "delivery", customer_id=who),
        lambda at, who: row(at, "message.received", "chat", customer_id=who),
        lambda at, who: row(at, payload={"topic": "billing"}, customer_id=who),
    ]
    rows = [kinds[k](T0 + day * DAY // 2, f"c{who}") for day, who, k in specs]
    shuffled = rng.sample(rows, len(rows))
    as_of = T0 + 8 * DAY
    assert statuses(shuffled, as_of) == statuses(rows, as_of)
    assert fcr_contacts(shuffled) == fcr_contacts(rows)
