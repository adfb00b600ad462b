"""At-risk alerts of a merged customer, through the query API of the embedded platform with the
identity service on (the platform and helpers of test_unified_history): `?customer_id=` answers
with every member's alerts, for any id of the group, and a split gives each side its own back; a
manager's action on an alert stays with the alert's customer whoever holds its identifiers now."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cem.bootstrap import Platform
from services.satisfaction.sql import ALERTS_TABLE
from tests.integration import test_unified_history as unified
from tests.integration.test_unified_history import (
    EMAIL,
    EMAIL_ID,
    PHONE,
    PHONE_ID,
    START,
    Client,
    replayed_tables,
    touch,
)

# The embedded platform with identity on, and its client: test_unified_history's fixtures.
platform, api = unified.platform, unified.api


def alerts(api: Client, customer_id: str, **params: Any) -> list[dict[str, Any]]:
    answer = api.call("GET", "/v1/alerts", params={"customer_id": customer_id, **params})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["alerts"]
    return found


def unhappy(api: Client) -> dict[str, str]:
    """A CSAT 1 by phone and an NPS 2 by email, 30 minutes apart, filed under two customers:
    the id of the survey answer behind each one's alert."""
    by_phone, by_email = api.post(
        touch("survey.answered", "survey", {"phone": PHONE}, 0, {"kind": "csat", "score": 1}),
        touch("survey.answered", "survey", {"email": EMAIL}, 30, {"kind": "nps", "score": 2}),
    )
    return {PHONE_ID: by_phone, EMAIL_ID: by_email}


def test_a_merged_customers_alerts_are_every_members_newest_first_for_any_of_its_ids(
    api: Client,
) -> None:
    answers = unhappy(api)
    assert [a["event_id"] for a in alerts(api, PHONE_ID)] == [answers[PHONE_ID]]
    merged = api.merge(EMAIL_ID, PHONE_ID)
    assert merged.status_code == 200, merged.text

    newest_first = [answers[EMAIL_ID], answers[PHONE_ID]]
    for requested in (EMAIL_ID, PHONE_ID):
        found = alerts(api, requested)
        assert [a["event_id"] for a in found] == newest_first, requested
        # Each alert keeps the member it was filed under.
        assert [a["customer_id"] for a in found] == [api.home(EMAIL_ID), api.home(PHONE_ID)]
        assert [a["rule"] for a in found] == ["at_risk.nps", "at_risk.csat"]
    assert [a["event_id"] for a in alerts(api, PHONE_ID, limit=1)] == [answers[EMAIL_ID]]


def test_a_merged_customers_alerts_are_read_in_one_query(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = unhappy(api)
    assert api.merge(EMAIL_ID, PHONE_ID).status_code == 200
    warehouse = api.platform.warehouse
    select = warehouse.select
    reads: list[Mapping[str, Any]] = []

    def spy(sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if f"FROM {ALERTS_TABLE}" in sql:
            reads.append(params or {})
        return select(sql, params)

    monkeypatch.setattr(warehouse, "select", spy)
    assert [a["event_id"] for a in alerts(api, PHONE_ID)] == [answers[EMAIL_ID], answers[PHONE_ID]]
    (read,) = reads
    members = {v for k, v in read.items() if k.startswith("member_")}
    assert members == {api.home(EMAIL_ID), api.home(PHONE_ID)}
    # `since` and `limit` apply to the members' alerts together.
    later = (START + timedelta(minutes=10)).isoformat()
    assert [a["event_id"] for a in alerts(api, EMAIL_ID, since=later)] == [answers[EMAIL_ID]]
    assert [a["event_id"] for a in alerts(api, EMAIL_ID, limit=1)] == [answers[EMAIL_ID]]
    assert len(reads) == 3


def test_after_a_split_each_side_has_only_its_own_alerts(api: Client) -> None:
    answers = unhappy(api)
    assert api.merge(EMAIL_ID, PHONE_ID).status_code == 200
    split = api.split(EMAIL_ID, PHONE_ID)
    assert split.status_code == 200, split.text
    for customer_id in (EMAIL_ID, PHONE_ID):
        assert [a["event_id"] for a in alerts(api, customer_id)] == [answers[customer_id]]


def test_an_unknown_customer_has_no_alerts_and_a_shared_identifier_asks_which(
    api: Client,
) -> None:
    unhappy(api)
    assert alerts(api, "email:nobody@shop.es") == []
    assert alerts(api, "crm-unknown") == []
    line = "+34 912 34 56 78"  # a household landline two customers answer
    for person in ("dad", "kid"):
        payload = {"kind": "csat", "score": 1}
        customer = {"email": f"{person}@shop.es", "phone": line}
        api.post(touch("survey.answered", "survey", customer, 5, payload))
    answer = api.call("GET", "/v1/alerts", params={"customer_id": "phone:+34912345678"})
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "ambiguous_customer"
    by_dad = alerts(api, "email:dad@shop.es")
    assert [a["customer_id"] for a in by_dad] == [api.home("email:dad@shop.es")]


def test_an_alert_action_stays_with_the_alerts_customer_when_its_email_is_someone_elses(
    api: Client, platform: Platform, chdb_path: Path
) -> None:
    api.post(touch("survey.answered", "survey", {"email": EMAIL}, 0, {"kind": "csat", "score": 1}))
    ana = api.home(EMAIL_ID)
    [alert] = alerts(api, ana)
    body = {"kind": "email", "value": EMAIL, "reason": "a shared mailbox"}
    unlinked = api.call("POST", f"/v1/customers/{ana}/unlink", "admin", json=body)
    assert unlinked.status_code == 200, unlinked.text
    api.post(touch("page.viewed", "web", {"email": EMAIL}, 10, {"url": "https://shop.es/"}))
    someone_else = api.home(EMAIL_ID)
    assert someone_else != ana

    path = f"/v1/alerts/{alert['alert_id']}/resolve"
    resolved = api.call("POST", path, "manager", json={"note": "called back"})
    assert resolved.status_code == 200, resolved.text
    api.settle()
    action = resolved.json()["event_id"]
    assert action in api.timeline(ana)
    assert action not in api.timeline(someone_else)
    assert [(a["alert_id"], a["status"]) for a in alerts(api, ana)] == [
        (alert["alert_id"], "resolved")
    ]
    # A replay files it where it was filed live: under the alert's customer.
    rebuilt = replayed_tables(platform, chdb_path)["customer_timeline"]
    assert {r["customer_id"] for r in rebuilt if r["event_id"] == action} == {ana}
