"""Raw events as channel systems send them, for tests: valid by default, any field overridden."""

from __future__ import annotations

import uuid
from typing import Any


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
