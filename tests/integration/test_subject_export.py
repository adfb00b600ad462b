"""The customer export (GDPR subject access) in one process: a history across channels posted over
HTTP, filed by identity resolution, merged through the identity API, exported as a zip and
checked file by file against the APIs that show the same data (`tests/subject_export.py`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.bootstrap import Platform, build
from kernel.customer_key import split_key
from kernel.settings import IngestSettings
from services.query_api.routers import export
from tests.events import event
from tests.integration import test_unified_history as unified
from tests.subject_export import FILENAME, check_export, open_export, timeline

TENANT, OTHER_TENANT = "acme", "globex"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
PHONE, EMAIL = "+34 617 34 56 78", "ana@shop.es"
PHONE_ID, EMAIL_ID = "phone:+34617345678", "email:ana@shop.es"
COMMENT = '=HYPERLINK("http://evil.example","click")'  # a customer's text a sheet would run

# The embedded platform with identity on: test_unified_history's fixture.
platform = unified.platform


class Client:
    def __init__(self, platform: Platform) -> None:
        self.platform, self.http = platform, TestClient(platform.app)
        roles = ("ingest", "agent", "manager", "admin")
        self.keys = {role: platform.keys.create(TENANT, role)[1] for role in roles}
        self.keys["other admin"] = platform.keys.create(OTHER_TENANT, "admin")[1]

    def call(self, method: str, path: str, role: str | None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return self.http.request(method, path, headers=headers, **kwargs)

    def home(self, key: str) -> str:
        """The opaque id of the customer holding an identifier key (`email:ana@shop.es`)."""
        assert self.platform.identity is not None
        [holder] = self.platform.identity.holders_of(TENANT, *split_key(key))
        return holder

    def read(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        answer = self.call("GET", path, "manager", params=query)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, *events: dict[str, Any]) -> None:
        answer = self.call("POST", "/v1/events", "ingest", json={"events": list(events)})
        assert answer.status_code in (200, 202), answer.text
        self.settle()

    def settle(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while any(self.platform.lag().values()):
            assert time.monotonic() < deadline, f"still lagging: {self.platform.lag()}"
            time.sleep(0.05)

    def export(self, customer: str, role: str | None = "admin") -> Any:
        return self.call("GET", f"/v1/customers/{quote(customer, safe='')}/export", role)


def touch(
    type_: str, channel: str, customer: dict[str, Any], minutes: int, payload: Any, **e: Any
) -> dict[str, Any]:
    return event(type_, channel, customer, START + timedelta(minutes=minutes), payload, **e)


@pytest.fixture
def api(platform: Platform) -> Client:
    return Client(platform)


@pytest.fixture
def ana(api: Client) -> Client:
    """Ana calls (a poor CSAT with a formula-like comment raises an alert), chats and orders by
    email; the phone's customer is merged into the email's and the alert is assigned."""
    call, mail = {"phone": PHONE}, {"email": EMAIL}
    api.post(
        touch("call.answered", "phone", call, 0, {"agent": "bob"}, correlation_id="call-1",
              touchpoint="support_line"),
        touch("call.ended", "phone", call, 7, {"agent": "bob", "talk_s": 400},
              correlation_id="call-1", touchpoint="support_line"),
        touch("survey.answered", "survey", call, 20,
              {"kind": "csat", "score": 1, "survey_id": "s-1", "comment": COMMENT},
              correlation_id="call-1", touchpoint="support_line"),
        touch("message.received", "chat", mail, 60, {"text": "-where is my order?"},
              touchpoint="chat"),
        touch("email.opened", "email", mail, 90, {"message_id": "m-1"}, touchpoint="newsletter"),
        touch("order.placed", "web", mail, 120,
              {"order_id": "o-1", "amount": "59.90", "currency": "EUR", "items": 2},
              touchpoint="checkout"),
        touch("survey.answered", "survey", mail, 130, {"kind": "nps", "score": 9},
              touchpoint="checkout"),
    )  # fmt: skip
    merged = api.call(
        "POST",
        "/v1/customers/merge",
        "manager",
        json={"survivor_id": EMAIL_ID, "absorbed_id": PHONE_ID, "reason": "same person"},
    )
    assert merged.status_code == 200, merged.text
    [alert] = api.read("/v1/alerts", customer_id=EMAIL_ID)["alerts"]
    assigned = api.call(
        "POST", f"/v1/alerts/{alert['alert_id']}/assign", "manager", json={"assignee": "eva"}
    )
    assert assigned.status_code == 200, assigned.text
    api.settle()
    return api


@pytest.mark.parametrize("requested", [PHONE_ID, EMAIL_ID])
def test_the_export_holds_what_every_api_shows_for_the_merged_customer(
    ana: Client, requested: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PAGE", 2)  # several pages of events, answers and alerts
    answer = ana.export(requested)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["cache-control"] == "no-store"
    assert FILENAME.fullmatch(answer.headers["content-disposition"])
    assert "ana" not in answer.headers["content-disposition"]

    files = check_export(answer.content, ana.read, requested, TENANT)
    # The story itself, so the comparisons above compared something.
    email, phone = ana.home(EMAIL_ID), ana.home(PHONE_ID)
    assert files["manifest"]["members"] == [email, phone]
    assert {e["channel"] for e in files["events"]} >= {"phone", "chat", "email", "web", "survey"}
    actions = {(e["customer_id"], e["action"]) for e in files["identity_history"]}
    assert {(email, "customers_merged"), (phone, "merged_into_survivor")} <= actions
    assert {(i["kind"], i["held_by"]) for i in files["identifiers"]} >= {
        ("email", email),
        ("phone", phone),
    }
    [alert] = files["alerts"]
    assert (alert["status"], alert["assignee"]) == ("assigned", "eva")
    # Found by a review: the sentiment of her texts and the record of who read her data were
    # hers too, and missing. Her chat is English: scored (Spanish is not, docs/metrics.md).
    chat = next(e for e in files["events"] if e["type"] == "message.received")
    assert chat["event_id"] in {r["event_id"] for r in files["text_sentiment"]}
    assert {r["resource"] for r in files["access_audit"]} >= {"export"}
    assert any(e["type"] == "alert.assigned" for e in files["events"])


def test_customer_text_cannot_run_as_a_formula_in_the_csv(ana: Client) -> None:
    _, tables = open_export(ana.export(EMAIL_ID).content)
    [row] = [r for r in tables["survey_answers"] if r["metric"] == "csat"]
    assert row["verbatim"] == "'" + COMMENT
    assert all(
        not v.startswith(("=", "+", "-", "@"))
        for t in tables.values()
        for r in t
        for v in r.values()
    )


def test_only_an_admin_of_the_customers_tenant_may_export(ana: Client) -> None:
    for role in ("agent", "manager", "ingest"):
        refused = ana.export(EMAIL_ID, role)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden"), role
    assert ana.export(EMAIL_ID, None).status_code == 401
    elsewhere = ana.export(EMAIL_ID, "other admin")
    unknown = ana.export("email:nobody@shop.es")
    assert elsewhere.status_code == unknown.status_code == 404
    assert elsewhere.json() == unknown.json()  # nothing tells another tenant's customer apart
    assert ana.export("x" * 401).status_code == 422


def test_an_export_is_recorded_in_the_access_audit_and_refused_without_it(ana: Client) -> None:
    assert ana.export(PHONE_ID).status_code == 200
    entries = ana.call("GET", "/v1/audit/access", "admin").json()["entries"]
    exports = [e for e in entries if e["resource"] == "export"]
    assert [(e["requested_id"], e["role"]) for e in exports] == [(PHONE_ID, "admin")]
    assert (
        exports[0]["customer_id"]
        == ana.read(f"/v1/customers/{quote(PHONE_ID, safe='')}")["customer_id"]
    )  # the customer the typed id reached
    ana.platform.app.state.access_audit = None  # an export nobody could trace is not sent
    refused = ana.export(EMAIL_ID)
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "audit_unavailable")


def test_the_export_is_documented_as_a_zip(api: Client) -> None:
    spec = api.http.get("/openapi.json").json()
    operation = spec["paths"]["/v1/customers/{customer_id}/export"]["get"]
    assert set(operation["responses"]) >= {"200", "401", "403", "404", "422", "503"}
    assert list(operation["responses"]["200"]["content"]) == ["application/zip"]


def test_without_the_identity_service_the_export_says_so_and_holds_the_rest(
    tmp_path: Path, warehouse: ChdbWarehouse
) -> None:
    settings = IngestSettings(data_dir=tmp_path / "data", identity="rule")
    running = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    running.start()
    try:
        api = Client(running)
        api.post(touch("call.ended", "phone", {"customer_id": "cust-9"}, 0, {"talk_s": 30}))
        files, tables = open_export(api.export("cust-9").content)
    finally:
        unified.stop_keeping_warehouse(running)
    assert files["manifest"]["identity_service"] is False
    assert files["identifiers"] == files["identity_history"] == []
    assert tables["identifiers"] == tables["identity_history"] == []
    assert [e["type"] for e in files["events"]] == ["call.ended"]
    assert files["events"] == timeline(api.read, "cust-9")
    assert files["profile"]["customer_id"] == "cust-9"
