"""The alert lifecycle: a manager assigns, acknowledges and resolves alerts.

Each action is an event on the log (`alert.assigned`, `alert.acknowledged`, `alert.resolved`), so
it survives a replay. On an at-risk alert the event is about the alert's customer and appears on
the customer's timeline: it names the customer id the alert was filed under (`filed_subject`),
which the filing stage files it under as it is, without identity, so the action stays with that
customer even when its identifiers have been merged, split or unlinked since, or belong to someone
else now. A drift alert is about a touchpoint: its event names that touchpoint and
the tenant-level subject `TENANT_SUBJECT` instead of a customer, which the filing stage files as it
is (no identity) and no timeline shows. Either way an alert's status is a projection of those
events (`alert_actions` rows), folded at read time by the latest action, like every other
projection here (order independent).

Pure: the transition rule, the raw event a command publishes, and the rows an event projects to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.families import TENANT_SUBJECT, AlertAction, AlertAssigned, filed_subject
from services.projections.lookup import key_lookup

ALERT_TYPES = {"alert.assigned": "assigned", "alert.acknowledged": "acknowledged",
               "alert.resolved": "resolved"}  # fmt: skip
SOURCE_ID = "cem-console"
# Where the actions appear on a timeline (a touchpoint is a required, stable name).
TOUCHPOINT = "alert_queue"


class Status(StrEnum):
    open = "open"
    assigned = "assigned"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Action(StrEnum):
    assign = "assign"
    acknowledge = "acknowledge"
    resolve = "resolve"


# From which statuses each action may be taken, and the status it leads to. A reassignment is an
# assignment; a resolved alert is closed for good (a new poor answer raises a new alert).
_ALLOWED: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.assign: (
        frozenset({Status.open, Status.assigned, Status.acknowledged}),
        Status.assigned,
    ),
    Action.acknowledge: (frozenset({Status.open, Status.assigned}), Status.acknowledged),
    Action.resolve: (
        frozenset({Status.open, Status.assigned, Status.acknowledged}),
        Status.resolved,
    ),
}
EVENT_TYPES = {Action.assign: "alert.assigned", Action.acknowledge: "alert.acknowledged",
               Action.resolve: "alert.resolved"}  # fmt: skip


class InvalidTransition(ValueError):
    """The action cannot be taken from the alert's current status."""


def next_status(current: Status, action: Action) -> Status:
    allowed, target = _ALLOWED[action]
    if current not in allowed:
        raise InvalidTransition(f"cannot {action.value} an alert that is {current.value}")
    return target


def customer_ref(customer_id: str) -> dict[str, Any]:
    """The identifiers a customer key names (`email:ana@x.io` names its email): how an action
    names a customer whose id is too long for `filed_subject` (only a readable key of the rule
    mode runs that long, and there an event is filed under its key without identity)."""
    kind, value = key_lookup(customer_id)
    if kind.startswith("external:"):
        return {"external_ids": {kind.removeprefix("external:"): value}}
    return {kind: value}


@dataclass(frozen=True)
class Subject:
    """What an alert is about: a customer (at-risk alerts), or a touchpoint (drift alerts, whose
    `customer_id` is None)."""

    customer_id: str | None
    touchpoint: str = TOUCHPOINT

    def customer(self) -> dict[str, Any]:
        if self.customer_id is None:
            return {"customer_id": TENANT_SUBJECT}
        filed = filed_subject(self.customer_id)
        return {"customer_id": filed} if filed is not None else customer_ref(self.customer_id)


@dataclass(frozen=True)
class Command:
    """One manager action on one alert."""

    action: Action
    alert_id: str
    subject: Subject
    actor: str
    note: str | None = None
    assignee: str | None = None

    def to_raw_event(self, at: datetime) -> dict[str, Any]:
        """The event as a producer would send it (validated by the same `accept` as ingest)."""
        payload: dict[str, Any] = {"alert_id": self.alert_id, "actor": self.actor}
        if self.note is not None:
            payload["note"] = self.note
        if self.assignee is not None:
            payload["assignee"] = self.assignee
        return {
            "event_id": str(uuid.uuid4()),
            "source_id": SOURCE_ID,
            "channel": "other",
            "type": EVENT_TYPES[self.action],
            "touchpoint": self.subject.touchpoint,
            "customer": self.subject.customer(),
            "occurred_at": at.isoformat(),
            "payload": payload,
        }


def is_alert_action(event: Event) -> bool:
    return event.type in ALERT_TYPES


def to_action_row(event: Event) -> dict[str, Any]:
    """One `alert_actions` row of an `alert.*` event."""
    model = AlertAssigned if event.type == "alert.assigned" else AlertAction
    action = model.model_validate(event.payload)
    return {
        "tenant_id": event.tenant_id,
        "alert_id": action.alert_id,
        "event_id": str(event.event_id),
        "status": ALERT_TYPES[event.type],
        "assignee": getattr(action, "assignee", None) or "",
        "note": action.note or "",
        "actor": action.actor or "",
        "acted_at": to_micros(event.derived_at),
    }
