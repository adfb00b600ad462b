"""Raw events as channel systems send them, for tests: valid by default, any field overridden."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from kernel.partitioning import touchpoint_bucket_key

# The touchpoint bucket key of a test deployment (`kernel.partitioning.touchpoint_key`).
BUCKET_KEY = touchpoint_bucket_key(b"test platform key")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event(
    type_: str,
    channel: str,
    customer: dict[str, Any],
    at: datetime,
    payload: dict[str, Any],
    **envelope: Any,
) -> dict[str, Any]:
    """One touchpoint of `customer` at `at`; envelope fields given as None are left out."""
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "channel": channel,
        "type": type_,
        "customer": customer,
        "occurred_at": iso(at),
        "payload": payload,
    }
    return body | {name: value for name, value in envelope.items() if value is not None}


def survey_answer(**overrides: Any) -> dict[str, Any]:
    """A CSAT answer of customer `cust-1` at the support line (a fresh event id each call)."""
    raw: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "source_id": "genesys",
        "channel": "survey",
        "type": "survey.answered",
        "touchpoint": "support_line",
        "customer": {"customer_id": "cust-1"},
        "occurred_at": "2026-01-31T11:00:00Z",
        "payload": {"kind": "csat", "score": 4},
    }
    raw.update(overrides)
    return raw
