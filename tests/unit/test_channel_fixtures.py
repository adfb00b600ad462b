"""Every provider's recorded deliveries (tests/fixtures/channels/<provider>/*.json), one
parametrised suite: signatures as each provider documents them (valid, tampered body, wrong
secret, stale timestamp where one is signed), the events each delivery maps to, retries mapping
to the same event ids, and unmappable deliveries listing every violated path.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from kernel.channels import ChannelConfig
from schemas.validate import decode
from services.ingest.channels import signing, twilio
from services.ingest.channels.base import WebhookRequest
from services.ingest.channels.intake import map_delivery
from services.ingest.channels.providers.chatwoot import Chatwoot
from services.ingest.channels.providers.shopify import Shopify
from services.ingest.channels.providers.twilio_messaging import TwilioMessaging
from services.ingest.channels.providers.twilio_voice import TwilioVoice
from services.ingest.channels.registry import load_providers
from tests.events import BUCKET_KEY

FIXTURES = Path(__file__).parents[1] / "fixtures" / "channels"
CASES = sorted(FIXTURES.glob("*/*.json"))
# Providers that sign a timestamp (SendGrid, Chatwoot): a delivery too old must be refused.
TIMESTAMPED = [p for p in CASES if json.loads(p.read_text()).get("signed_timestamp")]
UNMAPPABLE = [p for p in CASES if "unmappable" in json.loads(p.read_text())]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def delivery(fixture: dict[str, Any]) -> WebhookRequest:
    headers = {k.lower(): v for k, v in fixture["headers"].items()}
    received = datetime.fromisoformat(fixture["received_at"])
    return WebhookRequest(fixture["url"], headers, fixture["body"].encode(), received)


def channel(fixture: dict[str, Any], settings: dict[str, Any] | None = None) -> ChannelConfig:
    return ChannelConfig(
        "ch_" + "f" * 16, "acme", fixture["provider"], "", settings or fixture["settings"],
        datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def contains(actual: Any, expected: Any) -> bool:
    """`expected` is a subset of `actual` (dicts by key, everything else equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)


@pytest.fixture(params=CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def fixture(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_every_provider_has_fixtures() -> None:
    assert set(load_providers()) == {p.parent.name for p in CASES}


def test_valid_signature_verifies(fixture: dict[str, Any]) -> None:
    provider = load_providers()[fixture["provider"]]
    assert provider.verify(delivery(fixture), fixture["secret"])


def test_tampered_body_is_refused(fixture: dict[str, Any]) -> None:
    provider = load_providers()[fixture["provider"]]
    original = delivery(fixture)
    tampered = replace(original, body=original.body.replace(b"1", b"2", 1) + b" ")
    assert not provider.verify(tampered, fixture["secret"])


def test_wrong_secret_is_refused(fixture: dict[str, Any]) -> None:
    provider = load_providers()[fixture["provider"]]
    wrong = signing.sendgrid_keypair()[1] if fixture["provider"] == "sendgrid" else "not-the-secret"
    assert not provider.verify(delivery(fixture), wrong)


def test_missing_signature_is_refused(fixture: dict[str, Any]) -> None:
    provider = load_providers()[fixture["provider"]]
    unsigned = {k: v for k, v in delivery(fixture).headers.items() if "signature" not in k
                and "hmac" not in k}  # fmt: skip
    assert not provider.verify(replace(delivery(fixture), headers=unsigned), fixture["secret"])


@pytest.mark.parametrize("path", TIMESTAMPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_stale_timestamp_is_refused(path: Path) -> None:
    fixture = load(path)
    provider = load_providers()[fixture["provider"]]
    late = replace(
        delivery(fixture), received_at=delivery(fixture).received_at + timedelta(hours=1)
    )
    assert not provider.verify(late, fixture["secret"])


def test_maps_to_the_expected_events(fixture: dict[str, Any]) -> None:
    provider = load_providers()[fixture["provider"]]
    intake = map_delivery(provider, delivery(fixture), channel(fixture), 64 * 1024, BUCKET_KEY)
    if "unmappable" not in fixture:
        assert intake.complete, intake.violations
    events = [json.loads(decode(o.record.value).model_dump_json()) for o in intake.outgoing]
    expected = fixture.get("expect", [])
    assert len(events) == len(expected)
    for event, wanted in zip(events, expected, strict=True):
        assert contains(event, wanted), (event, wanted)
        assert event["tenant_id"] == "acme" and event["source_id"] == fixture["provider"]


def test_a_retry_maps_to_the_same_event_ids(fixture: dict[str, Any]) -> None:
    provider = load_providers()[fixture["provider"]]
    first = map_delivery(provider, delivery(fixture), channel(fixture), 64 * 1024, BUCKET_KEY)
    later = replace(
        delivery(fixture), received_at=delivery(fixture).received_at + timedelta(minutes=5)
    )
    retry = map_delivery(provider, later, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [o.event_id for o in first.outgoing] == [o.event_id for o in retry.outgoing]


@pytest.mark.parametrize("path", UNMAPPABLE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_unmappable_lists_every_violated_path(path: Path) -> None:
    fixture = load(path)
    provider = load_providers()[fixture["provider"]]
    intake = map_delivery(provider, delivery(fixture), channel(fixture), 64 * 1024, BUCKET_KEY)
    assert not intake.complete
    assert sorted(v["path"] for v in intake.violations) == sorted(fixture["unmappable"])
    if "fixed_settings" in fixture:
        fixed = map_delivery(
            provider,
            delivery(fixture),
            channel(fixture, fixture["fixed_settings"]),
            64 * 1024,
            BUCKET_KEY,
        )
        assert fixed.complete and fixed.outgoing


@pytest.mark.parametrize(
    ("caller", "expected"),
    [("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="), ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
)  # fmt: skip
def test_twilio_documented_vectors(caller: str, expected: str) -> None:
    """Twilio's own request-validation examples (auth token 12345) verify, and the signer agrees."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": caller, "Digits": "1234", "From": caller,
              "To": "+18005551212"}  # fmt: skip
    body = urlencode(params).encode()
    request = WebhookRequest(url, {"x-twilio-signature": expected}, body, datetime.now(UTC))
    assert twilio.verify(request, "12345")
    assert signing.twilio_headers("12345", url, body)["X-Twilio-Signature"] == expected


@pytest.mark.parametrize(
    ("to", "settings", "customers"),
    [
        ("%2B34910000777", {"agent_numbers": "+34910000777, +34910000778"}, []),
        ("client%3Aana", {}, []),
        ("sip%3Aana%40pbx.example", {}, []),
        # An agent's softphone calling a customer: the <Dial> leg is the customer's call.
        ("%2B34600999888", {"agent_numbers": "+34910000777"}, ["+34600999888"]),
    ],
)  # fmt: skip
def test_a_twilio_leg_put_through_to_an_agent_is_no_customers_call(
    to: str, settings: dict[str, str], customers: list[str]
) -> None:
    # `<Dial>` makes a child leg whose `To` is the agent's number (or client): mapped as a call,
    # it filed a `call.ended` under the agent as a customer, and counted the parent call's talk
    # time twice (found by a review). A leg to a customer stays a call (a second review).
    fixture = load(FIXTURES / "twilio-voice" / "completed.json")
    body = (
        fixture["body"]
        .replace("Direction=inbound", "Direction=outbound-dial")
        .replace("To=%2B34910000000", f"To={to}&ParentCallSid=CA22222222222222222222222222222222")
    )
    leg = replace(delivery(fixture), body=body.encode())
    found = TwilioVoice().to_events(leg, settings)
    assert [e["customer"]["phone"] for e in found] == customers
    # The customer's own call still maps, and an API call out to a customer too.
    assert [e["type"] for e in TwilioVoice().to_events(delivery(fixture), {})] == ["call.ended"]
    out = replace(
        delivery(fixture), body=fixture["body"].replace("inbound", "outbound-api").encode()
    )
    [call] = TwilioVoice().to_events(out, {})
    assert call["customer"] == {"phone": "+34910000000"}


def test_a_shopify_refund_counts_only_the_money_that_went_back() -> None:
    # A refund transaction that failed paid nothing back: it was counted all the same (found by
    # a review). One failed and one done count the one done.
    fixture = load(FIXTURES / "shopify" / "refund.json")
    body = json.loads(fixture["body"])
    done = body["transactions"][0]
    failed = {**done, "id": 245136, "status": "failure", "amount": "50.00"}
    body["transactions"] = [failed, done]
    [event] = Shopify().to_events(replace(delivery(fixture), body=json.dumps(body).encode()), {})
    assert (event["payload"]["amount"], event["payload"]["currency"]) == ("199.00", "EUR")
    body["transactions"] = [failed]
    [event] = Shopify().to_events(replace(delivery(fixture), body=json.dumps(body).encode()), {})
    assert (event["payload"]["amount"], event["payload"]["currency"]) == ("0", "EUR")
    # A pending one is on its way, and no second webhook comes when it succeeds: it counts.
    body["transactions"] = [{**done, "status": "pending"}]
    [event] = Shopify().to_events(replace(delivery(fixture), body=json.dumps(body).encode()), {})
    assert event["payload"]["amount"] == "199.00"


@pytest.mark.parametrize(
    ("previous", "reopened"), [("pending", False), ("snoozed", False), ("resolved", True), (None, True)]
)  # fmt: skip
def test_a_chatwoot_conversation_reopens_only_after_it_was_resolved(
    previous: str | None, reopened: bool
) -> None:
    # `open` after `pending` (a bot handing over to an agent) or `snoozed` is a case going on:
    # each made a `case.reopened` of a case never resolved (found by a review).
    fixture = load(FIXTURES / "chatwoot" / "conversation_resolved.json")
    body = {**json.loads(fixture["body"]), "status": "open"}
    if previous is not None:
        change = {"status": {"previous_value": previous, "current_value": "open"}}
        body["changed_attributes"] = [change]
    opened = replace(delivery(fixture), body=json.dumps(body).encode())
    types = [e["type"] for e in Chatwoot().to_events(opened, {})]
    assert types == (["case.reopened"] if reopened else [])


def test_a_chatwoot_conversation_a_bot_reopens_is_reopened_once() -> None:
    # A bot's inbox reopens a resolved conversation as `pending`, then hands it over (`open`):
    # the first is the reopening, the second nothing new (found by a review: neither reopened).
    fixture = load(FIXTURES / "chatwoot" / "conversation_resolved.json")

    def changed(previous: str, now: str) -> list[str]:
        change = {"status": {"previous_value": previous, "current_value": now}}
        body = {**json.loads(fixture["body"]), "status": now, "changed_attributes": [change]}
        delivered = replace(delivery(fixture), body=json.dumps(body).encode())
        return [e["type"] for e in Chatwoot().to_events(delivered, {})]

    assert changed("resolved", "pending") == ["case.reopened"]
    assert changed("pending", "open") == []
    assert changed("open", "pending") == []


@pytest.mark.parametrize(("status", "types"), [
    ("partially_delivered", ["custom.message_partially_delivered"]), ("receiving", []),
])  # fmt: skip
def test_every_twilio_message_status_maps(status: str, types: list[str]) -> None:
    # Both are statuses Twilio documents; each was dead-lettered as `unmapped_status`.
    fixture = load(FIXTURES / "twilio-messaging" / "status_delivered.json")
    body = fixture["body"].replace("MessageStatus=delivered", f"MessageStatus={status}")
    update = replace(delivery(fixture), body=body.encode())
    assert [e["type"] for e in TwilioMessaging().to_events(update, {})] == types
