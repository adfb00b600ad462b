"""drift@1 read from the stored answers on chdb and on a ClickHouse server equals the pure rule over
the same events attributed by the Python reference: the daily samples, the alerts, their ids and
the answers they link to."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from kernel.ports import Warehouse
from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.validate import accept
from services.satisfaction import sql
from services.satisfaction.attribution import attribute_response
from services.satisfaction.attribution_sql import CUSTOMER_TOUCHPOINTS_TABLE
from services.satisfaction.drift import DAY_S, DRIFT_METRICS, daily_samples, detect
from services.satisfaction.drift_sql import (
    LOOKBACK_DAYS,
    closed_days,
    drift_of,
    find_drift_alert,
    read_alerts_with_drift,
    read_daily_samples,
    read_drift_alerts,
)
from services.satisfaction.projection import SatisfactionProjection
from tests.integration.test_satisfaction_chdb import BASE, load, new_tenant

projection = SatisfactionProjection()
DAYS = 30


@pytest.fixture
def wh(any_warehouse: Warehouse) -> Warehouse:
    for statement in projection.ddl(any_warehouse.version):
        any_warehouse.command(statement)
    return any_warehouse


def calls_and_answers(seed: int) -> list[dict[str, Any]]:
    """Each day, 60 rated calls on each of two lines; on the last day the support line's CSAT falls
    from ~85% to ~45% while the billing line's holds. The answers come from a survey touchpoint
    and count for the call they rate (by correlation id)."""
    rng = random.Random(seed)
    raws: list[dict[str, Any]] = []
    for day in range(DAYS):
        for line in ("support_line", "billing_line"):
            satisfied = 0.45 if (day == DAYS - 1 and line == "support_line") else 0.85
            for i in range(60):
                at = BASE + timedelta(days=day, minutes=10 * i)
                corr = f"{line}-{day}-{i}"
                raws.append({"channel": "phone", "type": "call.ended", "touchpoint": line,
                             "correlation_id": corr, "customer": {"customer_id": f"c{i}"},
                             "occurred_at": at.isoformat(), "payload": {"agent": "ann"}})  # fmt: skip
                kind = rng.choice(["csat"] * 5 + ["nps", "ces"])
                score = {"csat": 5 if rng.random() < satisfied else 2,
                         "nps": rng.choice([10, 9, 8, 3]), "ces": rng.randint(4, 7)}[kind]  # fmt: skip
                raws.append({"channel": "survey", "type": "survey.answered",
                             "touchpoint": "post_call_survey", "correlation_id": corr,
                             "customer": {"customer_id": f"c{i}"},
                             "occurred_at": (at + timedelta(minutes=2)).isoformat(),
                             "payload": {"kind": kind, "score": score}})  # fmt: skip
    return raws


def make_events(tenant: str, raws: list[dict[str, Any]]) -> list[Event]:
    received = BASE + timedelta(days=DAYS + 1)
    return [accept({**raw, "event_id": str(uuid.uuid4())}, tenant, received)[0] for raw in raws]


def attributed(events: list[Event]) -> list[dict[str, Any]]:
    rows = [projection.rows(e) for e in events]
    interactions = [r for t in rows for r in t.get(sql.INTERACTIONS_TABLE, [])]
    touchpoints = [r for t in rows for r in t.get(CUSTOMER_TOUCHPOINTS_TABLE, [])]
    answers = [r for t in rows for r in t.get(sql.RESPONSES_TABLE, [])]
    return [
        r | {"touchpoint": attribute_response(r, interactions, touchpoints, {}).touchpoint}
        for r in answers
    ]


def test_sql_drift_equals_the_pure_rule(wh: Warehouse) -> None:
    tenant = new_tenant()
    events = make_events(tenant, calls_and_answers(seed=3))
    load(wh, events)
    load(wh, events[:200])  # a reprocessed batch
    answers = attributed(events)
    since, until = to_micros(BASE), to_micros(BASE + timedelta(days=DAYS))
    assert read_daily_samples(wh, tenant, since, until) == pytest.approx(daily_samples(answers))

    days = closed_days(since, until)
    assert len(days) == DAYS
    expected = detect(tenant, daily_samples(answers), days)
    found = read_drift_alerts(wh, tenant, days)
    assert [f.alert for f in found] == expected
    [alert] = found  # the support line's CSAT on the last day, nothing else
    last_day = int(BASE.timestamp()) + (DAYS - 1) * DAY_S
    assert (alert.alert.touchpoint, alert.alert.metric.key) == ("support_line", "csat@1")
    assert alert.alert.period_start == last_day
    csat = DRIFT_METRICS[0]
    driving = sorted(
        (r["answered_at"], r["event_id"])
        for r in answers
        if r["touchpoint"] == "support_line" and r["kind"] == "csat"
        and r["answered_at"] >= last_day * 1_000_000 and csat.drives(r["score"])
    )  # fmt: skip
    assert alert.answers == [event_id for _, event_id in driving]
    assert alert.answers_total == len(driving) > 0

    # An action on the alert finds it by id among the days `GET /v1/alerts` would list then.
    as_of = until + 1_000_000
    assert find_drift_alert(wh, tenant, alert.alert.alert_id, as_of) == alert.alert
    assert find_drift_alert(wh, tenant, "no-such-alert", as_of) is None
    assert find_drift_alert(wh, tenant, alert.alert.alert_id, until - 1) is None  # not closed
    later = until + (LOOKBACK_DAYS + 1) * DAY_S * 1_000_000  # no longer listed
    assert find_drift_alert(wh, tenant, alert.alert.alert_id, later) is None


def test_days_are_closed_utc_days_within_the_range() -> None:
    day = 86_400_000_000
    assert closed_days(0, day) == [0]
    assert closed_days(1, 2 * day) == [86_400]
    assert closed_days(0, 2 * day - 1) == [0]


def test_a_listing_read_page_by_page_with_drift_evaluated_once_is_the_whole_listing(
    wh: Warehouse,
) -> None:
    # A whole alerts download reads pages of 1,000 and evaluates the range's drift alerts once
    # for all of them (it did once per page): the pages, put end to end, are the listing.
    tenant = new_tenant()
    load(wh, make_events(tenant, calls_and_answers(seed=3)))
    as_of = to_micros(BASE + timedelta(days=DAYS)) + 1_000_000
    whole = read_alerts_with_drift(wh, sql.AlertQuery(tenant_id=tenant, limit=100_000), as_of)
    assert any(r["rule"] == "drift.csat" for r in whole) and len(whole) > 100
    query = sql.AlertQuery(tenant_id=tenant, limit=38)
    drift = drift_of(wh, query, as_of)
    assert [r["rule"] for r in drift] == ["drift.csat"]
    pages: list[dict[str, Any]] = []
    while True:
        page = read_alerts_with_drift(wh, query, as_of, drift)
        pages += page
        if len(page) < query.limit:
            break
        query = replace(query, before=(int(page[-1]["raised_at"]), page[-1]["alert_id"]))
    assert [r["alert_id"] for r in pages] == [r["alert_id"] for r in whole]
    # One customer's alerts have no drift alert: a touchpoint's, not a customer's.
    assert drift_of(wh, sql.AlertQuery(tenant_id=tenant, customers=("c1",)), as_of) == []
