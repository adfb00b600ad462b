"""Unified customers over real HTTP, on every deployment kind, with the identity service on.

Events are filed by identity resolution in the stream processors (the embedded runners, or the
`projections` and `satisfaction` workers resolving the same events side by side on PostgreSQL), and
read through the query API as merged customers. The embedded, in-process version of these stories,
with manual merges, is tests/integration/test_unified_history.py.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e.conftest import selected_identity
from tests.e2e.deployments import Api, Deployment, new_tag, survey
from tests.e2e.test_acceptance import PROCESSED_WITHIN_S, alerts, hours_ago, ids, keys, newest_first
from tests.events import event

pytestmark = pytest.mark.skipif(
    selected_identity() != "eventsourced",
    reason="CEM_E2E_IDENTITY=rule: the deployments run without the identity service",
)


def mobile_line() -> tuple[str, str]:
    """A Spanish mobile number as a caller's system writes it, and its customer key (a mobile is
    personal: the rules let it join the email it is first seen with)."""
    digits = f"{random.randrange(10**8):08d}"
    return f"+34 6{digits[:2]} {digits[2:5]} {digits[5:]}", f"phone:+346{digits}"


def split(api: Api, key: str, customer_id: str, absorbed_id: str) -> Any:
    body = {"absorbed_id": absorbed_id, "reason": "two people after all"}
    return api.command(key, f"/v1/customers/{customer_id}/split", body)


def alerted(api: Api, key: str, customer_id: str) -> set[str]:
    """The survey answers behind the customer's alerts."""
    return {a["event_id"] for a in alerts(api, key, customer_id)}


def test_a_linking_event_merges_two_histories_and_a_split_restores_each(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, manager = keys(deployment)
    tag, start = new_tag(), hours_ago(6)
    email, (phone, phone_id) = f"ana.{tag}@shop.es", mobile_line()
    email_id = f"email:{email}"
    minute = [start + timedelta(minutes=m) for m in range(0, 100, 10)]
    by_email = [
        event("email.opened", "email", {"email": email}, minute[0], {"message_id": f"m-{tag}"},
              touchpoint=f"mail-{tag}"),
        survey({"email": email}, "csat", 2, minute[1], f"mail-{tag}"),
    ]  # fmt: skip
    by_phone = [
        event("call.ended", "phone", {"phone": phone}, minute[2], {"agent": "ana", "talk_s": 300},
              touchpoint=f"line-{tag}", correlation_id=f"call-{tag}"),
        survey({"phone": phone}, "nps", 3, minute[3], f"line-{tag}", f"call-{tag}"),
    ]  # fmt: skip
    api.post_ok(ingest, by_email + by_phone)
    deployment.wait_processed(PROCESSED_WITHIN_S)
    # Two identifiers never seen together: two customers, each found by its identifier.
    assert ids(api.timeline(agent, email_id)) == newest_first(by_email)
    assert ids(api.timeline(agent, phone_id)) == newest_first(by_phone)
    email_cid, phone_cid = api.customer_of(agent, email=email), api.customer_of(agent, phone=phone)
    assert email_cid != phone_cid

    order = {"order_id": f"o-{tag}", "amount": "59.90", "currency": "EUR"}
    link = event("order.placed", "web", {"email": email, "phone": phone}, minute[6], order,
                 touchpoint=f"shop-{tag}")  # fmt: skip
    api.post_ok(ingest, link)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    # The email outranks the phone: its customer survives, the phone's is absorbed into it.
    everything = newest_first([*by_email, *by_phone, link])
    for requested in (email_id, phone_id):
        assert ids(api.timeline(agent, requested)) == everything, requested
        profile = api.profile(agent, requested).json()
        assert (profile["customer_id"], profile["members"]) == (email_cid, [email_cid, phone_cid])
        assert profile["events"] == len(everything)
        both_answers = {by_email[1]["event_id"], by_phone[1]["event_id"]}
        assert alerted(api, agent, requested) == both_answers, requested

    assert split(api, agent, email_id, phone_id).status_code == 403  # merges are curated
    answer = split(api, manager, email_id, phone_cid)
    assert answer.status_code == 200, answer.text
    assert answer.json()["absorbed_members"] == [phone_cid]

    # Each side has exactly its own history again: the link was filed under the email's customer.
    assert ids(api.timeline(agent, phone_id)) == newest_first(by_phone)
    assert ids(api.timeline(agent, email_id)) == newest_first([*by_email, link])
    assert api.profile(agent, phone_id).json()["members"] == [phone_cid]
    assert alerted(api, agent, phone_id) == {by_phone[1]["event_id"]}
    assert alerted(api, agent, email_id) == {by_email[1]["event_id"]}


def test_the_identity_history_shows_a_recorded_name_as_the_touchpoints_wrote_it(
    deployment: Deployment, api: Api
) -> None:
    # Identity records a name folded, to compare it (`maria jose garcia pena`); its history,
    # which the console's identity panel shows, gave it so. It now shows it as written, from
    # the profile, for both of the group's members: each its own spelling.
    ingest, agent, manager = keys(deployment)
    tag, start = new_tag(), hours_ago(3)
    email, (phone, _) = f"mj.{tag}@mercado.es", mobile_line()
    written = ["María José García-Peña", "MARIA JOSE GARCIA PEÑA"]
    api.post_ok(ingest, [
        event("order.placed", "web", {"email": email}, start,
              {"order_id": f"o-{tag}", "amount": "10.00", "currency": "EUR",
               "attributes": {"name": written[0]}}, touchpoint=f"shop-{tag}"),
        event("call.ended", "phone", {"phone": phone}, start + timedelta(minutes=5),
              {"agent": "ana", "talk_s": 60, "attributes": {"name": written[1]}},
              touchpoint=f"line-{tag}"),
    ])  # fmt: skip
    deployment.wait_processed(PROCESSED_WITHIN_S)
    survivor, absorbed = api.customer_of(agent, email=email), api.customer_of(agent, phone=phone)
    assert survivor != absorbed
    merge = {"survivor_id": survivor, "absorbed_id": absorbed, "reason": f"one person {tag}"}
    assert api.command(manager, "/v1/customers/merge", merge).status_code == 200
    answer = api.get(f"/v1/customers/{survivor}/identity-history", agent)
    assert answer.status_code == 200, answer.text
    names = {
        (e["customer_id"], e["details"]["name"])
        for e in answer.json()["entries"]
        if e["action"] == "name_recorded"
    }
    assert names == {(survivor, written[0]), (absorbed, written[1])}, names
