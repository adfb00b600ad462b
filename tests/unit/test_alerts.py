"""At-risk alerts: which answers raise one, how severe, and that a replay raises the same one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.processing import to_micros
from schemas.families import SCALES
from schemas.validate import accept
from services.satisfaction.alerts import AT_RISK_RULES, RULE_SET, alert_id, to_alert_rows
from services.satisfaction.projection import SatisfactionProjection
from services.satisfaction.sql import AlertQuery

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# METRICS.md: CSAT ≤ 2, NPS ≤ 6, CES ≤ 3 put a customer at risk.
AT_RISK_AT_MOST = {"csat": 2, "nps": 6, "ces": 3}
projection = SatisfactionProjection()


def answer(kind: str, score: int, tenant: str = "acme", **fields: Any) -> list[dict[str, Any]]:
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": "survey",
        "type": "survey.answered",
        "touchpoint": "post_call_survey",
        "customer": {"customer_id": "cust-9"},
        "occurred_at": "2026-03-01T11:00:00Z",
        "payload": {"kind": kind, "score": score},
        **fields,
    }
    return projection.rows(accept(raw, tenant, RECEIVED)[0]).get("alerts", [])


every_answer = st.sampled_from(sorted(SCALES)).flatmap(
    lambda kind: st.tuples(st.just(kind), st.integers(*SCALES[kind]))
)


@settings(max_examples=50)
@given(every_answer)
def test_an_alert_is_raised_exactly_when_the_score_is_at_or_below_the_threshold(
    kind_score: tuple[str, int],
) -> None:
    kind, score = kind_score
    alerts = answer(kind, score)
    assert len(alerts) == (1 if score <= AT_RISK_AT_MOST[kind] else 0)


@pytest.mark.parametrize(
    ("kind", "score", "raised"),
    [("csat", 2, True), ("csat", 3, False), ("nps", 6, True), ("nps", 7, False),
     ("ces", 3, True), ("ces", 4, False)],
)  # fmt: skip
def test_threshold_boundaries(kind: str, score: int, raised: bool) -> None:
    assert bool(answer(kind, score)) is raised


@pytest.mark.parametrize(
    ("kind", "score", "severity"),
    [("csat", 1, "high"), ("csat", 2, "medium"), ("nps", 0, "high"), ("nps", 3, "high"),
     ("nps", 4, "medium"), ("nps", 6, "medium"), ("ces", 2, "high"), ("ces", 3, "medium")],
)  # fmt: skip
def test_the_worst_answers_are_high_severity(kind: str, score: int, severity: str) -> None:
    (alert,) = answer(kind, score)
    assert alert["severity"] == severity


def test_an_alert_names_the_customer_the_answer_and_where_it_was_given() -> None:
    event_id = str(uuid.uuid4())
    (alert,) = answer("nps", 2, event_id=event_id, correlation_id="call-3")
    assert alert["customer_id"] == "cust-9"
    assert (alert["rule"], alert["metric"], alert["score"], alert["scale"]) == (
        "at_risk.nps",
        "nps",
        2,
        "0-10",
    )
    assert (alert["touchpoint"], alert["channel"]) == ("post_call_survey", "survey")
    assert (alert["event_id"], alert["correlation_id"]) == (event_id, "call-3")
    assert alert["raised_at"] == to_micros(datetime(2026, 3, 1, 11, 0, tzinfo=UTC))  # answered
    assert "NPS answer 2" in alert["message"]
    assert alert["alert_id"] == alert_id("acme", event_id, "at_risk.nps")


def test_a_reprocessed_answer_raises_the_same_alert_id() -> None:
    event_id = str(uuid.uuid4())
    first = answer("csat", 1, event_id=event_id)
    again = answer("csat", 1, event_id=event_id)
    assert first == again


def test_alert_ids_differ_by_tenant_event_and_rule() -> None:
    ids = {
        alert_id("acme", "e1", "at_risk.csat"),
        alert_id("globex", "e1", "at_risk.csat"),
        alert_id("acme", "e2", "at_risk.csat"),
        alert_id("acme", "e1", "at_risk.nps"),
    }
    assert len(ids) == 4
    assert all(uuid.UUID(i).version == 5 for i in ids)


def test_an_answer_on_an_unknown_scale_raises_nothing() -> None:
    # Rules are bound to the v1 scales; a future scale needs a new rule set, not a silent reuse.
    response = {"kind": "csat", "score": 1, "scale": "0-10", "tenant_id": "acme"}
    assert to_alert_rows(response) == []


def test_rules_cover_every_survey_kind_once() -> None:
    assert RULE_SET == "at_risk@1"
    assert sorted(r.kind for r in AT_RISK_RULES) == sorted(SCALES)
    assert all(r.scale == "{}-{}".format(*SCALES[r.kind]) for r in AT_RISK_RULES)


def test_the_alerts_query_filters_customers_only_when_asked_and_only_by_parameters() -> None:
    assert AlertQuery("acme").customers_filter() == ("", {})
    with pytest.raises(ValueError, match="at least one member"):
        AlertQuery("acme", customers=()).customers_filter()  # never "everyone" by accident
    members = ("email:ana@shop.es", "x' OR '1'='1")
    condition, params = AlertQuery("acme", customers=members).customers_filter()
    assert condition == " AND customer_id IN ({member_0:String}, {member_1:String})"
    assert params == {"member_0": members[0], "member_1": members[1]}
