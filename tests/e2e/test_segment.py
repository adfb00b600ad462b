"""Segment's official Python library against every deployment kind, configured only with the
deployment's ingest host and an ingest key, as a web shop's backend would be.

The SDK sends everything to `<host>/v1/batch` (HTTP Basic, the key as user name, gzip here);
the single-call paths, retries and limits are driven with raw HTTP as other SDKs send them.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from segment.analytics import Client

from tests.e2e.conftest import selected_identity
from tests.e2e.deployments import TENANT_A, Api, Deployment, new_tag
from tests.e2e.test_acceptance import PROCESSED_WITHIN_S, keys

needs_identity = pytest.mark.skipif(
    selected_identity() != "eventsourced",
    reason="CEM_E2E_IDENTITY=rule: no identity service to link an alias",
)


def sdk(deployment: Deployment, errors: list[Any]) -> Client:
    """The official client, batching in its background thread as in production."""
    key = deployment.key(TENANT_A, "ingest")
    return Client(
        write_key=key,
        host=deployment.ingest_url,
        gzip=True,
        max_retries=2,
        on_error=lambda error, batch: errors.append((error, batch)),
    )


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def segment_post(deployment: Deployment, path: str, body: Any, key: str) -> httpx.Response:
    return httpx.post(f"{deployment.ingest_url}{path}", json=body, headers=basic(key), timeout=60)


def event_ids(api: Api, key: str, customer_id: str) -> set[str]:
    return {e["event_id"] for e in api.timeline(key, customer_id)}


@needs_identity
def test_the_sdk_feeds_timelines_and_an_alias_joins_the_anonymous_history(
    deployment: Deployment, api: Api
) -> None:
    _, agent, _ = keys(deployment)
    tag = new_tag()
    visitor, user = f"anon-{tag}", f"user-{tag}"
    earlier = datetime.now(UTC) - timedelta(hours=2)
    errors: list[Any] = []
    client = sdk(deployment, errors)
    browsing = [
        client.page(anonymous_id=visitor, name="Home", timestamp=earlier,
                    properties={"url": f"https://shop.es/{tag}", "title": "Inicio"}),
        client.track(anonymous_id=visitor, event="Product Viewed",
                     properties={"sku": "z-1"}, timestamp=earlier + timedelta(minutes=1)),
    ]  # fmt: skip
    known = [
        client.identify(user_id=user, traits={"email": f"ana.{tag}@shop.es", "name": "Ana"}),
        client.track(user_id=user, event="Order Completed", properties={"total": 20}),
    ]
    link = [client.alias(previous_id=visitor, user_id=user)]
    client.shutdown()
    assert errors == []
    assert all(ok for ok, _ in browsing + known + link)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    every_id = {message["messageId"] for _, message in browsing + known + link}
    assert event_ids(api, agent, user) == every_id
    assert event_ids(api, agent, f"email:ana.{tag}@shop.es") == every_id
    entries = {e["type"] for e in api.timeline(agent, user)}
    assert {"page.viewed", "custom.product_viewed", "custom.order_completed"} <= entries


@needs_identity
def test_identify_with_the_anonymous_id_joins_it_too(deployment: Deployment, api: Api) -> None:
    _, agent, _ = keys(deployment)
    tag = new_tag()
    errors: list[Any] = []
    client = sdk(deployment, errors)
    _, page = client.page(anonymous_id=f"anon-{tag}", properties={"url": "https://shop.es/"})
    _, identify = client.identify(user_id=f"user-{tag}", anonymous_id=f"anon-{tag}")
    client.shutdown()
    assert errors == []
    deployment.wait_processed(PROCESSED_WITHIN_S)
    found = event_ids(api, agent, f"user-{tag}")
    assert found == {page["messageId"], identify["messageId"]}


def test_a_retry_with_a_new_sent_at_is_stored_once(deployment: Deployment, api: Api) -> None:
    ingest, agent, _ = keys(deployment)
    tag = new_tag()
    now = datetime.now(UTC)
    message = {"type": "track", "event": "Clicked", "userId": f"user-{tag}",
               "messageId": str(uuid.uuid4()), "timestamp": now.isoformat()}  # fmt: skip
    first = segment_post(deployment, "/v1/batch", {"batch": [message], "sentAt": now.isoformat()},
                         ingest)  # fmt: skip
    retry_at = (now + timedelta(seconds=3)).isoformat()
    retry = segment_post(deployment, "/v1/batch", {"batch": [message], "sentAt": retry_at}, ingest)
    assert first.status_code == 200 and first.json()["accepted"] == 1, first.text
    assert retry.status_code == 200 and retry.json()["duplicates"] == 1, retry.text
    deployment.wait_processed(PROCESSED_WITHIN_S)
    assert [e["event_id"] for e in api.timeline(agent, f"user-{tag}")] == [message["messageId"]]


def test_single_calls_limits_and_keys(deployment: Deployment, api: Api) -> None:
    ingest, agent, _ = keys(deployment)
    tag = new_tag()
    screen = {"userId": f"user-{tag}", "name": "Checkout", "messageId": str(uuid.uuid4())}
    answer = segment_post(deployment, "/v1/screen", screen, ingest)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "status": "accepted", "event_id": screen["messageId"]}

    big = {"userId": f"user-{tag}", "event": "Big", "properties": {"pad": "x" * 40_000}}
    too_large = segment_post(deployment, "/v1/track", big, ingest)
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    wrong = segment_post(deployment, "/v1/track", {**big, "properties": {}}, "cem_not_a_key")
    assert wrong.status_code == 401
    assert (
        segment_post(deployment, "/v1/track", {**big, "properties": {}}, agent).status_code == 403
    )

    deployment.wait_processed(PROCESSED_WITHIN_S)
    [entry] = api.timeline(agent, f"user-{tag}")
    assert (entry["type"], entry["channel"]) == ("page.viewed", "mobile_app")
