"""The service metrics in plain Python: the reference the SQL (`sql.py`) is held equal to.

Pure: from the `service_events` facts (`facts.py`) of one tenant, whatever their order and with
re-inserted duplicates, to the rows the three queries of `sql.py` give, so `sql.collect` turns
either into the same cells. Written from METRICS.md and docs/metrics.md, not from the SQL; the
unit tests pin it with hand-computed numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.service_metrics.calendar import Calendar, business_seconds
from services.service_metrics.facts import (
    CALL_ANSWERED,
    CALL_ENDED,
    CALL_STEPS,
    CALL_TRANSFERRED,
    CONVERSATION_TYPES,
    SURVEY_ANSWERED,
    SURVEY_SENT,
)
from services.service_metrics.sql import DIMENSIONS, ServiceMetrics, ServiceQuery, collect

Fact = dict[str, Any]
Row = dict[str, Any]
_WIDTH_S = {"hour": 3600, "day": 86_400}


def rank_quantile(values: Sequence[float], level: float) -> float:
    """The value at rank floor(level · n) of the sorted values (0-based, the last for level 1)."""
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


def bucket_start(at: int, query: ServiceQuery) -> int:
    """The UTC hour or day (epoch seconds) of an epoch-micros time; `total`: the range's start."""
    if query.bucket == "total":
        return query.since // 1_000_000
    width = _WIDTH_S[query.bucket]
    return at // 1_000_000 // width * width


def _unique(facts: Iterable[Fact]) -> list[Fact]:
    # A reprocessed batch re-inserts the same facts: each event counts once.
    return list({fact["event_id"]: fact for fact in facts}.values())


def _in_range(at: int, query: ServiceQuery) -> bool:
    return query.since <= at < query.until


def _passes(row: Row, query: ServiceQuery) -> bool:
    wanted = {d: getattr(query, d) for d in DIMENSIONS}
    return all(not value or row[d] == value for d, value in wanted.items())


def _cells(items: Iterable[Row], query: ServiceQuery, at: str) -> dict[tuple[Any, ...], list[Row]]:
    """Items that pass the filters, by the query's dimensions and bucket."""
    cells: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for item in items:
        if _passes(item, query):
            dims = tuple(item[d] if d in query.group_by else "" for d in DIMENSIONS)
            cells[(*dims, bucket_start(item[at], query))].append(item)
    return cells


def _row(key: tuple[Any, ...], figures: Row) -> Row:
    return dict(zip((*DIMENSIONS, "bucket_start"), key, strict=True)) | figures


def _value(name: str, items: Sequence[Any], measure: Callable[[Any], float]) -> Row:
    total = sum(measure(item) for item in items)
    return {f"{name}_n": len(items), f"{name}_value": total / len(items) if items else 0.0}


# --- calls: AHT, ASA, service level, abandonment, transfers ----------------------------------------
def _call_figures(calls: list[Row], threshold_s: float, transferred: set[str]) -> Row:
    handled = [c for c in calls if not c["abandoned"]]
    inbound = [c for c in calls if c["direction"] == "inbound"]
    answered = [c for c in inbound if not c["abandoned"]]

    def in_time(c: Row) -> float:
        return 100.0 * (not c["abandoned"] and c["queue_wait_s"] <= threshold_s)

    return (
        {"calls": len(calls)}
        | _value("aht", handled, lambda c: c["handle_s"])
        | _value("asa", answered, lambda c: c["queue_wait_s"])
        | _value("service_level", inbound, in_time)
        | _value("abandonment", inbound, lambda c: 100.0 * bool(c["abandoned"]))
        | _value("transfer", handled, lambda c: 100.0 * (c["correlation_id"] in transferred))
    )


def _key(fact: Fact) -> tuple[int, str]:
    return fact["derived_at"], fact["event_id"]


def _with_steps(call: Fact, conversation: Sequence[Fact]) -> Fact:
    """An ended call completed by its steps (docs/metrics.md, "A call in steps"): those of its
    conversation (`conversation`: its ended calls and steps) after the call before it ended, up
    to its own end. Its own queue and agent when it names them, else the steps' (the latest
    answer's queue, else the latest offer's; the latest agent); its own wait when it gives one,
    else the first answer's; outbound when it or a step says so."""
    ends = [
        f["derived_at"] for f in conversation if f["type"] == CALL_ENDED and _key(f) < _key(call)
    ]
    previous_end = max(ends, default=0)
    steps = [
        f for f in conversation
        if f["type"] in CALL_STEPS and previous_end < f["derived_at"] <= call["derived_at"]
    ]  # fmt: skip
    answers = [s for s in steps if s["type"] == CALL_ANSWERED]
    queue = max(
        (s for s in steps if s["queue"]), key=lambda s: (s["type"] == CALL_ANSWERED, *_key(s)),
        default=None,
    )  # fmt: skip
    agent = max((s for s in steps if s["agent"]), key=_key, default=None)
    first = min(answers, key=_key, default=None)
    outbound = call["direction"] == "outbound" or any(s["direction"] == "outbound" for s in steps)
    return call | {
        "queue": call["queue"] or (queue["queue"] if queue else ""),
        "agent": call["agent"] or (agent["agent"] if agent else ""),
        "queue_wait_s": call["queue_wait_s"] or (first["queue_wait_s"] if first else 0.0),
        "direction": "outbound" if outbound else "inbound",
    }


def completed_calls(facts: Iterable[Fact]) -> list[Fact]:
    """Every `call.ended` among one tenant's facts (each once), completed by its steps: the
    reference of `sql.calls_with_steps`, which every reader of calls shares."""
    conversations: dict[str, list[Fact]] = defaultdict(list)
    unique = _unique(f for f in facts if f["type"] in (*CALL_STEPS, CALL_ENDED))
    for f in unique:
        if f["correlation_id"]:
            conversations[f["correlation_id"]].append(f)
    return [
        _with_steps(c, conversations[c["correlation_id"]]) if c["correlation_id"] else c
        for c in unique
        if c["type"] == CALL_ENDED
    ]


def call_rows(facts: Sequence[Fact], query: ServiceQuery) -> list[Row]:
    """Calls ended in the range, each completed by its steps; a call is transferred when its
    conversation has a transfer."""
    transferred = {
        f["correlation_id"] for f in facts if f["type"] == CALL_TRANSFERRED and f["correlation_id"]
    }
    calls = [c for c in completed_calls(facts) if _in_range(c["derived_at"], query)]
    return [
        _row(key, _call_figures(group, query.threshold_s, transferred))
        for key, group in _cells(calls, query, "derived_at").items()
    ]


# --- conversations: first response time ------------------------------------------------------------
@dataclass(frozen=True)
class FirstResponse:
    """A conversation's first inbound customer message and its first human agent reply after it."""

    touchpoint: str
    channel: str
    first_in: int
    reply_at: int | None
    agent: str
    queue: str

    @property
    def seconds(self) -> float | None:
        return None if self.reply_at is None else (self.reply_at - self.first_in) / 1_000_000

    def business_seconds(self, calendar: Calendar) -> float | None:
        """The response time counted only while the calendar is open."""
        if self.reply_at is None:
            return None
        return business_seconds(self.first_in, self.reply_at, calendar)


def first_response(messages: Sequence[Fact]) -> FirstResponse | None:
    """FRT of one conversation; None without a customer message. A bot reply stops no clock; an
    agent message before the customer's first is not a response. Ties: the smallest agent/queue."""
    inbound = sorted(
        (m for m in messages if m["sender"] == "customer"),
        key=lambda m: (m["derived_at"], m["event_id"]),
    )
    if not inbound:
        return None
    first = inbound[0]
    after = [
        m for m in messages if m["sender"] == "agent" and m["derived_at"] >= first["derived_at"]
    ]
    reply_at = min((m["derived_at"] for m in after), default=None)
    at_reply = [m for m in after if m["derived_at"] == reply_at]
    return FirstResponse(
        touchpoint=first["touchpoint"],
        channel=first["channel"],
        first_in=first["derived_at"],
        reply_at=reply_at,
        agent=min((m["agent"] for m in at_reply), default=""),
        queue=min((m["queue"] for m in at_reply), default=""),
    )


def _times(prefix: str, times: list[float]) -> Row:
    """p50, p90 and mean of the answered conversations' times."""
    n = len(times)
    return {
        f"{prefix}_p50_n": n,
        f"{prefix}_p50_value": rank_quantile(times, 0.5) if n else 0.0,
        f"{prefix}_p90_n": n,
        f"{prefix}_p90_value": rank_quantile(times, 0.9) if n else 0.0,
    } | _value(f"{prefix}_mean", times, float)


def _frt_figures(conversations: list[Row]) -> Row:
    answered = [c for c in conversations if c["seconds"] is not None]
    return (
        {"conversations": len(conversations), "unanswered": len(conversations) - len(answered)}
        | _times("frt", [c["seconds"] for c in answered])
        | _times("frt_business", [c["business_seconds"] for c in answered])
    )


def first_response_rows(facts: Sequence[Fact], query: ServiceQuery) -> list[Row]:
    """Conversations whose first inbound message is in the range, by the first replying agent
    and queue ('' while unanswered); the earlier messages of a conversation count too."""
    by_conversation: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        if fact["type"] in CONVERSATION_TYPES and fact["correlation_id"]:
            by_conversation[fact["correlation_id"]].append(fact)
    found = [first_response(messages) for messages in by_conversation.values()]
    conversations = [
        vars(f) | {"seconds": f.seconds, "business_seconds": f.business_seconds(query.calendar)}
        for f in found
        if f and _in_range(f.first_in, query)
    ]
    return [
        _row(key, _frt_figures(group))
        for key, group in _cells(conversations, query, "first_in").items()
    ]


# --- surveys: response rate ------------------------------------------------------------------------
def survey_rows(facts: Sequence[Fact], query: ServiceQuery) -> list[Row]:
    """Surveys sent in the range; answered when an answer with its survey_id exists (any time)."""
    answered = {f["survey_id"] for f in facts if f["type"] == SURVEY_ANSWERED and f["survey_id"]}
    sent = [f for f in facts if f["type"] == SURVEY_SENT and _in_range(f["derived_at"], query)]

    def figures(group: list[Row]) -> Row:
        rate = _value("response_rate", group, lambda s: 100.0 * (s["survey_id"] in answered))
        return {"surveys_sent": len(group)} | rate

    return [_row(key, figures(g)) for key, g in _cells(sent, query, "derived_at").items()]


def compute_service_metrics(facts: Iterable[Fact], query: ServiceQuery) -> list[ServiceMetrics]:
    """Every service metric of one tenant's facts per cell, as `sql.read_service_metrics` reads
    them from the warehouse."""
    mine = [f for f in _unique(facts) if f["tenant_id"] == query.tenant_id]
    rows = call_rows(mine, query) + first_response_rows(mine, query) + survey_rows(mine, query)
    return collect(rows)
