"""`GET /v1/service/touchpoints` on a running platform (embedded and distributed): the numbers a
CX manager reads for a handful of calls, chats and surveys posted through the ingest API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.deployments import TENANT_A, Api, Deployment, new_tag
from tests.events import event, iso

PROCESSED_WITHIN_S = 60.0
SERVICE = "/v1/service/touchpoints"


def a_past_day() -> datetime:
    """10:00 UTC two days ago: every event below falls in one day bucket."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2) + timedelta(hours=10)


def contacts(tag: str, start: datetime) -> list[dict[str, Any]]:
    who, line, chat = {"customer_id": f"cust-{tag}"}, f"line-{tag}", f"chat-{tag}"
    at = [start + timedelta(seconds=s) for s in (0, 2, 45, 3600, 3615, 7200, 7260)]
    call = {"queue": "q", "agent": "ana", "queue_wait_s": 10, "talk_s": 100, "hold_s": 20,
            "wrap_s": 30}  # fmt: skip
    return [
        event("message.received", "chat", who, at[0], {"text": "hola"}, touchpoint=chat,
              correlation_id=f"c1-{tag}"),
        event("message.sent", "chat", who, at[1], {"sender": "bot"}, touchpoint=chat,
              correlation_id=f"c1-{tag}"),  # a bot does not stop the clock
        event("message.sent", "chat", who, at[2], {"agent": "ana", "queue": "q"},
              touchpoint=chat, correlation_id=f"c1-{tag}"),
        event("message.received", "chat", who, at[3], {}, touchpoint=chat,
              correlation_id=f"c2-{tag}"),
        event("message.sent", "chat", who, at[4], {"agent": "ana", "queue": "q"},
              touchpoint=chat, correlation_id=f"c2-{tag}"),
        event("call.ended", "phone", who, at[5], call, touchpoint=line, correlation_id=f"k1-{tag}"),
        event("call.transferred", "phone", who, at[6], {"to_queue": "q"}, touchpoint=line,
              correlation_id=f"k2-{tag}"),
        event("call.ended", "phone", who, at[6], {**call, "queue_wait_s": 30, "talk_s": 200,
              "hold_s": 0, "wrap_s": 0}, touchpoint=line, correlation_id=f"k2-{tag}"),
        event("call.ended", "phone", who, at[6], {"queue": "q", "queue_wait_s": 50,
              "abandoned": True}, touchpoint=line, correlation_id=f"k3-{tag}"),
        event("survey.sent", "email", who, at[0], {"survey_id": f"s1-{tag}", "kind": "csat"},
              touchpoint=f"survey-{tag}"),
        event("survey.sent", "email", who, at[0], {"survey_id": f"s2-{tag}", "kind": "csat"},
              touchpoint=f"survey-{tag}"),
        event("survey.answered", "survey", who, at[3], {"survey_id": f"s1-{tag}",
              "kind": "csat", "score": 5}, touchpoint=f"survey-{tag}"),
    ]  # fmt: skip


def buckets(api: Api, key: str, touchpoint: str, day: datetime, **params: Any) -> Any:
    window = {"since": iso(day - timedelta(days=1)), "until": iso(day + timedelta(days=1))}
    response = api.get(SERVICE, key, touchpoint=touchpoint, **window, **params)
    assert response.status_code == 200, response.text
    return {(b["queue"], b["agent"]): b for b in response.json()["buckets"]}


def values(bucket: dict[str, Any]) -> dict[str, Any]:
    return {k: m["value"] for k, m in bucket["metrics"].items() if m["n"]}


def test_service_metrics_of_calls_chats_and_surveys(deployment: Deployment, api: Api) -> None:
    tag, day = new_tag(), a_past_day()
    ingest, manager = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "manager")
    api.post_ok(ingest, contacts(tag, day))
    deployment.wait_processed(PROCESSED_WITHIN_S)

    (chat,) = buckets(api, manager, f"chat-{tag}", day).values()
    assert (chat["queue"], chat["agent"], chat["counts"]["conversations"]) == ("q", "ana", 2)
    # The tenant has no calendar: open all the time, business hours equal the wall clock.
    assert values(chat) == {
        "frt_p50@1": 45.0, "frt_p90@1": 45.0, "frt_mean@1": 30.0,
        "frt_business_p50@1": 45.0, "frt_business_p90@1": 45.0, "frt_business_mean@1": 30.0,
    }  # fmt: skip
    calls = buckets(api, manager, f"line-{tag}", day)
    assert values(calls[("q", "ana")]) == {
        "aht@1": 175.0, "asa@1": 20.0, "service_level@1": 50.0, "abandonment@1": 0.0,
        "transfer@1": 50.0,
    }  # fmt: skip
    assert values(calls[("q", "")]) == {"service_level@1": 0.0, "abandonment@1": 100.0}
    strict = buckets(api, manager, f"line-{tag}", day, service_level_s=5)
    assert strict[("q", "ana")]["metrics"]["service_level@1"]["value"] == 0.0
    (surveys,) = buckets(api, manager, f"survey-{tag}", day).values()
    assert values(surveys) == {"response_rate@1": 50.0}


@pytest.mark.parametrize(
    ("params", "status"),
    [({"since": "2026-01-01T00:00:00"}, 422), ({"bucket": "minute"}, 422),
     ({"service_level_s": 0}, 422), ({"queue": "a\x00b"}, 422), ({"group_by": "day"}, 422),
     ({"format": "pdf"}, 422)],
)  # fmt: skip
def test_bad_parameters_and_roles(
    deployment: Deployment, api: Api, params: dict[str, Any], status: int
) -> None:
    agent, ingest = deployment.key(TENANT_A, "agent"), deployment.key(TENANT_A, "ingest")
    response = api.get(SERVICE, agent, **params)
    assert response.status_code == status and response.json()["error"]["details"]
    assert api.get(SERVICE, agent).status_code == 200
    assert api.get(SERVICE, ingest).status_code == 403
    assert api.get(SERVICE, None).status_code == 401


def test_grouped_totals_and_a_csv_download(deployment: Deployment, api: Api) -> None:
    tag, day = new_tag(), a_past_day()
    ingest, manager = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "manager")
    api.post_ok(ingest, contacts(tag, day))
    deployment.wait_processed(PROCESSED_WITHIN_S)

    # The three calls of the line together: two handled (150 s and 200 s of talk, hold and
    # wrap-up; waits 10 s and 30 s), one abandoned after 50 s, one of the handled transferred.
    by_queue = buckets(api, manager, f"line-{tag}", day, bucket="total", group_by="queue")
    assert list(by_queue) == [("q", "")]
    cell = by_queue[("q", "")]
    assert (cell["touchpoint"], cell["channel"], cell["counts"]["calls"]) == ("", "", 3)
    third = pytest.approx(100 / 3)
    assert values(cell) == {
        "aht@1": 175.0, "asa@1": 20.0, "service_level@1": third, "abandonment@1": third,
        "transfer@1": 50.0,
    }  # fmt: skip
    whole = buckets(api, manager, f"line-{tag}", day, bucket="total", group_by="tenant")
    assert list(whole) == [("", "")] and values(whole[("", "")]) == values(cell)

    window = {"since": iso(day - timedelta(days=1)), "until": iso(day + timedelta(days=1))}
    response = api.get(
        SERVICE, manager, touchpoint=f"line-{tag}", group_by=["agent"], format="csv", **window
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["agent"] for r in rows) == ["", "ana"]
    ana = next(r for r in rows if r["agent"] == "ana")
    assert (ana["counts.calls"], float(ana["metrics.aht@1.value"])) == ("2", 175.0)
