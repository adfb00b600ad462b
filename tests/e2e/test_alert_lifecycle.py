"""Closing the loop on an at-risk alert, as a manager does it over HTTP on every deployment kind:
assign, acknowledge, resolve with a note; each action is an event on the customer's timeline
and the alert's status follows; wrong moves are 404/409/403 in the one error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.e2e.deployments import (
    TENANT_A,
    TENANT_B,
    Api,
    Deployment,
    needs_identity,
    new_tag,
    survey,
)
from tests.events import event


def alert_of(api: Api, key: str, customer_id: str) -> dict[str, Any]:
    response = api.get("/v1/alerts", key, customer_id=customer_id)
    assert response.status_code == 200, response.text
    [alert] = response.json()["alerts"]
    return dict(alert)


def act(api: Api, key: str | None, alert_id: str, action: str, body: Any) -> Any:
    return api.command(key, f"/v1/alerts/{alert_id}/{action}", body)


def test_a_manager_assigns_acknowledges_and_resolves_an_alert(
    api: Api, deployment: Deployment
) -> None:
    ingest, manager = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "manager")
    tag = new_tag()
    customer_id = f"unhappy-{tag}"
    at = datetime.now(UTC) - timedelta(hours=1)
    api.post_ok(ingest, survey({"customer_id": customer_id}, "csat", 1, at, f"line-{tag}"))
    deployment.wait_processed()
    alert = alert_of(api, manager, customer_id)
    assert (alert["status"], alert["assignee"], alert["note"]) == ("open", None, None)
    alert_id = alert["alert_id"]

    assigned = act(api, manager, alert_id, "assign", {"assignee": "ana", "note": "call back"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned"
    assert act(api, manager, alert_id, "acknowledge", {}).status_code == 200
    deployment.wait_processed()
    alert = alert_of(api, manager, customer_id)
    assert (alert["status"], alert["assignee"], alert["note"]) == (
        "acknowledged",
        "ana",
        "call back",
    )

    resolved = act(api, manager, alert_id, "resolve", {"note": "refund sent"})
    assert resolved.status_code == 200, resolved.text
    deployment.wait_processed()
    alert = alert_of(api, manager, customer_id)
    assert (alert["status"], alert["note"]) == ("resolved", "refund sent")

    timeline = api.timeline(deployment.key(TENANT_A, "agent"), customer_id)
    actions = [e for e in timeline if e["type"].startswith("alert.")]
    assert [e["type"] for e in actions] == [
        "alert.resolved",
        "alert.acknowledged",
        "alert.assigned",
    ]
    assert actions[0]["payload"]["note"] == "refund sent"
    assert "refund sent" in actions[0]["summary"]
    # Working the alert is no contact of the customer's: the header's last contact is still the
    # answer an hour ago (a browser review saw "Last contact: a minute ago · other").
    profile = api.profile(deployment.key(TENANT_A, "agent"), customer_id).json()
    assert (profile["events"], profile["last_channel"]) == (1, "survey"), profile
    assert profile["last_touchpoint"] == f"line-{tag}"
    assert [c["channel"] for c in profile["channels"]] == ["survey"]

    again = act(api, manager, alert_id, "resolve", {"note": "twice"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"


def test_wrong_alert_actions_are_refused_in_the_one_error_shape(
    api: Api, deployment: Deployment
) -> None:
    ingest, manager = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "manager")
    customer_id = f"refused-{new_tag()}"
    at = datetime.now(UTC) - timedelta(hours=1)
    api.post_ok(ingest, survey({"customer_id": customer_id}, "nps", 2, at, f"t-{new_tag()}"))
    deployment.wait_processed()
    alert_id = alert_of(api, manager, customer_id)["alert_id"]

    unknown = act(api, manager, "no-such-alert", "acknowledge", {})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    other_tenant = act(api, deployment.key(TENANT_B, "manager"), alert_id, "acknowledge", {})
    assert other_tenant.status_code == 404
    agent = act(api, deployment.key(TENANT_A, "agent"), alert_id, "acknowledge", {})
    assert agent.status_code == 403
    assert act(api, None, alert_id, "acknowledge", {}).status_code == 401
    no_note = act(api, manager, alert_id, "resolve", {})
    assert no_note.status_code == 422
    assert no_note.json()["error"]["details"][0]["path"] == "body.note"
    no_assignee = act(api, manager, alert_id, "assign", {"note": "x"})
    assert no_assignee.status_code == 422


def test_an_action_stays_on_the_alerts_customer_when_its_email_is_someone_elses_now(
    api: Api, deployment: Deployment
) -> None:
    # The action is filed under the alert's customer as it is, not through the email it came
    # by: unlinked since and now another customer's (services/satisfaction/lifecycle.py).
    needs_identity(deployment, "unlinks")
    ingest, manager = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "manager")
    admin, agent = deployment.key(TENANT_A, "admin"), deployment.key(TENANT_A, "agent")
    tag, at = new_tag(), datetime.now(UTC) - timedelta(hours=1)
    email = f"ana.{tag}@shop.es"  # a real domain: example.com is a placeholder, never linked
    api.post_ok(ingest, survey({"email": email}, "csat", 1, at, f"line-{tag}"))
    deployment.wait_processed()
    ana = holder(api, agent, email)
    alert_id = alert_of(api, manager, ana)["alert_id"]
    unlink = {"kind": "email", "value": email, "reason": "a shared mailbox"}
    unlinked = api.command(admin, f"/v1/customers/{quote(ana, safe='')}/unlink", unlink)
    assert unlinked.status_code == 200, unlinked.text
    api.post_ok(ingest, event("page.viewed", "web", {"email": email}, at + timedelta(minutes=5),
                              {"url": "https://shop.example/"}))  # fmt: skip
    deployment.wait_processed()
    someone_else = holder(api, agent, email)
    assert someone_else != ana

    resolved = act(api, manager, alert_id, "resolve", {"note": "called back"})
    assert resolved.status_code == 200, resolved.text
    deployment.wait_processed()
    action = resolved.json()["event_id"]
    assert action in [e["event_id"] for e in api.timeline(agent, ana)]
    assert action not in [e["event_id"] for e in api.timeline(agent, someone_else)]
    assert alert_of(api, manager, ana)["status"] == "resolved"


def holder(api: Api, key: str, email: str) -> str:
    """The customer holding an email now (the identity service's answer to its key)."""
    found = api.profile(key, f"email:{email}")
    assert found.status_code == 200, found.text
    customer_id: str = found.json()["customer_id"]
    return customer_id
