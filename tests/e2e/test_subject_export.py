"""The customer export (GDPR subject access) over real HTTP, on every deployment kind: a merged
history across channels with an alert, exported as a zip by an admin and checked file by file
against the APIs (`tests/subject_export.py`). The in-process version is
tests/integration/test_subject_export.py."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import selected_identity
from tests.e2e.deployments import TENANT_A, TENANT_B, Api, Deployment, new_tag, survey
from tests.e2e.test_acceptance import PROCESSED_WITHIN_S, alerts, hours_ago, keys
from tests.events import event
from tests.subject_export import FILENAME, check_export

pytestmark = pytest.mark.skipif(
    selected_identity() != "eventsourced",
    reason="CEM_E2E_IDENTITY=rule: the export's identity files need the identity service",
)


def export(api: Api, key: str | None, customer_id: str) -> httpx.Response:
    return api.get(f"/v1/customers/{quote(customer_id, safe='')}/export", key)


def test_an_admin_exports_everything_the_apis_show_of_a_merged_customer(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, manager = keys(deployment)
    admin = deployment.key(TENANT_A, "admin")
    tag, start = new_tag(), hours_ago(5)
    email, customer_id = f"ana.{tag}@shop.es", f"cust-{tag}"
    email_id = f"email:{email}"
    at = [start + timedelta(minutes=m) for m in range(0, 60, 10)]
    api.post_ok(ingest, [
        event("call.ended", "phone", {"customer_id": customer_id}, at[0],
              {"agent": "ana", "talk_s": 300}, touchpoint=f"line-{tag}",
              correlation_id=f"call-{tag}"),
        survey({"customer_id": customer_id}, "csat", 1, at[1], f"line-{tag}", f"call-{tag}"),
        event("message.received", "chat", {"email": email}, at[2], {"text": "=1+1"},
              touchpoint=f"chat-{tag}"),
        event("order.placed", "web", {"email": email}, at[3],
              {"order_id": f"o-{tag}", "amount": "12.50", "currency": "EUR"},
              touchpoint=f"shop-{tag}"),
    ])  # fmt: skip
    deployment.wait_processed(PROCESSED_WITHIN_S)
    email_cid = api.customer_of(agent, email=email)
    merge = {"survivor_id": email_id, "absorbed_id": customer_id, "reason": "same person"}
    assert api.command(manager, "/v1/customers/merge", merge).status_code == 200
    assert alerts(api, manager, email_id)  # the CSAT 1 of the absorbed customer

    answer = export(api, admin, customer_id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["cache-control"] == "no-store"
    assert FILENAME.fullmatch(answer.headers["content-disposition"])

    def read(path: str, **params: object) -> object:
        found = api.get(path, manager, **params)
        assert found.status_code == 200, found.text
        return found.json()

    files = check_export(answer.content, read, customer_id, TENANT_A)
    assert files["manifest"]["members"] == [email_cid, customer_id]
    assert {e["channel"] for e in files["events"]} == {"phone", "survey", "chat", "web"}

    for key in (agent, manager):
        assert export(api, key, customer_id).status_code == 403
    assert export(api, None, customer_id).status_code == 401
    assert export(api, deployment.key(TENANT_B, "admin"), customer_id).status_code == 404
