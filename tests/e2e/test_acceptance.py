"""Acceptance: what a user of a running deployment sees, over real HTTP only.

Every test files its data under its own random customers and touchpoints, so the session's one
deployment is shared. The same tests run against every deployment kind (see conftest).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.deployments import (
    STORY_NAME,
    TENANT_A,
    TENANT_B,
    Api,
    Deployment,
    new_tag,
    story,
    survey,
)
from tests.events import event, iso

PROCESSED_WITHIN_S = 60.0


def hours_ago(hours: float) -> datetime:
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


def keys(deployment: Deployment, tenant: str = TENANT_A) -> tuple[str, str, str]:
    """(ingest, agent, manager) keys of a tenant."""
    key = deployment.key
    return key(tenant, "ingest"), key(tenant, "agent"), key(tenant, "manager")


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in entries]


def newest_first(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in sorted(events, key=lambda e: e["occurred_at"], reverse=True)]


def satisfaction(api: Api, key: str, touchpoint: str, around: datetime) -> list[dict[str, Any]]:
    window = {"since": iso(around - timedelta(days=1)), "until": iso(around + timedelta(days=1))}
    response = api.get("/v1/satisfaction/touchpoints", key, touchpoint=touchpoint, **window)
    assert response.status_code == 200, response.text
    buckets: list[dict[str, Any]] = response.json()["buckets"]
    return buckets


def alerts(api: Api, key: str, customer_id: str | None = None) -> list[dict[str, Any]]:
    response = api.get("/v1/alerts", key, customer_id=customer_id, limit=1000)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["alerts"]
    return found


def metric(bucket: dict[str, Any], key: str) -> tuple[float | None, int]:
    value = bucket["metrics"][key]
    return value["value"], value["n"]


# --- one event, one survey ------------------------------------------------------------------
def test_a_posted_event_appears_in_the_customers_timeline(deployment: Deployment, api: Api) -> None:
    ingest, agent, _ = keys(deployment)
    tag = new_tag()
    customer = {"email": f"Ana.{tag}@Mercado.ES", "phone": "+34 612 345 001"}
    call = {"agent": "ana", "talk_s": 320}
    sent = event("call.ended", "phone", customer, hours_ago(1), call, touchpoint=f"line-{tag}")

    response = api.post(ingest, sent)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "event_id": sent["event_id"]}
    deployment.wait_processed(PROCESSED_WITHIN_S)

    # No explicit customer_id: the customer gets an opaque id, found by its email.
    customer_id = api.customer_of(agent, email=f"ANA.{tag}@mercado.es")
    assert customer_id.startswith("c_") and tag not in customer_id
    (entry,) = api.timeline(agent, customer_id)
    assert entry["event_id"] == sent["event_id"]
    where = (entry["channel"], entry["type"], entry["touchpoint"])
    assert where == ("phone", "call.ended", f"line-{tag}")
    assert entry["payload"]["agent"] == "ana"
    assert "Call ended" in entry["summary"]
    found = api.get("/v1/customers", agent, email=f"ANA.{tag}@mercado.es").json()
    assert [c["customer_id"] for c in found["customers"]] == [customer_id]


def test_survey_answers_feed_touchpoint_metrics_and_at_risk_alerts(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, manager = keys(deployment)
    tag, at = new_tag(), hours_ago(1)
    touchpoint = f"delivery-{tag}"
    answers = [
        ("csat", 5),
        ("csat", 4),
        ("csat", 2),
        ("nps", 10),
        ("nps", 3),
        ("ces", 6),
        ("ces", 2),
    ]
    customers = [f"cust-{tag}-{i}" for i in range(len(answers))]
    batch = [
        survey({"customer_id": c}, kind, score, at, touchpoint)
        for c, (kind, score) in zip(customers, answers, strict=True)
    ]
    assert api.post_ok(ingest, batch)["accepted"] == len(batch)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    (bucket,) = satisfaction(api, manager, touchpoint, at)
    assert (bucket["touchpoint"], bucket["channel"]) == (touchpoint, "survey")
    assert bucket["responses"] == {"csat": 3, "nps": 2, "ces": 2}
    assert metric(bucket, "csat@1") == (pytest.approx(200 / 3), 3)  # 2 of 3 rated 4-5
    assert metric(bucket, "csat_mean@1") == (pytest.approx(11 / 3), 3)
    assert metric(bucket, "nps@1") == (pytest.approx(0.0), 2)  # one promoter, one detractor
    assert metric(bucket, "ces@1") == (pytest.approx(4.0), 2)
    assert metric(bucket, "ces_easy@1") == (pytest.approx(50.0), 2)
    assert bucket["metrics"]["csat@1"]["low_confidence"] is True  # n < 30

    raised = {c: alerts(api, agent, c) for c in customers}
    rules = {c: [(a["rule"], a["score"]) for a in found] for c, found in raised.items()}
    assert rules == {
        customers[0]: [], customers[1]: [], customers[2]: [("at_risk.csat", 2)],
        customers[3]: [], customers[4]: [("at_risk.nps", 3)],
        customers[5]: [], customers[6]: [("at_risk.ces", 2)],
    }  # fmt: skip
    csat_alert = raised[customers[2]][0]
    assert csat_alert["event_id"] == batch[2]["event_id"]
    assert csat_alert["touchpoint"] == touchpoint


# --- one customer across channels -----------------------------------------------------------
def test_a_cross_channel_story_is_one_timeline_newest_first(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, manager = keys(deployment)
    tag, start = new_tag(), hours_ago(8)
    customer_id = f"cust-{tag}"
    events = story({"customer_id": customer_id, "email": f"story-{tag}@mercado.es"}, tag, start)
    arrival = events[:]
    random.Random(tag).shuffle(arrival)
    assert api.post_ok(ingest, arrival)["accepted"] == len(events)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    entries = api.timeline(agent, customer_id)
    assert ids(entries) == newest_first(events)
    assert {e["channel"] for e in entries} == {"phone", "survey", "chat", "email", "web"}

    pages = [api.timeline_page(agent, customer_id, limit=3).json()]
    while pages[-1]["next_cursor"]:
        cursor = pages[-1]["next_cursor"]
        pages.append(api.timeline_page(agent, customer_id, limit=3, cursor=cursor).json())
    assert [len(p["entries"]) for p in pages] == [3, 3, 2]
    assert [e for p in pages for e in ids(p["entries"])] == ids(entries)

    calls = api.timeline(agent, customer_id, channel="phone")
    assert ids(calls) == newest_first(events[:2])
    orders = api.timeline(agent, customer_id, type="order.placed")
    assert ids(orders) == newest_first(events[5:7])
    window = {"since": events[3]["occurred_at"], "until": events[6]["occurred_at"]}
    assert ids(api.timeline(agent, customer_id, **window)) == newest_first(events[3:6])
    nothing = api.timeline_page(agent, customer_id, channel="store")
    assert nothing.status_code == 200 and nothing.json()["entries"] == []

    profile = api.profile(agent, customer_id).json()
    assert profile["events"] == len(events)
    assert profile["orders"]["count"] == 2
    (spend,) = profile["orders"]["by_currency"]
    assert (spend["currency"], spend["orders"], spend["amount"]) == ("EUR", 2, "150.00")
    last_csat = profile["satisfaction"]["csat"]
    assert (last_csat["score"], last_csat["responses"]) == (4, 2)
    assert (profile["last_channel"], profile["last_touchpoint"]) == ("survey", f"shop-{tag}")
    assert f"email:story-{tag}@mercado.es" in profile["identifiers"]
    assert profile["name"] == STORY_NAME  # as the order wrote it, accents kept

    # The CSAT 2 answered the call (same correlation_id): counted and alerted on the call's line.
    (call_bucket,) = satisfaction(api, manager, f"line-{tag}", start)
    assert (call_bucket["channel"], metric(call_bucket, "csat@1")) == ("phone", (0.0, 1))
    assert satisfaction(api, manager, f"survey-{tag}", start) == []
    (alert,) = alerts(api, agent, customer_id)
    assert (alert["rule"], alert["score"], alert["severity"]) == ("at_risk.csat", 2, "medium")
    assert (alert["touchpoint"], alert["channel"], alert["agent"]) == (
        f"line-{tag}",
        "phone",
        "ana",
    )


# --- idempotency, mixed batches, arrival order ------------------------------------------------
def test_a_duplicate_is_acknowledged_and_a_conflict_leaves_the_original(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, _ = keys(deployment)
    tag = new_tag()
    customer_id = f"cust-{tag}"
    order = {"order_id": f"o-{tag}", "amount": "10.00", "currency": "EUR"}
    original = event("order.placed", "web", {"customer_id": customer_id}, hours_ago(2), order)
    changed = {**original, "payload": {**order, "amount": "99.00"}}

    assert api.post(ingest, original).json()["status"] == "accepted"
    again = api.post(ingest, original)  # B06
    assert (again.status_code, again.json()["status"]) == (202, "duplicate")
    conflict = api.post(ingest, changed)  # B07
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "conflict")
    batch = api.post_ok(ingest, [original, changed])
    assert [r["status"] for r in batch["results"]] == ["duplicate", "conflict"]
    deployment.wait_processed(PROCESSED_WITHIN_S)

    (entry,) = api.timeline(agent, customer_id)
    assert entry["event_id"] == original["event_id"]
    assert entry["payload"]["order_id"] == f"o-{tag}"
    spend = api.profile(agent, customer_id).json()["orders"]["by_currency"]
    assert [(s["orders"], s["amount"]) for s in spend] == [(1, "10.00")]


def test_a_mixed_batch_reports_every_item_and_stores_the_valid_ones_once(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, _ = keys(deployment)
    tag, at = new_tag(), hours_ago(3)
    customer = {"customer_id": f"cust-{tag}"}
    earlier = event("page.viewed", "web", customer, at, {"url": "https://shop.example/"})
    api.post_ok(ingest, earlier)
    valid = [
        event("page.viewed", "web", customer, at + timedelta(minutes=i), {"url": f"https://s/{i}"})
        for i in range(1, 4)
    ]
    out_of_scale = survey(customer, "csat", 11, at, f"tp-{tag}")
    anonymous = event("page.viewed", "web", {}, at, {"url": "https://shop.example/"})
    batch = [valid[0], out_of_scale, valid[1], anonymous, earlier, valid[2]]

    body = api.post_ok(ingest, batch)  # B05
    assert [r["status"] for r in body["results"]] == [
        "accepted", "rejected", "accepted", "rejected", "duplicate", "accepted"
    ]  # fmt: skip
    assert (body["submitted"], body["accepted"], body["rejected"], body["duplicates"]) == (
        6,
        3,
        2,
        1,
    )
    assert body["accepted"] + body["rejected"] + body["duplicates"] + body["conflicts"] == 6
    paths = [[e["path"] for e in body["results"][i]["errors"]] for i in (1, 3)]
    assert any("score" in p for p in paths[0]), paths
    assert any("customer" in p for p in paths[1]), paths
    deployment.wait_processed(PROCESSED_WITHIN_S)

    assert sorted(ids(api.timeline(agent, customer["customer_id"]))) == sorted(
        e["event_id"] for e in [earlier, *valid]
    )


def _comparable(value: Any, tag: str, as_tag: str, drop: set[str]) -> str:
    """What a user of either customer sees, with one customer's tag written as the other's and the
    fields that must differ (event and alert ids, arrival times) left out, and a reference to one
    of its events (`repeat_of`) written as that event's place in the timeline."""
    places = {e["event_id"]: f"event#{i}" for i, e in enumerate(value.get("timeline", []))}

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in drop}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return places.get(v, v) if isinstance(v, str) else v

    return json.dumps(strip(value), sort_keys=True).replace(tag, as_tag)


def _seen_by(api: Api, deployment: Deployment, tag: str, start: datetime) -> dict[str, Any]:
    _, agent, manager = keys(deployment)
    customer_id = f"cust-{tag}"
    return {
        "timeline": api.timeline(agent, customer_id),
        "profile": api.profile(agent, customer_id).json(),
        "alerts": alerts(api, agent, customer_id),
        "metrics": [satisfaction(api, manager, f"{tp}-{tag}", start) for tp in ("line", "shop")],
    }


def test_out_of_order_arrival_gives_the_same_timeline_and_metrics(
    deployment: Deployment, api: Api
) -> None:
    ingest, _, _ = keys(deployment)
    start = hours_ago(10)
    in_order, reversed_ = new_tag(), new_tag()
    first = story({"customer_id": f"cust-{in_order}"}, in_order, start)
    second = story({"customer_id": f"cust-{reversed_}"}, reversed_, start)
    api.post_ok(ingest, first)
    for one in reversed(second):  # B08: the survey lands before the call it rates, and so on
        api.post_ok(ingest, one)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    seen = {tag: _seen_by(api, deployment, tag, start) for tag in (in_order, reversed_)}
    drop = {"event_id", "alert_id", "received_at", "as_of"}  # as_of: the moment of the read
    assert len(seen[in_order]["timeline"]) == len(first)
    assert len(seen[in_order]["alerts"]) == 1
    assert [len(buckets) for buckets in seen[in_order]["metrics"]] == [1, 1]
    assert _comparable(seen[reversed_], reversed_, in_order, drop) == _comparable(
        seen[in_order], in_order, in_order, drop
    )


# --- tenants and keys -----------------------------------------------------------------------
def test_another_tenants_agent_sees_nothing_of_a_customer(deployment: Deployment, api: Api) -> None:
    ingest_a, agent_a, _ = keys(deployment, TENANT_A)
    ingest_b, agent_b, manager_b = keys(deployment, TENANT_B)
    tag, start = new_tag(), hours_ago(6)
    customer_id, email = f"cust-{tag}", f"iso-{tag}@mercado.es"
    events = story({"customer_id": customer_id, "email": email}, tag, start)
    api.post_ok(ingest_a, events)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    # S01: A's customer is indistinguishable, for B, from one that never existed.
    unknown = api.profile(agent_b, f"cust-{new_tag()}")
    probes = (
        customer_id,
        customer_id.upper(),
        f"{customer_id}/",
        f"email:{email}",
        f"{customer_id}%",
    )
    for probe in probes:
        for response in (api.profile(agent_b, probe), api.timeline_page(agent_b, probe)):
            assert (response.status_code, response.json()) == (404, unknown.json()), probe
    assert api.get("/v1/customers", agent_b, email=email).json()["customers"] == []
    for touchpoint in (f"line-{tag}", f"shop-{tag}"):
        assert satisfaction(api, manager_b, touchpoint, start) == []
    assert alerts(api, agent_b, customer_id) == []
    assert all(a["customer_id"] != customer_id for a in alerts(api, agent_b))

    # Ids are scoped by tenant: B reusing A's event id and customer id is B's own new event.
    reused = {**events[3], "payload": {"text": "tenant b"}}
    assert api.post(ingest_b, reused).json()["status"] == "accepted"
    deployment.wait_processed(PROCESSED_WITHIN_S)
    (b_entry,) = api.timeline(agent_b, customer_id)
    assert b_entry["payload"]["text"] == "tenant b"
    a_entries = api.timeline(agent_a, customer_id)
    assert ids(a_entries) == newest_first(events)
    assert {e["payload"].get("text") for e in a_entries} == {None, "where is my order?"}
    assert len(alerts(api, agent_a, customer_id)) == 1


def test_keys_are_required_and_roles_enforced(deployment: Deployment, api: Api) -> None:
    ingest, agent, manager = keys(deployment)
    tag = new_tag()
    customer_id = f"cust-{tag}"
    sent = event("page.viewed", "web", {"customer_id": customer_id}, hours_ago(1), {"url": "/"})
    bad_keys = [None, "cem_0123456789abcdef_not-a-real-secret", "not-even-shaped-like-a-key"]

    for bad in bad_keys:  # B13
        assert api.post(bad, sent).status_code == 401
        response = api.timeline_page(bad, customer_id)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    basic = api.http.get("/v1/alerts", headers={"Authorization": f"Basic {agent}"})
    assert basic.status_code == 401
    for reader_only in (agent, manager):  # S02: reading keys cannot write
        assert api.post(reader_only, sent).status_code == 403
    smuggled = {**sent, "tenant_id": TENANT_B}  # B03: the tenant comes only from the key
    assert api.post(ingest, smuggled).status_code == 422
    for path in (
        f"/v1/customers/{customer_id}/timeline",
        f"/v1/customers/{customer_id}",
        "/v1/alerts",
        "/v1/satisfaction/touchpoints",
    ):  # S02: ingest keys cannot read
        response = api.get(path, ingest)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    deployment.wait_processed(PROCESSED_WITHIN_S)

    assert api.profile(agent, customer_id).status_code == 404  # nothing was published


def test_health_docs_and_openapi_answer(deployment: Deployment, api: Api) -> None:
    paths: set[str] = set()
    for service in api.services:  # one server, or the ingest and the query API
        health = service.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        docs = service.get("/docs")
        assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
        spec = service.get("/openapi.json")
        assert spec.status_code == 200
        paths |= set(spec.json()["paths"])
    for path in (
        "/v1/events",
        "/v1/customers/{customer_id}/timeline",
        "/v1/customers/{customer_id}",
        "/v1/customers",
        "/v1/satisfaction/touchpoints",
        "/v1/alerts",
    ):
        assert path in paths, sorted(paths)
