"""The alert lifecycle's pure rules: transitions, the event a command publishes, its row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from kernel.ports import Consumed
from kernel.processing import Unfiled, file_events, process_batch
from schemas.envelope import Event
from schemas.families import TENANT_SUBJECT, filed_customer, is_tenant_level
from schemas.validate import accept, encode
from services.projections.projection import ProjectionsProjection
from services.satisfaction.attribution_sql import CUSTOMER_TOUCHPOINTS_TABLE, to_touchpoint_rows
from services.satisfaction.lifecycle import (
    Action,
    Command,
    InvalidTransition,
    Status,
    Subject,
    customer_ref,
    next_status,
    to_action_row,
)

AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        (Status.open, Action.assign, Status.assigned),
        (Status.acknowledged, Action.assign, Status.assigned),  # a reassignment
        (Status.assigned, Action.acknowledge, Status.acknowledged),
        (Status.open, Action.resolve, Status.resolved),
        (Status.acknowledged, Action.resolve, Status.resolved),
    ],
)
def test_allowed_transitions(current: Status, action: Action, expected: Status) -> None:
    assert next_status(current, action) == expected


@pytest.mark.parametrize(
    ("current", "action"),
    [(Status.resolved, a) for a in Action] + [(Status.acknowledged, Action.acknowledge)],
)
def test_refused_transitions(current: Status, action: Action) -> None:
    with pytest.raises(InvalidTransition):
        next_status(current, action)


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        ("cust-1", {"customer_id": "cust-1"}),
        ("email:ana@x.io", {"email": "ana@x.io"}),
        ("phone:+34600000001", {"phone": "+34600000001"}),
        ("anon:d-1", {"anonymous_id": "d-1"}),
        ("ext:shop:42", {"external_ids": {"shop": "42"}}),
    ],
)
def test_a_customer_key_names_its_identifier(key: str, ref: dict[str, object]) -> None:
    assert customer_ref(key) == ref


@pytest.mark.parametrize("customer_id", ["c_abc", "cust-1", "email:ana@x.io", "ext:shop:42"])
def test_the_action_event_names_the_customer_id_the_alert_was_filed_under(
    customer_id: str,
) -> None:
    assert Subject(customer_id).customer() == {"customer_id": f"cem:customer:{customer_id}"}


def test_a_readable_key_too_long_to_name_is_named_by_its_identifier() -> None:
    key = "email:" + "a" * 180 + "@x.io"  # filed under itself without identity all the same
    assert Subject(key).customer() == {"email": key.removeprefix("email:")}


def test_a_resolve_command_is_an_accepted_event_projecting_to_its_row() -> None:
    command = Command(
        Action.resolve, "alert-1", Subject("email:ana@x.io"), "key-9", note="refund sent"
    )
    event, _ = accept(command.to_raw_event(AT), "acme", AT)
    assert (event.type, event.channel.value, event.touchpoint) == (
        "alert.resolved",
        "other",
        "alert_queue",
    )
    row = to_action_row(event)
    assert row == {
        "tenant_id": "acme",
        "alert_id": "alert-1",
        "event_id": str(event.event_id),
        "status": "resolved",
        "assignee": "",
        "note": "refund sent",
        "actor": "key-9",
        "acted_at": int(AT.timestamp()) * 1_000_000,
    }


def test_an_alert_action_is_not_where_the_customer_was_for_attribution() -> None:
    # A manager's action on the customer's timeline must not become the touchpoint that the
    # customer's next uncorrelated survey answer is attributed to (METRICS.md attribution).
    command = Command(
        Action.resolve, "alert-1", Subject("email:ana@x.io"), "key-9", note="called back"
    )
    event, _ = accept(command.to_raw_event(AT), "acme", AT)
    assert to_touchpoint_rows(event, "email:ana@x.io") == {}
    call = dict(command.to_raw_event(AT), type="call.ended", channel="phone", payload={})
    called, _ = accept(call, "acme", AT)
    assert to_touchpoint_rows(called, "email:ana@x.io")[CUSTOMER_TOUCHPOINTS_TABLE]


def drift_action(action: Action, **fields: str) -> Event:
    command = Command(action, "drift-1", Subject(None, "desk-3"), "key-9", **fields)
    event, _ = accept(command.to_raw_event(AT), "acme", AT)
    return event


def test_a_drift_alerts_action_names_its_touchpoint_and_the_tenant_not_a_customer() -> None:
    event = drift_action(Action.resolve, note="rota fixed")
    assert (event.type, event.touchpoint) == ("alert.resolved", "desk-3")
    assert event.customer.customer_id == TENANT_SUBJECT and is_tenant_level(event)
    # The status folds from the same row as an at-risk alert's action.
    row = to_action_row(event)
    assert (row["alert_id"], row["status"], row["note"]) == ("drift-1", "resolved", "rota fixed")
    at_risk = Command(Action.resolve, "a-1", Subject("ana"), "key-9", note="x").to_raw_event(AT)
    assert not is_tenant_level(accept(at_risk, "acme", AT)[0])
    # A channel system's event naming the reserved subject is a customer's like any other.
    call = dict(at_risk, type="call.ended", channel="phone", payload={},
                customer={"customer_id": TENANT_SUBJECT})  # fmt: skip
    assert not is_tenant_level(accept(call, "acme", AT)[0])


class RecordingFiler:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def file(self, events: Sequence[Event]) -> list[str | Unfiled]:
        self.asked += [str(e.event_id) for e in events]
        return [f"home-{e.customer.customer_id}" for e in events]


def call_of(customer: dict[str, str]) -> Event:
    raw = Command(Action.resolve, "a-1", Subject("ana"), "key-9", note="x").to_raw_event(AT)
    call = dict(raw, type="call.ended", channel="phone", payload={}, customer=customer)
    return accept(call, "acme", AT)[0]


def test_a_drift_alerts_action_is_filed_under_the_tenant_without_identity() -> None:
    drift = drift_action(Action.acknowledge)
    person = call_of({"customer_id": "ana"})
    filer = RecordingFiler()
    assert file_events([drift, person, drift], filer) == [
        TENANT_SUBJECT, "home-ana", TENANT_SUBJECT
    ]  # fmt: skip
    assert filer.asked == [str(person.event_id)]
    assert file_events([drift], filer) == [TENANT_SUBJECT] and len(filer.asked) == 1
    assert file_events([drift, person], None) == [TENANT_SUBJECT, "ana"]


def test_no_timeline_profile_or_lookup_shows_a_drift_alerts_action() -> None:
    projection = ProjectionsProjection()
    assert projection.rows(drift_action(Action.acknowledge), TENANT_SUBJECT) == {}
    raw = Command(Action.resolve, "a-1", Subject("ana"), "key-9", note="x").to_raw_event(AT)
    person, _ = accept(raw, "acme", AT)
    assert any(projection.rows(person, "ana").values())  # an at-risk alert's: on the timeline


def at_risk_action(customer_id: str) -> Event:
    command = Command(Action.resolve, "a-1", Subject(customer_id), "key-9", note="called back")
    return accept(command.to_raw_event(AT), "acme", AT)[0]


def test_an_at_risk_alerts_action_is_filed_under_the_alerts_customer_without_identity() -> None:
    # Identity would now file the customer's identifiers elsewhere (merged, split, unlinked, or
    # someone else's since): the action must still land on the alert's customer.
    action, person = at_risk_action("c_alerted"), call_of({"customer_id": "c_alerted"})
    assert filed_customer(action) == "c_alerted" and not is_tenant_level(action)
    filer = RecordingFiler()
    assert file_events([action, person, action], filer) == [
        "c_alerted", "home-c_alerted", "c_alerted"
    ]  # fmt: skip
    assert filer.asked == [str(person.event_id)]
    assert file_events([action], None) == ["c_alerted"]
    # A channel system's event naming the reserved form is an ordinary customer id.
    other = call_of({"customer_id": "cem:customer:c_alerted"})
    assert filed_customer(other) is None
    assert file_events([other], filer) == ["home-cem:customer:c_alerted"]


def test_an_at_risk_alerts_action_is_on_its_customers_timeline_without_identifiers() -> None:
    action = at_risk_action("c_alerted")
    [filed] = file_events([action], RecordingFiler())
    assert isinstance(filed, str)
    rows = ProjectionsProjection().rows(action, filed)
    [entry] = rows["customer_timeline"]
    assert (entry["customer_id"], entry["type"], entry["identifiers"]) == (
        "c_alerted",
        "alert.resolved",
        [],
    )
    # The name it carries is no identifier: no lookup finds the customer by it.
    assert rows["customer_identifiers"] == []
    # Nor a contact of the customer's: a platform fact, no touch (profile.facts_of).
    assert [fact["field"] for fact in rows["profile_facts"]] == ["platform"]


def test_an_action_filed_by_process_batch_without_a_filer_lands_on_the_alerts_customer() -> None:
    action = at_risk_action("email:ana@x.io")
    record = Consumed("touchpoints", 0, 0, b"k", encode(action), ())
    result = process_batch("projections", [record], ProjectionsProjection().rows)
    [entry] = result.rows["customer_timeline"]
    assert entry["customer_id"] == "email:ana@x.io"
