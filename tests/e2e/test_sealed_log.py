"""Personal data sealed in the log (issue 11, step 2 of docs/erasure.md), on every deployment kind:
the suite's deployments run with the default, sealed (`tests.e2e.deployments.default_sealing`),
so the log's touchpoints and filings hold each event's identifiers and free text only as
ciphertext, while the APIs show them in clear and identity still finds the customer by them."""

from __future__ import annotations

import random

import orjson

from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC
from tests.e2e.deployments import Api, Deployment, new_tag, survey
from tests.e2e.test_acceptance import PROCESSED_WITHIN_S, hours_ago, keys
from tests.events import event


def test_the_log_holds_ciphertext_and_the_apis_the_clear_history(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, _ = keys(deployment)
    tag, at = new_tag(), hours_ago(2)
    email, digits = f"lucia.{tag}@gmail.com", f"{random.randrange(10**8):08d}"
    phone = f"+34 6{digits[:2]} {digits[2:5]} {digits[5:]}"
    words, comment = f"quiero devolver el pedido {tag}", f"tardaron mucho {tag}"
    message = event("message.received", "chat", {"email": email, "phone": phone}, at,
                    {"text": words}, touchpoint=f"chat-{tag}")  # fmt: skip
    answer = survey({"phone": phone}, "csat", 2, hours_ago(1), f"chat-{tag}")
    answer["payload"]["comment"] = comment
    api.post_ok(ingest, [message, answer])
    deployment.wait_processed(PROCESSED_WITHIN_S)

    # In clear through the API: both touchpoints on one customer, found by either identifier.
    customer_id = api.customer_of(agent, email=email)
    assert api.customer_of(agent, phone=phone) == customer_id
    entries = {e["event_id"]: e for e in api.timeline(agent, customer_id)}
    assert entries[message["event_id"]]["payload"]["text"] == words
    assert entries[answer["event_id"]]["payload"]["comment"] == comment

    # Ciphertext in the log: neither topic holds an identifier or a word the customer wrote, in
    # a record's value, key or headers. (CEM_IDENTITY=rule files under readable customer keys
    # by design: a filing's key and customer header then name the email.)
    secrets = [email, phone, f"6{digits}", words, comment]
    for topic in (TOUCHPOINTS_TOPIC, FILINGS_TOPIC):
        records = deployment.log_records(topic)
        ids = (message["event_id"], answer["event_id"])
        mine = [v for v in (orjson.loads(r.value) for r in records) if v.get("event_id") in ids]
        assert len(mine) == 2, (topic, len(mine))
        for value in mine:
            assert value["customer"] == {} and "sealed" in value, value
            assert value["type"] in ("message.received", "survey.answered")
        readable_keys = topic == FILINGS_TOPIC and deployment.identity == "rule"
        for record in records:
            stored = [record.value]
            if not readable_keys:
                stored += [record.key, *(name.encode() + v for name, v in record.headers)]
            for secret in secrets:
                assert not any(secret.encode() in part for part in stored), (topic, secret)
