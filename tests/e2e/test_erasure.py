"""Erasure that survives a replay (issue 11, step 4 of docs/erasure.md), on every deployment kind
(all run with personal data sealed, the default: `tests.e2e.deployments.default_sealing`): an admin erases a
customer with `POST /v1/customers/{id}/erase`; the filing stage destroys the customer's data keys,
forgets its identifiers and deletes its warehouse rows; `cem replay` afterwards rebuilds its rows
without any of its personal data, while the anonymous facts (types, scores) are all there."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from kernel.ports import TOUCHPOINTS_TOPIC
from kernel.shredding import sealed_fingerprint
from tests.e2e.conftest import selected_identity
from tests.e2e.deployments import TENANT_A, Api, Deployment, new_tag, survey
from tests.e2e.test_acceptance import PROCESSED_WITHIN_S, hours_ago, keys, satisfaction
from tests.events import event
from tests.stored_bytes import search
from tests.subject_export import open_export

pytestmark = pytest.mark.skipif(
    selected_identity() != "eventsourced",
    reason="CEM_E2E_IDENTITY=rule: an erasure names the customer identity knows",
)


def erase(api: Api, key: str | None, customer_id: str, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    path = f"/v1/customers/{quote(customer_id, safe='')}/erase"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return api.http.post(path, content=content, headers=headers)


@contextmanager
def replayed(
    deployment: Deployment, read: Callable[[Api], Any] = lambda api: None
) -> Iterator[tuple[dict[str, list[dict[str, object]]], Any]]:
    """Every table rebuilt by `cem replay` from the log as it is now, as rows, and what `read`
    reads through a query API over the rebuilt tables (the embedded deployment is stopped
    meanwhile: chdb allows one process)."""
    into = f"erased_{uuid.uuid4().hex[:8]}"

    def rebuild() -> tuple[dict[str, list[str]], Any]:
        deployment.replay(into)
        tables = deployment.table_rows(into)
        with deployment.serve_database(into) as url:
            served = Api(url)
            try:
                return tables, read(served)
            finally:
                served.close()

    if deployment.name == "embedded":
        deployment.stop()
        try:
            tables, seen = rebuild()
        finally:
            deployment.start()
    else:
        tables, seen = rebuild()
    try:
        yield {name: [orjson.loads(r) for r in rows] for name, rows in tables.items()}, seen
    finally:
        if deployment.name != "embedded":
            drop = getattr(deployment, "drop_replayed", None)
            if drop is not None:
                drop(into)


def answered(buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The buckets with survey answers, without their text sentiment."""
    return [
        {k: v for k, v in b.items() if k != "sentiment"}
        for b in buckets
        if any(b["responses"].values())
    ]


def stored_roots(deployment: Deployment, request: pytest.FixtureRequest) -> list[Path]:
    """Every directory and file the deployment stores into: its own, and for a distributed one
    the data directories of the engines the session started (Kafka's segments, ClickHouse's
    parts, PostgreSQL's tables and WAL)."""
    roots = list(deployment.stored_paths())
    if deployment.name != "embedded":
        engines = request.getfixturevalue("engines")
        roots += [engines.state_dir(e) for e in ("kafka", "clickhouse", "postgres")]
    return roots


def test_an_erased_customer_stays_erased_after_a_replay(
    deployment: Deployment, api: Api, request: pytest.FixtureRequest
) -> None:
    ingest, agent, manager = keys(deployment)
    admin = deployment.key(TENANT_A, "admin")
    tag = new_tag()
    email, digits = f"lucia.{tag}@gmail.com", f"{random.randrange(10**8):08d}"
    phone = f"+34 6{digits[:2]} {digits[2:5]} {digits[5:]}"
    words, comment = f"quiero devolver el pedido {tag}", f"tardaron mucho {tag}"
    message = event("message.received", "chat", {"email": email, "phone": phone},
                    hours_ago(2), {"text": words}, touchpoint=f"chat-{tag}")  # fmt: skip
    answer = survey({"phone": phone}, "csat", 2, hours_ago(1), f"chat-{tag}")
    answer["payload"]["comment"] = comment
    api.post_ok(ingest, [message, answer])
    deployment.wait_processed(PROCESSED_WITHIN_S)
    customer_id = api.customer_of(agent, email=email)
    assert {e["event_id"] for e in api.timeline(agent, customer_id)} == {
        message["event_id"],
        answer["event_id"],
    }

    # Who may ask, and how: admins only, a reason required, a customer that exists.
    reason = {"reason": f"GDPR art. 17 request {tag}"}
    assert erase(api, None, customer_id, reason).status_code == 401
    assert erase(api, manager, customer_id, reason).status_code == 403
    missing = erase(api, admin, customer_id, {})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_request"
    assert erase(api, admin, customer_id, b'{"reason": ').status_code == 400
    assert erase(api, admin, f"c_nobody{tag}", reason).status_code == 404

    # Every byte stored: the customer's data is there before (so the search can see it: the
    # warehouse's columns are read decompressed), and nowhere live after the erasure.
    stored = stored_roots(deployment, request)
    needles = (email, f"lucia{tag}@gmail.com", phone, f"6{digits}", words, comment)
    before = search(stored, needles)
    assert {h.needle for h in before.live} >= {words, comment}, before.hits

    touchpoint, now = f"chat-{tag}", datetime.now(UTC)
    metrics_before = satisfaction(api, manager, touchpoint, now)
    assert answered(metrics_before), "the survey answer counts"

    # The preview first: the group it takes, each identifier's key going, nothing changed.
    preview_path = f"/v1/customers/{quote(customer_id, safe='')}/erasure"
    assert api.get(preview_path, manager).status_code == 403
    preview = api.get(preview_path, admin)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert [(m["customer_id"], m["events"]) for m in shown["members"]] == [(customer_id, 2)]
    assert sorted((i["kind"], i["key_destroyed"]) for i in shown["identifiers"]) == [
        ("email", True),
        ("phone", True),
    ]
    assert shown["erased"] is False

    accepted = erase(api, admin, customer_id, reason | {"members": [customer_id]})
    assert accepted.status_code == 202, accepted.text
    answer_body = accepted.json()
    assert answer_body["customer_id"] == customer_id and answer_body["log_sealed"] is True
    erasure_id = answer_body["event_id"]
    deployment.wait_processed(PROCESSED_WITHIN_S)
    again = erase(api, admin, customer_id, reason)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_erased"
    after = api.get(preview_path, admin).json()
    assert (after["erased"], after["erasure_event_id"], after["identifiers"]) == (
        True,
        erasure_id,
        [],
    )

    # Live: nobody is found by the email any more, the rows are gone but the erasure's own, and
    # the export says the customer was erased.
    found = api.get("/v1/customers", agent, email=email)
    assert found.status_code == 200 and found.json()["customers"] == []
    assert [e["event_id"] for e in api.timeline(agent, customer_id)] == [erasure_id]
    exported = api.get(f"/v1/customers/{quote(customer_id, safe='')}/export", admin)
    assert exported.status_code == 200, exported.text
    files, _ = open_export(exported.content)
    manifest = files["manifest"]
    assert manifest["erased"] is True
    assert manifest["erasure"]["event_id"] == erasure_id
    assert manifest["erasure"]["identity"]["identifiers"] == 2
    assert manifest["erasure"]["removed"]["keys_destroyed"] >= 2
    # The rows the erased-rows group deleted after the keys went, recorded on both identity
    # stores (SQLite embedded, PostgreSQL distributed).
    assert manifest["erasure"]["removed"]["customer_timeline"] >= 1
    assert files["identifiers"] == []
    for secret in (email, phone, words, comment, f"6{digits}"):
        assert secret.encode() not in exported.content, secret

    # Replayed: the customer's events are all there, under the same customer, with their types
    # and scores, and none of its personal data is anywhere in the rebuilt tables.
    with replayed(deployment, lambda served: satisfaction(served, manager, touchpoint, now)) as (
        tables,
        replayed_metrics,
    ):
        # The anonymous facts keep every satisfaction figure. The sentiment of the erased
        # comment goes with its text (docs/erasure.md, "What erasure leaves").
        assert answered(replayed_metrics) == answered(metrics_before)
        timeline = [r for r in tables["customer_timeline"] if r["customer_id"] == customer_id]
        assert {r["event_id"] for r in timeline} == {
            message["event_id"],
            answer["event_id"],
            erasure_id,
        }
        types = {r["event_id"]: r["type"] for r in timeline}
        assert types[message["event_id"]] == "message.received"
        [response] = [r for r in tables["survey_responses"] if r["event_id"] == answer["event_id"]]
        assert (response["customer_id"], response["kind"], response["score"]) == (
            customer_id,
            "csat",
            2,
        )
        assert response["comment"] == ""
        everything = orjson.dumps(tables)
        for secret in (email, phone, words, comment, f"6{digits}", f"lucia.{tag}"):
            assert secret.encode() not in everything, secret

    # After the erasure and a replay, no byte any process or engine stores holds the customer's
    # email, phone or words, but in the parts the warehouse replaced with the deletion, which it
    # keeps for `old_parts_lifetime` (8 minutes by default) before it removes them.
    after = search(stored, needles)
    assert not after.live, [(str(h.path), h.needle) for h in after.live]
    assert not after.undecoded, after.undecoded


def test_a_customer_who_comes_back_after_the_erasure_is_sealed_under_a_new_key(
    deployment: Deployment, api: Api
) -> None:
    """The ingest that sealed a customer's first event caches her key. Once the filing stage
    (another process) destroyed it, the ingest must not seal her next event under it: that
    event would open as erased, its email and words lost. The ingest reads the vault's
    destruction feed before each batch it seals; before, the distributed ingest kept the key for
    up to five minutes (its cache's time to live)."""
    ingest, agent, _ = keys(deployment)
    admin = deployment.key(TENANT_A, "admin")
    tag = new_tag()
    email = f"vuelve.{tag}@gmail.com"
    first = event("message.received", "chat", {"email": email}, hours_ago(2),
                  {"text": f"hola {tag}"}, touchpoint=f"chat-{tag}")  # fmt: skip
    api.post_ok(ingest, [first])
    deployment.wait_processed(PROCESSED_WITHIN_S)
    erased = api.customer_of(agent, email=email)
    accepted = erase(api, admin, erased, {"reason": f"GDPR art. 17 request {tag}"})
    assert accepted.status_code == 202, accepted.text
    deployment.wait_processed(PROCESSED_WITHIN_S)  # the keys are destroyed by now
    back = event("message.received", "chat", {"email": email}, hours_ago(0),
                 {"text": f"he vuelto {tag}"}, touchpoint=f"chat-{tag}")  # fmt: skip
    api.post_ok(ingest, [back])
    deployment.wait_processed(PROCESSED_WITHIN_S)
    returned = api.customer_of(agent, email=email)
    assert returned != erased
    [entry] = api.timeline(agent, returned)
    assert (entry["event_id"], entry["payload"]["text"]) == (back["event_id"], f"he vuelto {tag}")
    # The log holds it under a new key (its fingerprint), not the destroyed one, so it opens in
    # full wherever it is read: a replay, a process that never cached the old key. (Under the old
    # key, the filing stage, which destroyed it, would open the event erased, while a projection
    # worker still caching it would have shown the words above all the same.)
    stored = {
        event_id: orjson.loads(record.value)
        for record in deployment.log_records(TOUCHPOINTS_TOPIC)
        if (event_id := orjson.loads(record.value)["event_id"])
        in (first["event_id"], back["event_id"])
    }
    prints = [sealed_fingerprint(stored[e["event_id"]]) for e in (first, back)]
    assert None not in prints and prints[0] != prints[1]
