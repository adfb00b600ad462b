"""Attribution (METRICS.md): a survey response counts for the interaction that triggered it.

With a `correlation_id`, the latest interaction of that conversation at or before the survey was
sent; without one, the customer's latest non-survey touchpoint at or before then — latest by
`(derived_at, event_id)`, so ties break the same way everywhere. Agent and queue are the latest
*known* ones among those, because a closing event (say `call.ended` without an agent) still belongs
to the agent who handled the call. With no such interaction the response keeps its own envelope
values. Cells, drill-down and the at-risk alerts a response raises all use this one rule.

Why at read time: a survey answer can arrive before the call it rates (B08), and a replay may
deliver them in any order. Writing the attribution into the response row would freeze whichever
interaction had arrived by then. Instead both sides are stored as per-event facts and the warehouse
joins them when queried (`attribution_sql.py`), so every arrival order, and a replay, give the same
numbers. This module is the Python reference of that join, used by tests to check the SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Attribution:
    """Where a response is counted, and whether an interaction was found for it."""

    touchpoint: str
    channel: str
    agent: str
    queue: str
    attributed: bool


def _order(row: Row) -> tuple[int, str]:
    return (row["derived_at"], row["event_id"])


def _latest_known(rows: list[Row], column: str) -> str:
    known = [r for r in rows if r[column]]
    return max(known, key=_order)[column] if known else ""


def _latest_of(rows: list[Row]) -> Attribution:
    latest = max(rows, key=_order)
    agent, queue = _latest_known(rows, "agent"), _latest_known(rows, "queue")
    return Attribution(latest["touchpoint"], latest["channel"], agent, queue, attributed=True)


def _cutoff(response: Row, sent_at: Mapping[tuple[str, str], int]) -> int:
    """When the survey was sent: its `survey.sent` if stored and not after the answer."""
    sent = sent_at.get((response["tenant_id"], response["survey_id"]), 0)
    return (
        sent
        if response["survey_id"] and 0 < sent <= response["answered_at"]
        else response["answered_at"]
    )


def attribute_response(
    response: Row,
    interactions: Iterable[Row],
    touchpoints: Iterable[Row],
    sent_at: Mapping[tuple[str, str], int],
) -> Attribution:
    """METRICS.md attribution of one `survey_responses` row (`attribution_sql.py` in SQL): the
    latest interaction of its conversation, or without a `correlation_id` the customer's latest
    touchpoint, at or before the survey was sent; else the response's own envelope values."""
    cutoff, tenant = _cutoff(response, sent_at), response["tenant_id"]
    if response["correlation_id"]:
        key, candidates = "correlation_id", interactions
    else:
        key, candidates = "customer_id", touchpoints
    before = [
        r for r in candidates
        if r["tenant_id"] == tenant and r[key] == response[key] and r["derived_at"] <= cutoff
    ]  # fmt: skip
    if not before:
        return Attribution(response["touchpoint"], response["channel"], "", "", attributed=False)
    return _latest_of(before)
