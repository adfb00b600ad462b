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
from urllib.parse import parse_qsl, urlencode

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


def _headers_replaced(fixture: dict[str, Any], **headers: str) -> WebhookRequest:
    found = delivery(fixture)
    return replace(found, headers={**found.headers, **headers})


@pytest.mark.parametrize("stamp", ["9" * 5000, "1" + "0" * 400, "\u00b2", "-5", " ", "1e9"])
@pytest.mark.parametrize("path", TIMESTAMPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_signed_timestamp_no_clock_can_read_is_refused_not_an_error(
    path: Path, stamp: str
) -> None:
    # Each of these was a 500 with a traceback, sent without any secret (found by a review):
    # int() of 5,000 digits, a float overflow, `²` passing isdigit().
    fixture = load(path)
    provider = load_providers()[fixture["provider"]]
    stamped = {
        "chatwoot": "x-chatwoot-timestamp",
        "sendgrid": "x-twilio-email-event-webhook-timestamp",
    }[fixture["provider"]]
    forged = _headers_replaced(fixture, **{stamped: stamp})
    assert provider.verify(forged, fixture["secret"]) is False


def test_a_chatwoot_signature_with_letters_beyond_ascii_is_refused_not_an_error() -> None:
    fixture = load(FIXTURES / "chatwoot" / "message_incoming.json")
    forged = _headers_replaced(fixture, **{"x-chatwoot-signature": "sha256=\u00e9\u00e9"})
    assert Chatwoot().verify(forged, fixture["secret"]) is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"id": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "malformed_json"),
        ('{"event": "message_created", "event": "contact_created"}', "malformed_json"),
    ],
    ids=["nested-too-deep", "duplicate-key"],
)
def test_a_body_the_strict_parser_refuses_is_a_dead_letter_naming_why(body: str, code: str) -> None:
    # Nesting past the parser's depth was a RecursionError (a 500 on every retry, nothing kept);
    # a repeated key was read as its last value. Both are now what POST /v1/events says of them.
    for name in ("chatwoot", "shopify"):
        fixture = load(next(FIXTURES.glob(f"{name}/*.json")))
        sent = replace(delivery(fixture), body=body.encode())
        intake = map_delivery(load_providers()[name], sent, channel(fixture), 64 * 1024, BUCKET_KEY)
        assert [v["code"] for v in intake.violations] == [code], intake.violations
        assert intake.outgoing == []


def test_an_epoch_time_out_of_range_is_a_violation_not_an_error() -> None:
    fixture = load(FIXTURES / "chatwoot" / "message_incoming.json")
    body = {**json.loads(fixture["body"]), "created_at": 10**20}
    sent = replace(delivery(fixture), body=json.dumps(body).encode())
    intake = map_delivery(Chatwoot(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [(v["code"], v["path"]) for v in intake.violations] == [("bad_timestamp", "created_at")]


def test_one_shopify_order_delivered_to_two_subscriptions_is_one_event() -> None:
    # A shop subscribed twice to orders/create gets two deliveries under two webhook ids (and
    # one may come without it): each was stored, the order counted twice (found by a review).
    fixture = load(FIXTURES / "shopify" / "order_online.json")
    first = _headers_replaced(fixture, **{"x-shopify-webhook-id": "wh-sub-a"})
    second = _headers_replaced(fixture, **{"x-shopify-webhook-id": "wh-sub-b"})
    bare = replace(
        first, headers={k: v for k, v in first.headers.items() if k != "x-shopify-webhook-id"}
    )
    ids = {e["event_id"] for d in (first, second, bare) for e in Shopify().to_events(d, {})}
    assert len(ids) == 1


@pytest.mark.parametrize(
    ("changed", "code"),
    [
        ({"message_type": None}, "unmapped_message_type"),
        ({"message_type": 0}, "unmapped_message_type"),
        ({"message_type": "broadcast"}, "unmapped_message_type"),
        ({"message_type": "template"}, None),
        ({"message_type": "activity"}, None),
    ],
)
def test_a_chatwoot_message_of_a_type_it_does_not_send_is_kept_not_dropped(
    changed: dict[str, Any], code: str | None
) -> None:
    # Answered 200 with nothing stored and no dead letter (found by a review): only the types
    # that are no contact (activity lines, Chatwoot's own widget forms) map to nothing.
    fixture = load(FIXTURES / "chatwoot" / "message_incoming.json")
    body = {**json.loads(fixture["body"]), **changed}
    sent = replace(delivery(fixture), body=json.dumps(body).encode())
    intake = map_delivery(Chatwoot(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [v["code"] for v in intake.violations] == ([code] if code else [])
    assert intake.outgoing == []


def test_a_chatwoot_status_it_does_not_send_is_kept_not_dropped() -> None:
    fixture = load(FIXTURES / "chatwoot" / "conversation_resolved.json")
    body = {**json.loads(fixture["body"]), "status": "archived"}
    sent = replace(delivery(fixture), body=json.dumps(body).encode())
    intake = map_delivery(Chatwoot(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [(v["code"], v["path"]) for v in intake.violations] == [("unmapped_status", "status")]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("CallStatus", "answered", "unmapped_status"),
        ("CallStatus", "initiated", None),
        ("CallDuration", "nan", "bad_number"),
        ("CallDuration", "inf", "bad_number"),
        ("Timestamp", "Mon, 01 Jan 0001 00:00:00 +0000", "bad_timestamp"),
        ("Timestamp", "Tue, 10 Nov 26 16:20:30 +0000", "bad_timestamp"),
        ("Timestamp", "Tue, 10 Nov 2026 16:20:30 -0000", "bad_timestamp"),
    ],
)
def test_a_twilio_call_callback_twilio_would_not_send_is_kept_not_rewritten(
    field: str, value: str, code: str | None
) -> None:
    # Each was answered 200 and dropped (`answered` is an event name, not a status), or stored
    # rewritten: `nan` seconds as 0 s of talk, the year 0001 as 2001 (found by a review).
    fixture = load(FIXTURES / "twilio-voice" / "completed.json")
    fields = dict(parse_qsl(fixture["body"], keep_blank_values=True))
    sent = replace(delivery(fixture), body=urlencode({**fields, field: value}).encode())
    intake = map_delivery(TwilioVoice(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [(v["code"], v["path"]) for v in intake.violations] == ([(code, field)] if code else [])
    if code:
        assert intake.outgoing == []


def test_a_twilio_form_value_that_is_not_utf8_once_decoded_is_kept_not_replaced() -> None:
    # `Body=%FF%FE` was stored as two replacement characters, the text lost, while the same
    # bytes sent raw were a dead letter (found by a review): now both are.
    fixture = load(FIXTURES / "twilio-messaging" / "status_delivered.json")
    sent = replace(delivery(fixture), body=fixture["body"].encode() + b"&Body=%FF%FE")
    intake = map_delivery(TwilioMessaging(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [v["code"] for v in intake.violations] == ["malformed_form"]
    assert intake.outgoing == []


@pytest.mark.parametrize(
    ("changed", "name"),
    [
        ({}, "John Smith"),
        # The customer record names nobody: the billing address does (a guest checkout).
        ({"customer": {"id": 7, "email": "x@example.com", "first_name": None, "last_name": None},
          "billing_address": {"first_name": "Steve", "last_name": "Shipper", "name": "Steve Shipper"}},
         "Steve Shipper"),
        ({"customer": {"id": 7, "first_name": "Ana"}}, "Ana"),  # billed to John Smith: not hers
        # The customer record's given name alone, the billing address's whole: hers, whole.
        ({"customer": {"id": 7, "first_name": "Ana"},
          "billing_address": {"first_name": "Ana", "last_name": "López García"}},
         "Ana López García"),
        ({"customer": {"id": 7}, "billing_address": None}, ""),
    ],
)  # fmt: skip
def test_a_shopify_order_carries_the_buyers_name_where_the_console_reads_it(
    changed: dict[str, Any], name: str
) -> None:
    # The order carried no name: the profile's name was empty and a search for "John Smith"
    # found nothing, although the README says an order's billing name is found (a review).
    from services.identity.person_names import written_name

    fixture = load(FIXTURES / "shopify" / "order_online.json")
    body = {**json.loads(fixture["body"]), **changed}
    [event] = Shopify().to_events(replace(delivery(fixture), body=json.dumps(body).encode()), {})
    assert written_name(event["payload"]) == name


def test_a_shopify_test_order_and_its_refund_are_acknowledged_not_recorded() -> None:
    # "Send test notification" and orders paid through a test gateway come with `"test": true`:
    # each was stored as a real order, its amount counted as revenue (found by a review).
    fixture = load(FIXTURES / "shopify" / "order_online.json")
    body = {**json.loads(fixture["body"]), "test": True}
    sent = replace(delivery(fixture), body=json.dumps(body).encode())
    intake = map_delivery(Shopify(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert intake.complete and intake.outgoing == []
    # A refund of such an order moves test money only: no real return either.
    fixture = load(FIXTURES / "shopify" / "refund.json")
    refund = json.loads(fixture["body"])
    refund["transactions"] = [{**t, "test": True} for t in refund["transactions"]]
    sent = replace(delivery(fixture), body=json.dumps(refund).encode())
    assert Shopify().to_events(sent, {}) == []
    # `"test": false`, as every real order says, is an order.
    body["test"] = False
    order = load(FIXTURES / "shopify" / "order_online.json")
    sent = replace(delivery(order), body=json.dumps(body).encode())
    assert [e["type"] for e in Shopify().to_events(sent, {})] == ["order.placed"]


def test_a_shopify_refund_that_moved_no_money_is_a_return_in_the_currency_it_states() -> None:
    # Shopify's own sample refund (`"transactions": []`) was a dead letter: no currency, so the
    # return was lost (found by a review). Its lines' shop currency is used when they state one.
    fixture = load(FIXTURES / "shopify" / "refund_without_money.json")
    body = json.loads(fixture["body"])
    money = {"shop_money": {"amount": "199.00", "currency_code": "EUR"},
             "presentment_money": {"amount": "215.00", "currency_code": "USD"}}  # fmt: skip
    body["refund_line_items"][0]["subtotal_set"] = money
    [event] = Shopify().to_events(replace(delivery(fixture), body=json.dumps(body).encode()), {})
    assert (event["payload"]["amount"], event["payload"]["currency"]) == ("0", "EUR")
    # Money paid back in no stated currency is still refused: the amount would mean nothing.
    body["transactions"] = [{"id": 1, "kind": "refund", "status": "success", "amount": "5.00"}]
    body["refund_line_items"][0].pop("subtotal_set")
    sent = replace(delivery(fixture), body=json.dumps(body).encode())
    intake = map_delivery(Shopify(), sent, channel(fixture), 64 * 1024, BUCKET_KEY)
    assert [v["path"] for v in intake.violations] == ["transactions"]


def _public_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return str(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    )


def test_a_sendgrid_verification_key_is_checked_and_what_is_wrong_is_named() -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from services.ingest.channels.providers.sendgrid import SendGrid

    private, public = signing.sendgrid_keypair()
    assert SendGrid().secret_problem(public) is None
    assert SendGrid().secret_problem(_public_pem(private.public_key())) is None
    rsa_der = (
        rsa.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    wrong = {
        "not-a-key": "not base64",
        base64.b64encode(b"sixteen bytes!!!").decode(): "16 bytes that are not a public key",
        base64.b64encode(rsa_der).decode(): "an RSA public key, not an ECDSA (elliptic-curve) one",
        _public_pem(p384): "on the curve secp384r1, not P-256",
        "-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----": "a private key",
    }
    for secret, said in wrong.items():
        problem = SendGrid().secret_problem(secret)
        assert problem is not None and said in problem, (secret, problem)


def test_a_delivery_without_the_header_its_provider_signs_in_is_refused_naming_it(
    fixture: dict[str, Any],
) -> None:
    # The header a 401 names is the one the provider's check reads.
    from services.ingest.channels.base import refusal

    provider = load_providers()[fixture["provider"]]
    signed = delivery(fixture)
    for header in filter(None, (provider.signature_header, provider.timestamp_header)):
        assert header.lower() in signed.headers
        unsigned = replace(
            signed, headers={k: v for k, v in signed.headers.items() if k != header.lower()}
        )
        assert not provider.verify(unsigned, fixture["secret"])
        assert refusal(provider, unsigned) == {
            "code": "missing_header", "message": f"missing header {header}",
            "path": f"headers.{header}",
        }  # fmt: skip
