"""Bulk requests wait for the pipeline on both deployments (services/ingest/backlog.py): the ingest
reads the backlog from the log it publishes to (the SQLite log's offsets embedded, the workers'
consumer groups on Kafka distributed) before it lets a bulk request in; a live event never waits.
The gate's own behaviour (waiting, the stall, the 429) is tested on in-process logs
(tests/unit/test_backlog_gate.py, tests/integration/test_backlog_embedded.py); what only a
deployment shows is that its ingest can read its pipeline's progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.deployments import TENANT_A, Api, Deployment, new_tag
from tests.events import event

WAITS = re.compile(r"^cem_ingest_backlog_wait_seconds_count (\d+)$", re.M)
BACKLOG = re.compile(r"^cem_ingest_backlog_events (\d+)$", re.M)
UNREAD = re.compile(r"^cem_ingest_backlog_unread_total (\d+)$", re.M)


def metrics(api: Api) -> str:
    answer = api.ingest.get("/metrics")
    assert answer.status_code == 200
    return answer.text


def waits(text: str) -> int:
    found = WAITS.search(text)
    return int(found.group(1)) if found else 0


def unread(text: str) -> int:
    found = UNREAD.search(text)
    assert found is not None, text
    return int(found.group(1))


def chats(customer_id: str, n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    customer = {"customer_id": customer_id}
    return [
        event("message.received", "chat", customer, start + timedelta(seconds=i), {"text": "hola"})
        for i in range(n)
    ]


def test_a_bulk_request_reads_the_pipelines_backlog_and_a_live_event_does_not(
    api: Api, deployment: Deployment
) -> None:
    ingest = deployment.key(TENANT_A, "ingest")
    customer = f"bulk-{new_tag()}"
    before = metrics(api)
    result = api.post_ok(ingest, chats(customer, 40))
    assert result["accepted"] == 40
    after = metrics(api)
    assert waits(after) == waits(before) + 1
    # Let in on a reading of the backlog, not for want of one (a reading that fails lets the
    # request in unread, and counts it).
    assert unread(after) == unread(before)
    assert BACKLOG.search(after) is not None, after
    api.post_ok(ingest, chats(customer, 1)[0])
    assert waits(metrics(api)) == waits(before) + 1  # one event: live, never waits
    deployment.wait_processed()
    assert len(api.timeline(deployment.key(TENANT_A, "agent"), customer)) == 41
