"""Profile facts and the read-time fold: what a CRM knows about a customer, in any arrival order."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.validate import accept
from services.projections.profile import (
    FactGroup,
    fold_profile,
    format_units,
    to_profile_facts,
    to_units,
)
from services.projections.value import Signals, customer_value

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CUSTOMER = {"customer_id": "cust-1", "email": "Ana@Shop.es"}


def event(
    event_type: str, channel: str, payload: dict[str, Any], minutes: int, **envelope: Any
) -> Event:
    at = T0 + timedelta(minutes=minutes)
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": channel,
        "type": event_type,
        "customer": envelope.pop("customer", CUSTOMER),
        "occurred_at": at.isoformat(),
        "payload": payload,
        **envelope,
    }
    accepted, _ = accept(raw, "acme", at + timedelta(seconds=1))
    return accepted


def combine(fact_rows: Iterable[dict[str, Any]]) -> list[FactGroup]:
    """What the read query does, written plainly: dedup by (field, key, event_id), then per
    (field, key) count, sum, min, max and latest by (derived_at, event_id)."""
    unique = {(r["field"], r["key"], r["event_id"]): r for r in fact_rows}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in unique.values():
        groups[(row["field"], row["key"])].append(row)
    return [_group(field, key, rows) for (field, key), rows in groups.items()]


def _group(field: str, key: str, rows: list[dict[str, Any]]) -> FactGroup:
    latest = max(rows, key=lambda r: (r["derived_at"], r["event_id"]))
    return FactGroup(
        field=field,
        key=key,
        n=len(rows),
        total=sum(r["num_value"] for r in rows),
        first_at=min(r["derived_at"] for r in rows),
        last_at=latest["derived_at"],
        latest_str=latest["str_value"],
        latest_num=latest["num_value"],
        latest_event=latest["event_id"],
    )


def story() -> list[Event]:
    """A month of one customer: orders in two currencies, a return, surveys, two cases."""
    order = {"currency": "EUR", "items": 1}
    return [
        event("page.viewed", "web", {"url": "https://shop.example/"}, 0, touchpoint="home"),
        event("order.placed", "web", {**order, "order_id": "A", "amount": "129.90",
                                      "attributes": {"name": "Ana García"}}, 5),
        event("order.placed", "web", {**order, "order_id": "B", "amount": "20.1", "attributes":
                                      {"first_name": "Ana", "last_name": "García López"}}, 6),
        event("store.purchased", "store", {"store_id": "p1", "amount": "7.5", "currency": "USD"}, 60),
        event("order.returned", "web", {**order, "order_id": "B", "amount": "20.10"}, 90),
        event("case.opened", "email", {"case_id": "C1", "subject": "Lid"}, 100),
        event("survey.answered", "survey", {"kind": "csat", "score": 2}, 110, touchpoint="delivery"),
        event("case.resolved", "email", {"case_id": "C1"}, 120),
        event("case.opened", "chat", {"case_id": "C2", "topic": "refund"}, 130),
        event("survey.answered", "survey", {"kind": "csat", "score": 5}, 140, touchpoint="delivery"),
        event("call.ended", "phone", {"agent": "ana", "talk_s": 60}, 150, touchpoint="support_line",
              customer={**CUSTOMER, "phone": "+33 6 00 00 00 01"}),
    ]  # fmt: skip


def profile_of(events: Iterable[Event]) -> Any:
    rows = [row for ev in events for row in to_profile_facts(ev)]
    return fold_profile("cust-1", combine(rows))


def test_profile_of_a_customer_month() -> None:
    profile = profile_of(story())
    assert profile is not None
    assert profile.events == 11
    assert profile.first_seen == T0 and profile.last_seen == T0 + timedelta(minutes=150)
    assert (profile.last_channel, profile.last_touchpoint) == ("phone", "support_line")
    assert [(c.channel, c.events) for c in profile.channels] == [
        ("web", 4), ("email", 2), ("survey", 2), ("chat", 1), ("phone", 1), ("store", 1),
    ]  # fmt: skip
    assert profile.orders.count == 3 and profile.orders.returns == 1
    [eur, usd] = profile.orders.by_currency
    assert (eur.currency, eur.orders, eur.amount) == ("EUR", 2, "150.00")
    assert (eur.returns, eur.returned_amount, eur.net_amount) == (1, "20.10", "129.90")
    assert (usd.currency, usd.orders, usd.amount, usd.net_amount) == ("USD", 1, "7.50", "7.50")
    csat = profile.satisfaction.csat
    assert csat is not None
    assert (csat.score, csat.scale, csat.responses) == (5, "1-5", 2)
    assert csat.at == T0 + timedelta(minutes=140)
    assert profile.satisfaction.nps is None and profile.satisfaction.ces is None
    assert [(c.case_id, c.subject) for c in profile.open_cases] == [("C2", "refund")]
    assert profile.open_cases[0].opened_at == T0 + timedelta(minutes=130)
    assert profile.identifiers == [
        "customer_id:cust-1", "email:ana@shop.es", "phone:+33600000001",
    ]  # fmt: skip
    assert profile.name == "Ana García López"


def test_a_return_that_moved_no_money_counts_without_a_currency_of_its_own() -> None:
    # A Shopify refund with no transaction (items sent back, nothing paid back) names no
    # currency: it is stored in `XXX` (ISO 4217: no currency involved), counted as a return,
    # and shows no "0 XXX" spend line beside the customer's real currencies.
    profile = profile_of([
        event("order.placed", "web", {"order_id": "O1", "amount": "40", "currency": "EUR"}, 0),
        event("order.returned", "web", {"order_id": "O1", "amount": "0", "currency": "XXX"}, 10),
    ])  # fmt: skip
    assert profile.orders.count == 1 and profile.orders.returns == 1
    assert [(s.currency, s.amount, s.net_amount) for s in profile.orders.by_currency] == [
        ("EUR", "40.00", "40.00")
    ]


def named(name: dict[str, str], minutes: int) -> Event:
    order = {"order_id": f"O{minutes}", "amount": "10", "currency": "EUR", "attributes": name}
    return event("order.placed", "web", order, minutes)


def test_the_name_is_the_one_given_most_often_as_last_written() -> None:
    # Ana gives her name three ways that are one spelling, her daughter's checkout once on her
    # account gives another: the header says Ana's, as she last wrote it.
    events = [
        named({"name": "ana  garcía"}, 0),
        named({"first_name": "Lucía", "last_name": "Ruiz García"}, 10),
        named({"name": "ANA GARCIA"}, 20),
        named({"first_name": "Ana", "last_name": "García"}, 30),
        named({"name": "-"}, 40),  # no name: placeholders a till or an agent types
        named({"name": "n/a"}, 41),
        named({"name": "Consumidor Final"}, 42),
        named({"first_name": "Sin", "last_name": "nombre"}, 43),
    ]
    profile = profile_of(events)
    assert profile is not None and profile.name == "Ana García"
    assert profile_of([*events, named({"name": "Lucía Ruiz"}, 50)]).name == "Ana García"
    assert profile_of(story()[:1]).name is None  # no touchpoint gave one
    # On a tie, the fuller name; as full, the one given last.
    assert profile_of(events[:2]).name == "Lucía Ruiz García"
    assert profile_of([events[0], named({"name": "Lucía Ruiz"}, 5)]).name == "Lucía Ruiz"
    # A shorter and a fuller form of one name count together, shown in the fuller form.
    mother = [
        named({"name": n}, m)
        for n, m in (
            ("Ana García", 70),
            ("Ana García López", 71),
            ("ana garcia", 72),
            ("Ana García López", 73),
        )
    ]
    daughter = [named({"name": "Lucía Ruiz"}, m) for m in (80, 81, 82)]
    assert profile_of([*mother, *daughter]).name == "Ana García López"
    # Father and son given the same short form: the form both share, not either full name.
    family = [
        named({"name": n}, m)
        for n, m in (
            ("José García", 90),
            ("José García", 91),
            ("José García López", 92),
            ("José García Ruiz", 93),
        )
    ]
    assert profile_of(family).name == "José García"
    # `Ma.` is how María is shortened (as `Mª`): one person's name, as identity reads it.
    dolores = [
        named({"name": n}, m)
        for n, m in (("Ma. Dolores Rojas", 100), ("Mª Dolores Rojas Pérez", 101))
    ]
    lucia = [named({"name": "Lucía Ruiz"}, m) for m in (102, 103)]
    assert profile_of([*dolores, *lucia]).name == "Mª Dolores Rojas Pérez"
    # Invisible characters are not shown: a zero-width space is a space, an override is dropped.
    hidden = [named({"name": "Ana\u200bGarcía\u202e"}, 60)]
    assert profile_of(hidden).name == "Ana García"


def test_a_reopened_case_is_open_again_and_keeps_its_subject() -> None:
    events = [
        event("case.opened", "email", {"case_id": "C1", "subject": "Lid"}, 0),
        event("case.resolved", "email", {"case_id": "C1"}, 10),
        event("case.reopened", "phone", {"case_id": "C1"}, 20),
    ]
    [case] = profile_of(events).open_cases
    assert (case.case_id, case.subject) == ("C1", "Lid")
    assert (case.opened_at, case.updated_at) == (T0, T0 + timedelta(minutes=20))
    assert profile_of(events[:2]).open_cases == []


def test_events_at_the_same_instant_are_ordered_by_event_id() -> None:
    tied = [event("survey.answered", "survey", {"kind": "nps", "score": s}, 0) for s in (3, 10)]
    newest = max(tied, key=lambda e: str(e.event_id))
    nps = profile_of(tied).satisfaction.nps
    assert nps.score == newest.payload["score"] and nps.responses == 2


@settings(max_examples=40)
@given(seed=st.integers(), copies=st.integers(min_value=1, max_value=3))
def test_profile_is_the_same_for_any_order_and_any_duplication(seed: int, copies: int) -> None:
    events = story()
    rows = [row for ev in events for row in to_profile_facts(ev)]
    shuffled = rows * copies
    random.Random(seed).shuffle(shuffled)
    groups = combine(shuffled)
    random.Random(seed + 1).shuffle(groups)
    assert fold_profile("cust-1", groups) == profile_of(events)


def test_a_customer_without_facts_has_no_profile() -> None:
    assert fold_profile("nobody", []) is None


def test_facts_are_unique_per_event_field_and_key() -> None:
    for ev in story():
        facts = to_profile_facts(ev)
        assert len({(r["field"], r["key"]) for r in facts}) == len(facts)
        assert {r["event_id"] for r in facts} == {str(ev.event_id)}
        assert {r["derived_at"] for r in facts} == {to_micros(ev.derived_at)}


def test_custom_events_count_as_activity_only() -> None:
    ev = event("custom.loyalty.joined", "web", {"tier": "gold"}, 0, touchpoint="loyalty")
    assert {r["field"] for r in to_profile_facts(ev)} == {"touch", "identifier"}


@pytest.mark.parametrize(
    ("amount", "units"),
    [("0", 0), ("0.0001", 1), ("129.90", 1_299_000), ("1e12", 10**16), ("7.5", 75_000)],
)
def test_money_is_kept_as_exact_integers(amount: str, units: int) -> None:
    assert to_units(Decimal(amount)) == units


def test_money_never_rounds() -> None:
    with pytest.raises(ValueError, match="4 decimal places"):
        to_units(Decimal("0.00001"))


@pytest.mark.parametrize(
    ("units", "text"),
    [(0, "0.00"), (1, "0.0001"), (1_299_000, "129.90"), (-30_000, "-3.00"), (123_450, "12.345"),
     (10**16, "1000000000000.00")],
)  # fmt: skip
def test_money_is_reported_as_a_decimal_string(units: int, text: str) -> None:
    assert format_units(units) == text


@settings(max_examples=50)
@given(amounts=st.lists(st.decimals(min_value=0, max_value=10**9, places=4), max_size=20))
def test_sums_of_units_are_exact(amounts: list[Decimal]) -> None:
    total = sum(to_units(a) for a in amounts)
    assert Decimal(format_units(total)) == sum(amounts, Decimal(0))


def test_working_an_alert_is_no_contact_of_the_customers() -> None:
    # A manager resolving the customer's alert: on the timeline, but the header's last contact,
    # channels and event count stay the customer's own (a browser review saw "other" and a
    # contact a minute ago).
    answered = event("survey.answered", "survey", {"kind": "csat", "score": 1, "survey_id": "s"},
                     0, touchpoint="line")  # fmt: skip
    resolved = event("alert.resolved", "other", {"alert_id": "a-1", "actor": "user:m@x.es",
                     "note": "refund sent"}, 30, touchpoint="alert_queue",
                     customer={"customer_id": "cem:customer:cust-1"})  # fmt: skip
    assert "touch" not in {r["field"] for r in to_profile_facts(resolved)}
    profile = profile_of([answered, resolved])
    assert (profile.events, profile.last_channel, profile.last_touchpoint) == (1, "survey", "line")
    assert profile.last_seen == answered.derived_at
    assert [c.channel for c in profile.channels] == ["survey"]


def test_a_customer_left_with_platform_events_only_still_has_a_profile_without_contacts() -> None:
    # An erased customer keeps only its erasure's rows (and a customer whose contacts passed
    # retention, its alert actions): it still exists, with no contact (a review found the
    # erasure's export and the console answering 404 once platform events made no touch fact).
    erased = event("customer.erased", "other", {"erasure_reason": "GDPR", "actor": "user:7f3a"}, 10,
                   touchpoint="erasure", customer={"customer_id": "cem:customer:cust-1"})  # fmt: skip
    profile = profile_of([erased])
    assert profile is not None
    assert (profile.events, profile.last_channel, profile.channels) == (0, "", [])
    assert profile.first_seen == profile.last_seen == erased.derived_at
    # Its value reads too (the export holds it): no channel preferred.
    value = customer_value(profile, Signals(), erased.derived_at)
    assert (value.preferred_channel, value.channels_used) == ("", [])
