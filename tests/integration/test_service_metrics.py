"""Service metrics from the warehouse equal an independent pandas computation over the raw events,
on chdb and on a ClickHouse server (18.16 where the CI provisions it)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from kernel.ports import Consumed, Warehouse
from kernel.processing import process_batch, to_micros
from schemas.envelope import Event
from schemas.validate import accept, encode
from services.satisfaction.projection import SatisfactionProjection
from services.service_metrics.calendar import Calendar
from services.service_metrics.facts import SERVICE_EVENTS_TABLE
from services.service_metrics.rules import compute_service_metrics
from services.service_metrics.sql import ServiceMetrics, ServiceQuery, read_service_metrics
from tests.service import population as pop
from tests.unit import test_service_rules as hand

RECEIVED = pop.BASE + timedelta(days=4)
EVERYTHING = (0, to_micros(RECEIVED) + 1)
projection = SatisfactionProjection()
OFFICE = Calendar.from_json(pop.OFFICE)


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    for statement in projection.ddl(warehouse.version):
        warehouse.command(statement)
    return warehouse


def make_events(
    tenant: str, raws: Sequence[dict[str, Any]], received: datetime = RECEIVED
) -> list[Event]:
    return [accept(raw, tenant, received)[0] for raw in raws]


def load(
    warehouse: Warehouse, events: Sequence[Event], batch_size: int = 500
) -> list[dict[str, Any]]:
    """As the satisfaction consumer does it: decode, project, insert; the service facts written."""
    facts: list[dict[str, Any]] = []
    for start in range(0, len(events), batch_size):
        records = [
            Consumed("touchpoints", 0, start + i, b"k", encode(e))
            for i, e in enumerate(events[start : start + batch_size])
        ]
        result = process_batch(projection.name, records, projection.rows)
        assert not result.dead_letters
        for table, rows in result.rows.items():
            warehouse.insert(table, rows)
        facts += result.rows.get(SERVICE_EVENTS_TABLE, [])
    return facts


def _found(rows: list[ServiceMetrics], count: str) -> dict[tuple[Any, ...], ServiceMetrics]:
    return {
        (r.touchpoint, r.channel, r.queue, r.agent, r.bucket_start): r
        for r in rows
        if r.counts[count]
    }


def assert_matches(
    rows: list[ServiceMetrics], expected: dict[Any, dict[str, Any]], count: str
) -> None:
    found = _found(rows, count)
    assert found.keys() == expected.keys()
    for key, want in expected.items():
        got = found[key]
        assert got.counts[count] == want[count], key
        for name, (value, n) in ((k, v) for k, v in want.items() if "@" in k):
            assert got.metrics[name].n == n, (key, name)
            assert got.metrics[name].value == (None if value is None else pytest.approx(value)), (
                key,
                name,
            )


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_each_metric_equals_the_pandas_reference(wh: Warehouse, seed: int, bucket: str) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    raws = pop.population(seed)
    events = make_events(tenant, raws)
    random.Random(seed).shuffle(events)  # arrival order must not matter
    load(wh, events)
    load(wh, events[: len(events) // 3])  # a reprocessed batch re-inserts the same rows (F03)
    df = pop.frame(raws)
    for since, until in (
        EVERYTHING,
        (to_micros(pop.BASE + timedelta(hours=30)), to_micros(pop.BASE + timedelta(hours=50))),
    ):
        query = ServiceQuery(tenant, since, until, bucket, calendar=OFFICE)
        rows = read_service_metrics(wh, query)
        assert_matches(rows, pop.reference_calls(df, since, until, bucket), "calls")
        frt = pop.reference_first_responses(df, since, until, bucket, pop.OFFICE)
        assert_matches(rows, frt, "conversations")
        assert_matches(rows, pop.reference_surveys(df, since, until, bucket), "surveys_sent")
        business = [m for r in frt.values() for k, m in r.items() if "business" in k]
        assert any(value != 0 for value, _ in business) and any(v == 0 for v, _ in business)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_business_hours_across_a_clock_change_equal_the_pandas_reference(
    wh: Warehouse, bucket: str
) -> None:
    """Slow replies from Friday 2026-03-27 (a holiday) over the weekend, when Madrid's clocks
    go forward, to Monday and Tuesday: the office's hours in summer time."""
    tenant = f"t{uuid.uuid4().hex[:12]}"
    week = pop.BASE + timedelta(days=26)
    raws = pop.shifted(pop.population(8, reply_mean_s=12 * 3600), week - pop.BASE)
    received = week + timedelta(days=10)
    load(wh, make_events(tenant, raws, received))
    df = pop.frame(raws)
    for since, until in (
        (0, to_micros(received)),
        (to_micros(week + timedelta(hours=40)), to_micros(week + timedelta(hours=70))),
    ):
        query = ServiceQuery(tenant, since, until, bucket, calendar=OFFICE)
        frt = pop.reference_first_responses(df, since, until, bucket, pop.OFFICE)
        assert_matches(read_service_metrics(wh, query), frt, "conversations")
        business = [m for r in frt.values() for k, m in r.items() if k == "frt_business_mean@1"]
        assert any(value for value, _ in business)


def test_filters_threshold_and_tenants(wh: Warehouse) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:12]}", f"t{uuid.uuid4().hex[:12]}"
    raws = pop.population(3, size=60)
    load(wh, make_events(tenant, raws))
    df = pop.frame(raws)
    q = ServiceQuery(tenant, *EVERYTHING, "day", queue="tech", agent="ann", threshold_s=5.0)
    rows = read_service_metrics(wh, q)
    expected = {
        key: want
        for key, want in pop.reference_calls(df, *EVERYTHING, "day", 5.0).items()
        if key[2:4] == ("tech", "ann")
    }
    assert expected and {(r.queue, r.agent) for r in rows} == {("tech", "ann")}
    assert_matches(rows, expected, "calls")
    assert read_service_metrics(wh, ServiceQuery(other, *EVERYTHING)) == []
    hostile = "x' OR '1'='1"
    assert read_service_metrics(wh, ServiceQuery(tenant, *EVERYTHING, channel=hostile)) == []


def test_the_slow_queue_shows_a_worse_speed_of_answer(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    load(wh, make_events(tenant, pop.population(4)))
    asa = {}
    for queue in pop.QUEUES:
        rows = read_service_metrics(wh, ServiceQuery(tenant, *EVERYTHING, "day", queue=queue))
        waits = [(r.metrics["asa@1"].value or 0) * r.metrics["asa@1"].n for r in rows]
        asa[queue] = sum(waits) / sum(r.metrics["asa@1"].n for r in rows)
    assert asa["tech"] > asa["billing"]


def assert_same_cells(got: list[ServiceMetrics], want: list[ServiceMetrics]) -> None:
    assert [(r.touchpoint, r.channel, r.queue, r.agent, r.bucket_start) for r in got] == [
        (r.touchpoint, r.channel, r.queue, r.agent, r.bucket_start) for r in want
    ]
    for g, w in zip(got, want, strict=True):
        assert g.counts == w.counts
        assert {k: m.n for k, m in g.metrics.items()} == {k: m.n for k, m in w.metrics.items()}
        for key, metric in w.metrics.items():
            expected = None if metric.value is None else pytest.approx(metric.value)
            assert g.metrics[key].value == expected, (g, key)


@pytest.mark.parametrize(
    ("bucket", "group_by", "filters"),
    [("hour", ("touchpoint", "channel", "queue", "agent"), {}),
     ("day", ("queue",), {}), ("total", ("agent", "channel"), {}), ("total", (), {}),
     ("day", ("touchpoint", "queue"), {"queue": "tech", "threshold_s": 5.0}),
     ("total", ("agent",), {"channel": "chat", "agent": "bob"})],
)  # fmt: skip
def test_the_sql_equals_the_python_reference(
    wh: Warehouse, bucket: str, group_by: tuple[str, ...], filters: dict[str, Any]
) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    events = make_events(tenant, pop.population(5))
    random.Random(5).shuffle(events)
    facts = load(wh, events) + load(wh, events[:100])  # re-inserted facts count once
    for since, until in (
        EVERYTHING,
        (to_micros(pop.BASE + timedelta(hours=30)), to_micros(pop.BASE + timedelta(hours=50))),
    ):
        query = ServiceQuery(
            tenant, since, until, bucket, group_by=group_by, calendar=OFFICE, **filters
        )
        want = compute_service_metrics(facts, query)
        got = read_service_metrics(wh, query)
        assert want
        assert_same_cells(got, want)


def test_an_empty_range_has_no_cells(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    load(wh, make_events(tenant, pop.population(6, size=10)))
    for bucket in ("day", "total"):
        assert read_service_metrics(wh, ServiceQuery(tenant, *EVERYTHING, bucket, group_by=()))
        query = ServiceQuery(tenant, 0, 1_000_000, bucket, group_by=())
        assert read_service_metrics(wh, query) == []  # the same tenant and data, outside them


def test_the_hand_computed_facts_read_the_same_from_the_warehouse(any_warehouse: Warehouse) -> None:
    """The unit tests' facts, stored as the consumer stores them: the SQL gives the numbers worked
    out by hand, also for a range that cuts conversations (one started before it, with a later
    customer message inside; one answered after it)."""
    for statement in projection.ddl(any_warehouse.version):
        any_warehouse.command(statement)
    tenant = f"t{uuid.uuid4().hex[:12]}"
    later = hand.chat(900, "c1", "customer")  # c1 started at 10:00, before the cut range
    facts = [f | {"tenant_id": tenant} for f in [*hand.FACTS, later]]
    any_warehouse.insert(SERVICE_EVENTS_TABLE, facts)
    ten = hand.TEN * 1_000_000
    for since, until in (hand.DAY, (ten + 600 * 10**6, ten + 1860 * 10**6)):
        for group_by in (("touchpoint", "channel", "queue", "agent"), ("queue",)):
            query = ServiceQuery(tenant, since, until, "hour", group_by=group_by)
            want = compute_service_metrics(facts, query)
            assert want
            assert_same_cells(read_service_metrics(any_warehouse, query), want)
            query = ServiceQuery(tenant, since, until, "hour", group_by=group_by,
                                 calendar=hand.SUNDAY_GAP)  # fmt: skip
            want = compute_service_metrics(facts, query)
            assert want
            assert_same_cells(read_service_metrics(any_warehouse, query), want)
    cut = ServiceQuery(tenant, ten + 600 * 10**6, ten + 1860 * 10**6, "total", group_by=())
    [cell] = read_service_metrics(any_warehouse, cut)
    # c2 (15 s), c3 (unanswered) and c4 (120 s, answered after the range); not c1.
    assert (cell.counts["conversations"], cell.counts["unanswered"]) == (3, 1)
    assert cell.metrics["frt_mean@1"].value == pytest.approx(67.5)
    cut = ServiceQuery(tenant, *hand.DAY, "total", group_by=(), calendar=hand.SUNDAY_GAP)
    [cell] = read_service_metrics(any_warehouse, cut)
    business = {k: (m.value, m.n) for k, m in cell.metrics.items() if "business" in k}
    assert business == {  # as the unit test works it out
        "frt_business_p50@1": (45.0, 3),
        "frt_business_p90@1": (60.0, 3),
        "frt_business_mean@1": (35.0, 3),
    }


def test_calls_in_steps_read_the_same_from_the_warehouse(any_warehouse: Warehouse) -> None:
    """The unit tests' calls in steps (offered, answered, ended), stored as the consumer stores
    them: the SQL takes the same queue, agent, wait and direction from the steps."""
    for statement in projection.ddl(any_warehouse.version):
        any_warehouse.command(statement)
    tenant = f"t{uuid.uuid4().hex[:12]}"
    facts = [f | {"tenant_id": tenant} for f in [*hand.STEPPED, *hand.NAMED, *hand.CALLS]]
    any_warehouse.insert(SERVICE_EVENTS_TABLE, facts + facts[:4])  # re-inserted: counted once
    for group_by in (("queue", "agent"), ("queue",), ("agent",), ()):
        for filters in ({}, {"queue": "sales_q"}, {"agent": "pedro", "threshold_s": 60.0}):
            query = ServiceQuery(tenant, *hand.DAY, "total", group_by=group_by, **filters)
            want = compute_service_metrics(facts, query)
            assert want or filters
            assert_same_cells(read_service_metrics(any_warehouse, query), want)


def test_one_touchpoints_calls_read_after_anothers_are_its_own(wh: Warehouse) -> None:
    # chdb's query condition cache (ClickHouse ≥ 25.3, on by default) reused the granules one
    # parameter value matched for the next: a line's calls read after a chat's came back empty.
    tenant = f"t{uuid.uuid4().hex[:12]}"
    facts = load(wh, make_events(tenant, pop.population(7, size=40)))
    for touchpoint in ("live_chat", "support_line", "billing_line", "support_line"):
        query = ServiceQuery(tenant, *EVERYTHING, "day", touchpoint=touchpoint)
        want = compute_service_metrics(facts, query)
        assert want
        assert_same_cells(read_service_metrics(wh, query), want)
