"""What the satisfaction consumer stores per event, and the Python reference of attribution."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.ports import Consumed
from kernel.processing import process_batch, to_micros
from schemas.envelope import Event
from schemas.validate import accept, encode
from services.satisfaction import lifecycle_sql, sql
from services.satisfaction.attribution import Attribution, attribute_response
from services.satisfaction.projection import SatisfactionProjection

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
projection = SatisfactionProjection()


def satisfaction_rows(e: Event) -> dict[str, Any]:
    """The rows of the satisfaction tables; the service metrics' facts and the customers'
    touchpoints (for attribution) and the texts' sentiment are tested apart."""
    apart = ("service_events", "customer_touchpoints", "text_sentiment")
    return {t: r for t, r in projection.rows(e).items() if t not in apart}


def event(tenant: str = "acme", **fields: Any) -> Event:
    raw = {
        "event_id": str(uuid.uuid4()),
        "customer": {"customer_id": "cust-1"},
        "occurred_at": "2026-03-01T10:00:00Z",
        **fields,
    }
    return accept(raw, tenant, RECEIVED)[0]


def survey(**fields: Any) -> Event:
    return event(channel="survey", type="survey.answered", **fields)


def test_a_survey_answer_becomes_one_response_row() -> None:
    answered = survey(
        touchpoint="post_call_survey",
        correlation_id="call-7",
        payload={"survey_id": "s-1", "kind": "csat", "score": 4, "comment": "quick fix 👍"},
    )
    rows = satisfaction_rows(answered)
    assert rows == {
        "survey_responses": [
            {
                "tenant_id": "acme",
                "event_id": str(answered.event_id),
                "customer_id": "cust-1",
                "survey_id": "s-1",
                "kind": "csat",
                "score": 4,
                "scale": "1-5",
                "touchpoint": "post_call_survey",
                "channel": "survey",
                "correlation_id": "call-7",
                "answered_at": to_micros(answered.derived_at),
                "comment": "quick fix 👍",
            }
        ]
    }


def test_a_response_is_filed_under_the_customer_key_and_clock_corrected_time() -> None:
    # The survey tool's clock is 2 hours fast: sent_at says so, and derived_at corrects it.
    answered = survey(
        customer={"email": "Ann@Example.COM"},
        occurred_at="2026-03-01T13:59:00Z",
        sent_at="2026-03-01T14:00:00Z",
        payload={"kind": "nps", "score": 9},
    )
    (row,) = projection.rows(answered)["survey_responses"]
    assert row["customer_id"] == "email:ann@example.com"
    assert row["answered_at"] == to_micros(RECEIVED - timedelta(minutes=1))
    assert row["correlation_id"] == "" and row["survey_id"] == "" and row["comment"] == ""
    assert row["touchpoint"] == "survey"  # no touchpoint sent: the channel names it


def test_a_conversation_event_becomes_an_interaction_with_agent_and_queue() -> None:
    ended = event(
        channel="phone",
        type="call.ended",
        touchpoint="support_line",
        correlation_id="call-7",
        payload={"agent": "agent-42", "queue": "billing", "talk_s": 300},
    )
    assert satisfaction_rows(ended) == {
        "interactions": [
            {
                "tenant_id": "acme",
                "correlation_id": "call-7",
                "event_id": str(ended.event_id),
                "derived_at": to_micros(ended.derived_at),
                "type": "call.ended",
                "touchpoint": "support_line",
                "channel": "phone",
                "agent": "agent-42",
                "queue": "billing",
            }
        ]
    }


def test_a_transfer_hands_the_interaction_to_its_target() -> None:
    transferred = event(
        channel="phone",
        type="call.transferred",
        correlation_id="call-7",
        payload={"from_agent": "agent-1", "to_agent": "agent-2", "to_queue": "retention"},
    )
    (row,) = projection.rows(transferred)["interactions"]
    assert (row["agent"], row["queue"]) == ("agent-2", "retention")


def test_an_interaction_without_agent_or_queue_stores_empty_strings() -> None:
    viewed = event(
        channel="web", type="page.viewed", correlation_id="visit-1", payload={"url": "/help"}
    )
    (row,) = projection.rows(viewed)["interactions"]
    assert (row["agent"], row["queue"], row["touchpoint"]) == ("", "", "web")


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "phone", "type": "call.ended", "payload": {"agent": "a"}},
        {
            "channel": "email",
            "type": "survey.sent",
            "correlation_id": "c",
            "payload": {"survey_id": "s", "kind": "nps"},
        },
        {"channel": "web", "type": "page.viewed", "payload": {"url": "/"}},
    ],
    ids=["no-correlation", "survey-sent", "page-view-alone"],
)
def test_events_the_consumer_does_not_keep(fields: dict[str, Any]) -> None:
    assert satisfaction_rows(event(**fields)) == {}


def test_a_poor_answer_also_writes_an_alert_row() -> None:
    rows = satisfaction_rows(survey(payload={"kind": "ces", "score": 2}))
    assert set(rows) == {"survey_responses", "alerts"}
    assert rows["alerts"][0]["rule"] == "at_risk.ces"


def test_rows_are_a_pure_function_of_the_event() -> None:
    answered = survey(correlation_id="c", payload={"kind": "nps", "score": 3})
    assert projection.rows(answered) == projection.rows(answered.model_copy())


def test_a_poison_survey_answer_becomes_a_dead_letter_and_the_batch_goes_on() -> None:
    # The log holds bytes, not validated models: a score outside the scale can reach the consumer.
    bad = survey(payload={"kind": "csat", "score": 3}).model_copy(
        update={"payload": {"kind": "csat", "score": 11}}
    )
    good = survey(payload={"kind": "csat", "score": 5})
    records = [Consumed("touchpoints", 0, i, b"k", encode(e)) for i, e in enumerate([bad, good])]
    result = process_batch("satisfaction", records, projection.rows)
    assert [d.reason for d in result.dead_letters] == ["processing_failed"]
    assert [r["score"] for r in result.rows["survey_responses"]] == [5]
    assert result.next_offsets == {0: 2}


def test_ddl_is_replacing_merge_tree_without_partitions_or_version_specific_types() -> None:
    statements = projection.ddl((18, 16, 1))
    assert len(statements) == 7
    for statement in statements:
        assert "ReplacingMergeTree" in statement
        assert "PARTITION BY" not in statement
        for banned in ("Nullable", "LowCardinality", "DateTime64", "Map(", "JSON"):
            assert banned not in statement
    tables = {re.search(r"EXISTS (\w+)", s).group(1) for s in statements}  # type: ignore[union-attr]
    assert tables == {
        sql.RESPONSES_TABLE,
        sql.INTERACTIONS_TABLE,
        sql.ALERTS_TABLE,
        lifecycle_sql.ACTIONS_TABLE,
        "service_events",
        "customer_touchpoints",
        "text_sentiment",
    }


# --- attribution reference --------------------------------------------------------------------
def _interaction(
    event_id: str, at: int, touchpoint: str, agent: str = "", queue: str = ""
) -> dict[str, Any]:
    return {
        "tenant_id": "acme",
        "correlation_id": "c1",
        "event_id": event_id,
        "derived_at": at,
        "touchpoint": touchpoint,
        "channel": "phone",
        "agent": agent,
        "queue": queue,
    }


def _response(correlation_id: str, tenant: str = "acme") -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "correlation_id": correlation_id,
        "customer_id": "cust-1",
        "survey_id": "",
        "answered_at": 1000,
        "touchpoint": "post_call_survey",
        "channel": "survey",
    }


def _attribute(response: dict[str, Any], interactions: list[dict[str, Any]]) -> Attribution:
    return attribute_response(response, interactions, touchpoints=[], sent_at={})


def test_a_response_is_attributed_to_the_latest_interaction_of_its_conversation() -> None:
    interactions = [
        _interaction("e1", 100, "ivr", queue="billing"),
        _interaction("e2", 200, "support_line", agent="agent-1"),
        _interaction("e3", 300, "support_line"),  # call.ended without an agent
        _interaction("e4", 2000, "live_chat", agent="agent-2"),  # after the answer: not it
    ]
    assert _attribute(_response("c1"), interactions) == Attribution(
        "support_line", "phone", "agent-1", "billing", attributed=True
    )


def test_simultaneous_interactions_break_the_tie_by_event_id() -> None:
    interactions = [_interaction("b", 100, "second"), _interaction("a", 100, "first")]
    assert _attribute(_response("c1"), interactions).touchpoint == "second"


@pytest.mark.parametrize(
    "response",
    [_response(""), _response("other-conversation"), _response("c1", tenant="globex")],
    ids=["no-correlation", "unknown-conversation", "other-tenant"],
)
def test_without_a_matching_interaction_the_response_keeps_its_own_touchpoint(
    response: dict[str, Any],
) -> None:
    interactions = [_interaction("e1", 100, "support_line", "agent-1")]
    assert _attribute(response, interactions) == Attribution(
        "post_call_survey", "survey", "", "", attributed=False
    )


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["ivr", "desk", "chat"]), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_the_reference_does_not_depend_on_arrival_order(
    specs: list[tuple[int, str, bool]], random: Any
) -> None:
    rows = [
        _interaction(f"e{i}", at, tp, agent=f"agent-{i}" if known else "")
        for i, (at, tp, known) in enumerate(specs)
    ]
    shuffled = rows[:]
    random.shuffle(shuffled)
    assert _attribute(_response("c1"), rows) == _attribute(_response("c1"), shuffled)


def test_every_non_survey_event_is_a_touchpoint_of_its_customer() -> None:
    viewed = event(channel="web", type="page.viewed", touchpoint="checkout", payload={"url": "/"})
    (row,) = projection.rows(viewed)["customer_touchpoints"]
    assert (row["customer_id"], row["touchpoint"], row["channel"]) == ("cust-1", "checkout", "web")
    sent = event(channel="email", type="survey.sent", payload={"survey_id": "s", "kind": "nps"})
    assert "customer_touchpoints" not in projection.rows(sent)
