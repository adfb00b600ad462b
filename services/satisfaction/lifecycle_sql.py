"""Table and queries of the alert lifecycle (`alert_actions`), beside `lifecycle.py`.

One row per action event, ReplacingMergeTree keyed by the event so a reprocessed batch collapses
(F03); reads deduplicate by event id first. An alert's status is its latest action by
`(acted_at, event_id)`, folded at read time, so any arrival order and a replay agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernel.dialect import replacing_engine
from kernel.ports import Warehouse
from services.satisfaction.drift_sql import find_drift_alert
from services.satisfaction.lifecycle import Status, Subject
from services.satisfaction.sql import ALERTS_TABLE

ACTIONS_TABLE = "alert_actions"


def ddl(version: tuple[int, ...]) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {ACTIONS_TABLE} (
            tenant_id String, alert_id String, event_id String, status String, assignee String,
            note String, actor String, acted_at Int64
        ) {replacing_engine(("tenant_id", "alert_id", "acted_at", "event_id"), version)}"""
    ]


@dataclass(frozen=True)
class AlertState:
    """Where an alert is in its lifecycle: open until a manager acts on it."""

    status: Status = Status.open
    assignee: str | None = None
    note: str | None = None


def _in(prefix: str, values: Sequence[str]) -> tuple[str, dict[str, Any]]:
    names = [f"{prefix}_{i}" for i in range(len(values))]
    return ", ".join(f"{{{n}:String}}" for n in names), dict(zip(names, values, strict=True))


def read_states(
    warehouse: Warehouse, tenant_id: str, alert_ids: Sequence[str]
) -> dict[str, AlertState]:
    """The lifecycle state of each given alert that has been acted on (others are open)."""
    if not alert_ids:
        return {}
    wanted, params = _in("alert", alert_ids)
    rows = warehouse.select(
        f"""SELECT alert_id,
               argMax(status, (acted_at, event_id)) AS status,
               argMaxIf(assignee, (acted_at, event_id), assignee != '') AS assignee,
               argMaxIf(note, (acted_at, event_id), note != '') AS note
            FROM (
                SELECT alert_id, event_id, status, assignee, note, acted_at FROM {ACTIONS_TABLE}
                WHERE tenant_id = {{tenant_id:String}} AND alert_id IN ({wanted})
                LIMIT 1 BY event_id
            )
            GROUP BY alert_id""",
        {"tenant_id": tenant_id, **params},
    )
    return {
        r["alert_id"]: AlertState(Status(r["status"]), r["assignee"] or None, r["note"] or None)
        for r in rows
    }


def find_alert(warehouse: Warehouse, tenant_id: str, alert_id: str) -> dict[str, Any] | None:
    """The alert's customer and id, or None when the tenant has no such alert."""
    rows = warehouse.select(
        f"""SELECT alert_id, customer_id FROM {ALERTS_TABLE}
            WHERE tenant_id = {{tenant_id:String}} AND alert_id = {{alert_id:String}}
            LIMIT 1""",
        {"tenant_id": tenant_id, "alert_id": alert_id},
    )
    return rows[0] if rows else None


def subject_of(warehouse: Warehouse, tenant_id: str, alert_id: str, as_of: int) -> Subject | None:
    """What the tenant's alert of that id is about, None when it has no such alert: a stored
    (at-risk) alert's customer, else the touchpoint of the drift alert `GET /v1/alerts` would list
    as of `as_of` (epoch micros; drift alerts are evaluated on read)."""
    alert = find_alert(warehouse, tenant_id, alert_id)
    if alert is not None:
        return Subject(alert["customer_id"])
    drift = find_drift_alert(warehouse, tenant_id, alert_id, as_of)
    return Subject(None, drift.touchpoint) if drift is not None else None
