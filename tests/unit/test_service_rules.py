"""The Python reference of the service metrics, on facts whose figures are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.service_metrics.calendar import Calendar
from services.service_metrics.rules import (
    bucket_start,
    compute_service_metrics,
    first_response,
    rank_quantile,
)
from services.service_metrics.sql import ServiceMetrics, ServiceQuery

TEN = int(datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp())  # 10:00 UTC, epoch seconds
DAY = (TEN - 86_400) * 1_000_000, (TEN + 86_400) * 1_000_000
_ids = iter(range(10**6))


def fact(type_: str, at_s: float, **fields: Any) -> dict[str, Any]:
    """A service_events row `at_s` seconds after 10:00, with the table's defaults."""
    return {
        "tenant_id": "t", "event_id": f"e{next(_ids)}", "customer_id": "c", "correlation_id": "",
        "type": type_, "touchpoint": "line", "channel": "phone",
        "derived_at": int((TEN + at_s) * 1_000_000), "agent": "", "queue": "", "sender": "",
        "direction": "inbound", "queue_wait_s": 0.0, "handle_s": 0.0, "abandoned": 0,
        "survey_id": "",
    } | fields  # fmt: skip


def chat(at_s: float, conv: str, sender: str, agent: str = "", queue: str = "") -> dict[str, Any]:
    kind = "message.received" if sender == "customer" else "message.sent"
    return fact(kind, at_s, correlation_id=conv, sender=sender, agent=agent, queue=queue,
                touchpoint="web_chat", channel="chat")  # fmt: skip


CHATS = [
    chat(0, "c1", "customer"), chat(2, "c1", "bot"),  # a bot stops no clock
    chat(45, "c1", "agent", "ana", "q"), chat(60, "c1", "agent", "bob", "q"),
    chat(-60, "c2", "agent", "bob", "q"),  # the agent wrote first: not a response
    chat(600, "c2", "customer"), chat(615, "c2", "agent", "ana", "q"),
    chat(1200, "c3", "customer"),  # never answered
    chat(1800, "c4", "customer"), chat(1920, "c4", "agent", "ana", "q"),
]  # fmt: skip
CALLS = [
    fact("call.ended", 0, correlation_id="k1", agent="ana", queue="q", queue_wait_s=10.0,
         handle_s=150.0),
    fact("call.transferred", 5, correlation_id="k2"),
    fact("call.ended", 60, correlation_id="k2", agent="ana", queue="q", queue_wait_s=30.0,
         handle_s=200.0),
    fact("call.ended", 70, correlation_id="k3", queue="q", queue_wait_s=50.0, abandoned=1),
    fact("call.ended", 80, correlation_id="k4", agent="bob", queue="q", direction="outbound",
         handle_s=60.0),
]  # fmt: skip
SURVEYS = [
    fact("survey.sent", 0, survey_id="s1", touchpoint="post_call", channel="email"),
    fact("survey.sent", 0, survey_id="s2", touchpoint="post_call", channel="email"),
    fact("survey.answered", 3600, survey_id="s1", touchpoint="post_call", channel="survey"),
    fact("survey.sent", -2 * 86_400, survey_id="s3", touchpoint="post_call", channel="email"),
    fact("survey.answered", 0, survey_id="s3", touchpoint="post_call", channel="survey"),
]
FACTS = CHATS + CALLS + SURVEYS
# Calls reported in steps (offered, answered, ended): a review's two, the queue, agent and wait
# on the steps only.
STEPPED = [
    fact("call.offered", 0, correlation_id="k11", queue="sales_q"),
    fact("call.answered", 60, correlation_id="k11", queue="sales_q", agent="pedro",
         queue_wait_s=60.0, direction=""),
    fact("call.ended", 180, correlation_id="k11", handle_s=120.0),
    fact("call.offered", 0, correlation_id="k12", queue="sales_q"),
    fact("call.ended", 40, correlation_id="k12", queue_wait_s=40.0, abandoned=1),
]  # fmt: skip
# Which names and wait a call in steps takes (docs/metrics.md, "A call in steps").
NAMED = [
    # The end names its queue, agent and wait: they stand.
    fact("call.offered", 0, correlation_id="a", queue="first"),
    fact("call.answered", 5, correlation_id="a", queue="second", agent="ann", queue_wait_s=25.0),
    fact("call.ended", 90, correlation_id="a", queue="own", agent="bob", queue_wait_s=5.0,
         handle_s=60.0),
    # Transferred to another queue before it was answered: the answer's queue.
    fact("call.offered", 0, correlation_id="b", queue="first"),
    fact("call.offered", 3, correlation_id="b", queue="moved"),
    fact("call.answered", 9, correlation_id="b", queue="answered_in", agent="cy"),
    fact("call.ended", 99, correlation_id="b", handle_s=60.0),
    # Outbound said by the offer; no answer names a queue: the latest offer's.
    fact("call.offered", 0, correlation_id="c", queue="first", direction="outbound"),
    fact("call.offered", 1, correlation_id="c", queue="last"),
    fact("call.ended", 50, correlation_id="c", handle_s=30.0),
    # No correlation id: nothing joins it, whatever else has none.
    fact("call.answered", 0, queue="stray", agent="zed", queue_wait_s=99.0),
    fact("call.ended", 10, queue="", handle_s=10.0),
    # Two calls of one conversation: each has the steps after the one before it ended, up to
    # its own end (a review: the first took the second's queue, agent and 300 s wait).
    fact("call.offered", 0, correlation_id="m", queue="billing"),
    fact("call.answered", 5, correlation_id="m", queue="billing", agent="dee", queue_wait_s=5.0),
    fact("call.ended", 60, correlation_id="m", handle_s=55.0),
    fact("call.offered", 3600, correlation_id="m", queue="tech"),
    fact("call.answered", 3900, correlation_id="m", queue="tech", agent="eve",
         queue_wait_s=300.0),
    fact("call.ended", 4000, correlation_id="m", handle_s=100.0),
    # Answered, transferred, answered again: the first answer's wait (when the customer was
    # answered), the latest answer's queue and agent.
    fact("call.offered", 0, correlation_id="x", queue="front"),
    fact("call.answered", 5, correlation_id="x", queue="front", agent="fay", queue_wait_s=5.0),
    fact("call.transferred", 30, correlation_id="x"),
    fact("call.answered", 120, correlation_id="x", queue="back", agent="gus", queue_wait_s=90.0),
    fact("call.ended", 300, correlation_id="x", handle_s=280.0),
]  # fmt: skip


def cells(rows: list[ServiceMetrics]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    def figures(row: ServiceMetrics) -> dict[str, Any]:
        values = {k: (m.value, m.n) for k, m in row.metrics.items() if m.n}
        return {k: v for k, v in row.counts.items() if v} | values

    return {(r.touchpoint, r.channel, r.queue, r.agent): figures(r) for r in rows}


def test_rank_quantile_takes_the_value_at_rank_floor_level_n() -> None:
    assert rank_quantile(range(10, 0, -1), 0.5) == 6 and rank_quantile(range(1, 11), 0.9) == 10
    assert rank_quantile([7.0], 0.9) == 7.0 and rank_quantile([1.0, 3.0], 0.5) == 3.0


def test_first_response_skips_bots_and_agent_messages_before_the_customer() -> None:
    c2 = first_response([f for f in CHATS if f["correlation_id"] == "c2"])
    assert c2 is not None and (c2.seconds, c2.agent, c2.queue) == (15.0, "ana", "q")
    c1 = first_response([f for f in CHATS if f["correlation_id"] == "c1"])
    assert c1 is not None and (c1.seconds, c1.agent) == (45.0, "ana")
    c3 = first_response([f for f in CHATS if f["correlation_id"] == "c3"])
    assert c3 is not None and (c3.seconds, c3.agent) == (None, "")
    assert first_response([chat(0, "c9", "agent", "ana")]) is None


def test_every_metric_per_touchpoint_channel_queue_and_agent() -> None:
    found = cells(compute_service_metrics(FACTS, ServiceQuery("t", *DAY, "hour")))
    assert found == {
        # FRTs 45, 15, 120 s: sorted 15, 45, 120; p50 at rank 1, p90 at rank 2; mean 60.
        # Open all the time (no calendar): business seconds are the same.
        ("web_chat", "chat", "q", "ana"): {
            "conversations": 3, "frt_p50@1": (45.0, 3), "frt_p90@1": (120.0, 3),
            "frt_mean@1": (60.0, 3), "frt_business_p50@1": (45.0, 3),
            "frt_business_p90@1": (120.0, 3), "frt_business_mean@1": (60.0, 3),
        },
        ("web_chat", "chat", "", ""): {"conversations": 1, "unanswered": 1},
        ("line", "phone", "q", "ana"): {
            "calls": 2, "aht@1": (175.0, 2), "asa@1": (20.0, 2), "service_level@1": (50.0, 2),
            "abandonment@1": (0.0, 2), "transfer@1": (50.0, 2),
        },
        ("line", "phone", "q", ""): {"calls": 1, "service_level@1": (0.0, 1),
                                     "abandonment@1": (100.0, 1)},
        ("line", "phone", "q", "bob"): {"calls": 1, "aht@1": (60.0, 1), "transfer@1": (0.0, 1)},
        # s3 was sent before the range: its answer does not count for s1 and s2.
        ("post_call", "email", "", ""): {"surveys_sent": 2, "response_rate@1": (50.0, 2)},
    }  # fmt: skip


def test_grouped_by_queue_over_the_whole_range() -> None:
    query = ServiceQuery("t", *DAY, "total", group_by=("queue",))
    rows = compute_service_metrics(FACTS, query)
    assert {r.bucket_start for r in rows} == {DAY[0] // 1_000_000}
    found = cells(rows)
    assert found[("", "", "q", "")] == {
        "calls": 4, "conversations": 3,
        "aht@1": (pytest.approx(410 / 3), 3), "asa@1": (20.0, 2),
        "service_level@1": (pytest.approx(100 / 3), 3),
        "abandonment@1": (pytest.approx(100 / 3), 3), "transfer@1": (pytest.approx(100 / 3), 3),
        "frt_p50@1": (45.0, 3), "frt_p90@1": (120.0, 3), "frt_mean@1": (60.0, 3),
        "frt_business_p50@1": (45.0, 3), "frt_business_p90@1": (120.0, 3),
        "frt_business_mean@1": (60.0, 3),
    }  # fmt: skip
    assert found[("", "", "", "")] == {
        "conversations": 1,
        "unanswered": 1,
        "surveys_sent": 2,
        "response_rate@1": (50.0, 2),
    }


# Sundays (2026-03-01 is one) open 10:00–10:10 and from 10:31, in UTC.
SUNDAY_GAP = Calendar.from_json({"hours": {"sun": [["10:00", "10:10"], ["10:31", "24:00"]]}})


def test_business_hours_count_only_while_the_calendar_is_open() -> None:
    query = ServiceQuery("t", *DAY, "total", group_by=(), calendar=SUNDAY_GAP)
    [row] = compute_service_metrics(FACTS, query)
    # c1 10:00:00–10:00:45, all open: 45 s; c2 10:10:00–10:10:15, closed: 0; c4 10:30–10:32,
    # open from 10:31: 60 s. Sorted 0, 45, 60: p50 at rank 1, p90 at rank 2; mean 35.
    business = {k: (m.value, m.n) for k, m in row.metrics.items() if "business" in k}
    assert business == {
        "frt_business_p50@1": (45.0, 3),
        "frt_business_p90@1": (60.0, 3),
        "frt_business_mean@1": (35.0, 3),
    }
    assert row.metrics["frt_mean@1"].value == 60.0  # the wall clock is unchanged


def test_filters_threshold_duplicates_and_other_tenants() -> None:
    noise = [fact("call.ended", 0, tenant_id="other", agent="ana", queue="q", handle_s=9e9)]
    facts = FACTS + FACTS[:4] + noise  # a reprocessed batch re-inserts facts
    query = ServiceQuery("t", *DAY, "day", agent="ana", threshold_s=10.0)
    found = cells(compute_service_metrics(facts, query))
    assert set(found) == {("web_chat", "chat", "q", "ana"), ("line", "phone", "q", "ana")}
    assert found[("line", "phone", "q", "ana")]["service_level@1"] == (50.0, 2)
    assert found[("web_chat", "chat", "q", "ana")]["conversations"] == 3


def test_a_conversation_counts_in_the_bucket_of_its_first_inbound_message() -> None:
    late = [chat(3599, "c5", "customer"), chat(3700, "c5", "agent", "ana", "q")]
    rows = compute_service_metrics(late, ServiceQuery("t", *DAY, "hour"))
    assert [(r.bucket_start, r.metrics["frt_mean@1"].value) for r in rows] == [(TEN, 101.0)]
    assert bucket_start(DAY[0] + 1, ServiceQuery("t", *DAY, "total")) == DAY[0] // 1_000_000


@given(st.permutations(FACTS), st.lists(st.sampled_from(FACTS), max_size=10))
def test_the_order_of_arrival_and_re_inserted_facts_do_not_matter(
    order: list[dict[str, Any]], again: list[dict[str, Any]]
) -> None:
    query = ServiceQuery("t", *DAY, "hour")
    assert compute_service_metrics(order + again, query) == compute_service_metrics(FACTS, query)


@given(st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1), st.sampled_from([0.5, 0.9]))
def test_a_rank_quantile_is_one_of_the_values_with_enough_below_it(
    values: list[float], level: float
) -> None:
    found = rank_quantile(values, level)
    assert found in values
    assert sum(v < found for v in values) <= int(level * len(values))
    assert sum(v <= found for v in values) > min(int(level * len(values)), len(values) - 1)


def test_a_call_in_steps_takes_its_queue_agent_and_wait_from_them() -> None:
    # A review's calls: the queue, agent and wait on the offer and the answer, the end giving
    # durations only. Service level counts the abandoned call as a failure; both calls are in
    # the queue their offer names, the answered one under the agent who answered.
    query = ServiceQuery("t", *DAY, "total", group_by=("queue",))
    [row] = compute_service_metrics(STEPPED, query)
    assert (row.queue, row.counts["calls"]) == ("sales_q", 2)
    assert (row.metrics["service_level@1"].value, row.metrics["service_level@1"].n) == (0.0, 2)
    assert (row.metrics["asa@1"].value, row.metrics["asa@1"].n) == (60.0, 1)
    assert (row.metrics["abandonment@1"].value, row.metrics["aht@1"].value) == (50.0, 120.0)
    by_agent = ServiceQuery("t", *DAY, "total", group_by=("agent",), agent="pedro")
    assert [(r.agent, r.counts["calls"]) for r in compute_service_metrics(STEPPED, by_agent)] == [
        ("pedro", 1)
    ]


def test_a_calls_own_names_come_first_then_its_answer_then_its_offer() -> None:
    query = ServiceQuery("t", *DAY, "total", group_by=("queue", "agent"))
    found = {
        (r.queue, r.agent): (r.metrics["asa@1"].value, r.metrics["service_level@1"].n)
        for r in compute_service_metrics(NAMED, query)
    }
    assert found == {
        ("own", "bob"): (5.0, 1),
        ("answered_in", "cy"): (0.0, 1),
        ("last", ""): (None, 0),  # outbound: no inbound figure
        ("", ""): (0.0, 1),
        ("billing", "dee"): (5.0, 1),
        ("tech", "eve"): (300.0, 1),
        ("back", "gus"): (5.0, 1),
    }
    # The first hour alone: the first call as it was, whatever came later.
    first_hour = ServiceQuery("t", DAY[0], (TEN + 3600) * 1_000_000, "total", group_by=("queue",))
    billing = [r for r in compute_service_metrics(NAMED, first_hour) if r.queue == "billing"]
    assert [(r.counts["calls"], r.metrics["asa@1"].value) for r in billing] == [(1, 5.0)]
