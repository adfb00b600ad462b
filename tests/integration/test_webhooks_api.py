"""Provider webhooks and channel admin over HTTP, on the in-memory log, publisher and stores.

What a tenant and a provider see: the webhook URL a channel gets, 404 for an unknown channel, 401
with nothing stored for a bad signature, retries answered as the provider expects without a second
event, an unmappable delivery kept as a dead letter (then replayed after the mapping is fixed),
and channel secrets never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cem.adapters.memory_channels import MemoryChannelStore
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from kernel.clock import FixedClock
from kernel.customer_key import customer_key
from kernel.partitioning import touchpoint_key
from kernel.ports import TOUCHPOINTS_TOPIC
from kernel.secrets import SecretBox, new_key_text, platform_key
from kernel.settings import IngestSettings
from schemas.validate import decode
from services.ingest.app import create_app
from services.ingest.channels import signing
from services.ingest.channels.replay import replay_webhooks
from tests.events import BUCKET_KEY

FIXTURES = Path(__file__).parents[1] / "fixtures" / "channels"
NOW = datetime(2026, 11, 10, 16, 20, 30, tzinfo=UTC)
SECRET = "typeform-webhook-secret"


class Platform:
    def __init__(self) -> None:
        self.log = MemoryLog(partitions=4)
        self.publisher = MemoryPublisher(self.log)
        self.keys = MemoryKeyStore()
        box = SecretBox(platform_key(Path("/nonexistent"), new_key_text()))
        self.channels = MemoryChannelStore(box)
        self.clock = FixedClock(NOW)
        app = create_app(
            self.publisher,
            self.keys,
            IngestSettings(),
            self.clock,
            channels=self.channels,
            bucket_key=BUCKET_KEY,
        )
        self.client = TestClient(app)
        self.admin = {"Authorization": f"Bearer {self.keys.create('acme', 'admin')[1]}"}

    def events(self) -> list[dict[str, Any]]:
        records = self.log.poll(
            TOUCHPOINTS_TOPIC,
            f"g{len(self.log.end_offsets(TOUCHPOINTS_TOPIC))}-{id(self)}",
            10_000,
            0,
        )
        return [json.loads(decode(r.value).model_dump_json()) for r in records]

    def add(self, provider: str, secret: str, settings: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post("/v1/channels", headers=self.admin,
                                  json={"provider": provider, "secret": secret, "settings": settings})  # fmt: skip
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
def platform() -> Iterator[Platform]:
    yield Platform()


def typeform_body(case: str = "nps_and_csat") -> bytes:
    return str(json.loads((FIXTURES / "typeform" / f"{case}.json").read_text())["body"]).encode()


def post_typeform(platform: Platform, path: str, body: bytes, secret: str = SECRET) -> Any:
    return platform.client.post(path, content=body, headers=signing.typeform_headers(secret, body))


MAPPED = {"questions": {"nps_score": "nps", "csat_rating": "csat"}, "comment": "why"}


def test_a_channel_gets_its_webhook_url_and_never_shows_its_secret(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, MAPPED)
    assert added["webhook_url"] == f"http://testserver/v1/webhooks/typeform/{added['channel_id']}"
    listed = platform.client.get("/v1/channels", headers=platform.admin).json()["channels"]
    assert [c["channel_id"] for c in listed] == [added["channel_id"]]
    assert SECRET not in json.dumps(listed) and SECRET not in json.dumps(added)


def test_only_admins_configure_channels(platform: Platform) -> None:
    ingest = {"Authorization": f"Bearer {platform.keys.create('acme', 'ingest')[1]}"}
    answer = platform.client.post(
        "/v1/channels", headers=ingest, json={"provider": "typeform", "secret": "x"}
    )
    assert answer.status_code == 403
    assert platform.client.get("/v1/channels").status_code == 401


def test_an_unknown_provider_is_named(platform: Platform) -> None:
    answer = platform.client.post(
        "/v1/channels", headers=platform.admin, json={"provider": "fax", "secret": "x"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["path"] == "body.provider"


@pytest.mark.parametrize(
    ("settings", "path"),
    [
        ({"questions": 5}, "body.settings.questions"),
        ({"questions": {"q_nps": "nsp"}}, "body.settings.questions.q_nps"),
        ({"question": {"q_nps": "nps"}}, "body.settings.question"),
        ({"touchpoint": "Encuesta web"}, "body.settings.touchpoint"),
    ],
)
def test_settings_the_provider_cannot_use_are_refused_when_configured(
    platform: Platform, settings: dict[str, Any], path: str
) -> None:
    """Found by a first-hour review: a mistyped Typeform mapping was taken, and every signed
    response then answered 200 and became a dead letter saying only `$`."""
    answer = platform.client.post("/v1/channels", headers=platform.admin,
                                  json={"provider": "typeform", "secret": "x", "settings": settings})  # fmt: skip
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_settings" and error["details"][0]["path"] == path
    added = platform.add("typeform", SECRET, MAPPED)
    changed = platform.client.patch(f"/v1/channels/{added['channel_id']}", headers=platform.admin,
                                    json={"settings": settings})  # fmt: skip
    assert changed.status_code == 422 and changed.json()["error"]["details"][0]["path"] == path
    listed = platform.client.get("/v1/channels", headers=platform.admin).json()["channels"]
    assert [c["settings"] for c in listed] == [MAPPED]  # the good mapping stays


def test_a_signed_delivery_is_stored_and_its_retry_is_not_stored_again(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, MAPPED)
    first = post_typeform(platform, added["webhook_path"], typeform_body())
    retry = post_typeform(platform, added["webhook_path"], typeform_body())
    assert (first.status_code, retry.status_code) == (200, 200)
    events = platform.events()
    assert [(e["type"], e["payload"]["kind"]) for e in events] == [
        ("survey.answered", "nps"), ("survey.answered", "csat")]  # fmt: skip
    assert {e["tenant_id"] for e in events} == {"acme"}


def test_a_bad_signature_is_401_and_nothing_is_kept(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, MAPPED)
    answer = post_typeform(platform, added["webhook_path"], typeform_body(), secret="wrong")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
    assert platform.events() == [] and platform.channels.dead_letters() == []


def test_a_shopify_test_order_is_acknowledged_counted_and_not_stored(platform: Platform) -> None:
    # Shopify's "Send test notification" (its sample order, `"test": true`) was stored as a
    # customer's real order and counted as revenue (found by a review).
    added = platform.add("shopify", "shpss_secret", {})
    fixture = json.loads((FIXTURES / "shopify" / "order_online.json").read_text())
    body = json.dumps({**json.loads(fixture["body"]), "test": True}).encode()
    headers = signing.shopify_headers("shpss_secret", body, "orders/create", "wh-test-1")
    answer = platform.client.post(added["webhook_path"], content=body, headers=headers)
    assert answer.status_code == 200  # Shopify stops sending it
    assert platform.events() == [] and platform.channels.dead_letters() == []
    metrics = platform.client.get("/metrics").text
    assert 'cem_webhook_unrecorded_total{provider="shopify"} 1' in metrics


CHATWOOT_SECRET = "cw-secret-123"
STAMP_HEADERS = {"chatwoot": ("X-Chatwoot-Signature", "X-Chatwoot-Timestamp"),
                 "sendgrid": ("X-Twilio-Email-Event-Webhook-Signature",
                              "X-Twilio-Email-Event-Webhook-Timestamp")}  # fmt: skip


def _signed(provider: str, stamp: int, key: Any) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads(
        (
            FIXTURES
            / provider
            / f"{'batch' if provider == 'sendgrid' else 'message_incoming'}.json"
        ).read_text()
    )
    body = fixture["body"].encode()
    if provider == "sendgrid":
        return body, signing.sendgrid_headers(key, body, stamp)
    return body, signing.chatwoot_headers(key, body, stamp)


@pytest.mark.parametrize("provider", ["chatwoot", "sendgrid"])
def test_a_401_says_why_the_delivery_is_refused(platform: Platform, provider: str) -> None:
    # Every refusal said "the <provider> signature does not verify": a missing header, a stale
    # timestamp (a replay, or a clock behind) and a wrong secret alike (found by a review).
    if provider == "sendgrid":
        key, public = signing.sendgrid_keypair()
        added, wrong = platform.add("sendgrid", public, {}), signing.sendgrid_keypair()[0]
    else:
        key, wrong = CHATWOOT_SECRET, "not-the-secret"
        added = platform.add("chatwoot", CHATWOOT_SECRET, {})
    signature, timestamp = STAMP_HEADERS[provider]
    now = int(NOW.timestamp())

    def refused(stamp: int, signer: Any = key, drop: str = "") -> str:
        body, headers = _signed(provider, stamp, signer)
        sent = {k: v for k, v in headers.items() if k != drop}
        answer = platform.client.post(added["webhook_path"], content=body, headers=sent)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
        message: str = answer.json()["error"]["message"]
        assert CHATWOOT_SECRET not in answer.text
        return message

    assert refused(now, drop=signature) == f"missing header {signature}"
    assert refused(now, drop=timestamp) == f"missing header {timestamp}"
    stale = refused(now - 3600)
    assert "timestamp is 3600 s old" in stale and "300 s allowed" in stale
    ahead = refused(now + 900)
    assert "900 s ahead of this server's clock" in ahead and "clock skew" in ahead
    assert refused(now, signer=wrong) == (
        f"the {provider} signature does not verify under the channel's secret"
    )
    assert platform.events() == [] and platform.channels.dead_letters() == []


def test_unknown_or_removed_channels_are_404(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, MAPPED)
    wrong_provider = added["webhook_path"].replace("typeform", "shopify")
    assert post_typeform(platform, wrong_provider, typeform_body()).status_code == 404
    assert (
        post_typeform(
            platform, "/v1/webhooks/typeform/ch_nosuchchannel00", typeform_body()
        ).status_code
        == 404
    )
    assert (
        platform.client.delete(
            f"/v1/channels/{added['channel_id']}", headers=platform.admin
        ).status_code
        == 204
    )
    assert post_typeform(platform, added["webhook_path"], typeform_body()).status_code == 404


def test_unmappable_is_kept_then_replayed_after_the_fix(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, {"questions": {}})
    answer = post_typeform(platform, added["webhook_path"], typeform_body())
    assert answer.status_code == 200  # Typeform must stop retrying: the delivery is kept
    [letter] = platform.channels.dead_letters(tenant_id="acme")
    assert letter.body == typeform_body() and letter.provider == "typeform"
    assert [v["path"] for v in letter.violations] == ["form_response.answers"]
    assert platform.events() == []

    still = replay_webhooks(
        platform.channels, platform.publisher, bucket_key=BUCKET_KEY, tenant_id="acme"
    )
    assert (still.restored, still.duplicates, still.still_failing) == (0, 0, 1)

    fixed = platform.client.patch(f"/v1/channels/{added['channel_id']}", headers=platform.admin,
                                  json={"settings": MAPPED})  # fmt: skip
    assert fixed.status_code == 200
    report = replay_webhooks(
        platform.channels, platform.publisher, bucket_key=BUCKET_KEY, tenant_id="acme"
    )
    assert (report.restored, report.duplicates, report.still_failing) == (1, 0, 0)
    assert len(platform.events()) == 2
    # Replayed records are keyed as the webhook route keys them: the deployment's bucket.
    records = platform.log.poll(TOUCHPOINTS_TOPIC, "keys", 100, 0)
    assert [r.key for r in records] == [
        touchpoint_key(BUCKET_KEY, "acme", customer_key(decode(r.value).customer)) for r in records
    ]
    assert platform.channels.dead_letters(tenant_id="acme") == []


def test_an_admin_reads_the_tenants_dead_letters_and_replays_them_over_http(
    platform: Platform,
) -> None:
    # The provider got its 200, so nothing told the integrator (a review): the tenant's admin
    # lists what was kept and why, fixes the mapping and replays, without a shell on the host.
    added = platform.add("typeform", SECRET, {"questions": {}})
    assert post_typeform(platform, added["webhook_path"], typeform_body()).status_code == 200
    listed = platform.client.get("/v1/channels/dead-letters", headers=platform.admin)
    assert listed.status_code == 200, listed.text
    [letter] = listed.json()["dead_letters"]
    assert (letter["provider"], letter["channel_id"], letter["status"]) == (
        "typeform", added["channel_id"], "pending",
    )  # fmt: skip
    assert letter["reason"] == "unmappable" and letter["bytes"] == len(typeform_body())
    [violation] = letter["violations"]
    assert violation["path"] == "form_response.answers" and violation["message"]
    assert "body" not in letter  # the provider's personal data stays in the store
    # Another tenant's admin sees none of it; an ingest key may not read it.
    other = {"Authorization": f"Bearer {platform.keys.create('globex', 'admin')[1]}"}
    assert platform.client.get("/v1/channels/dead-letters", headers=other).json() == {
        "dead_letters": [], "more": False,
    }  # fmt: skip
    ingest = {"Authorization": f"Bearer {platform.keys.create('acme', 'ingest')[1]}"}
    assert platform.client.get("/v1/channels/dead-letters", headers=ingest).status_code == 403
    unknown = platform.client.get(
        "/v1/channels/dead-letters", headers=platform.admin, params={"provider": "typefrom"}
    )
    assert unknown.status_code == 422 and "typefrom" in unknown.json()["error"]["message"]

    replay = "/v1/channels/dead-letters/replay"
    still = platform.client.post(replay, headers=platform.admin, json={})
    assert still.json() == {"restored": 0, "duplicates": 0, "still_failing": 1, "erased": 0,
                            "unrecorded": 0, "next_since": None}  # fmt: skip
    fixed = platform.client.patch(f"/v1/channels/{added['channel_id']}", headers=platform.admin,
                                  json={"settings": MAPPED})  # fmt: skip
    assert fixed.status_code == 200
    done = platform.client.post(replay, headers=platform.admin, json={"provider": "typeform"})
    assert done.json() == {"restored": 1, "duplicates": 0, "still_failing": 0, "erased": 0,
                           "unrecorded": 0, "next_since": None}  # fmt: skip
    assert len(platform.events()) == 2
    pending = platform.client.get("/v1/channels/dead-letters", headers=platform.admin).json()
    assert pending["dead_letters"] == []
    replayed = platform.client.get(
        "/v1/channels/dead-letters", headers=platform.admin, params={"status": "replayed"}
    ).json()["dead_letters"]
    assert [(r["dead_letter_id"], r["status"]) for r in replayed] == [
        (letter["dead_letter_id"], "replayed")
    ]


def test_a_batch_with_one_bad_item_keeps_the_rest_and_the_item(platform: Platform) -> None:
    private, public = signing.sendgrid_keypair()
    added = platform.add("sendgrid", public, {})
    fixture = json.loads((FIXTURES / "sendgrid" / "item_without_id.json").read_text())
    body = fixture["body"].encode()
    headers = signing.sendgrid_headers(private, body, int(NOW.timestamp()))
    answer = platform.client.post(added["webhook_path"], content=body, headers=headers)
    assert answer.status_code == 200
    assert [e["type"] for e in platform.events()] == ["email.delivered"]
    [letter] = platform.channels.dead_letters(provider="sendgrid")
    assert [v["path"] for v in letter.violations] == ["1.sg_event_id"]


def test_twilio_gets_twiml_and_the_signed_url_includes_the_query(platform: Platform) -> None:
    added = platform.add("twilio-voice", "token", {})
    fixture = json.loads((FIXTURES / "twilio-voice" / "completed.json").read_text())
    url = added["webhook_url"] + "?queue=billing&agent=ana&hold_s=60"
    body = fixture["body"].encode()
    answer = platform.client.post(
        url, content=body, headers=signing.twilio_headers("token", url, body)
    )
    assert answer.status_code == 200 and b"<Response>" in answer.content
    [event] = platform.events()
    assert (event["type"], event["payload"]["talk_s"], event["payload"]["agent"]) == (
        "call.ended",
        300.0,
        "ana",
    )


def test_an_oversized_delivery_is_413_and_nothing_is_kept(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, MAPPED)
    body = b'{"x": "' + b"a" * (IngestSettings().max_body_bytes + 10) + b'"}'
    answer = post_typeform(platform, added["webhook_path"], body)
    assert answer.status_code == 413
    assert platform.events() == [] and platform.channels.dead_letters() == []


def test_a_secret_the_platform_key_cannot_open_is_503_not_a_refusal(platform: Platform) -> None:
    added = platform.add("typeform", SECRET, MAPPED)
    platform.channels._box = SecretBox(platform_key(Path("/nonexistent"), new_key_text()))
    answer = post_typeform(platform, added["webhook_path"], typeform_body())
    assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
    assert SECRET not in answer.text


def test_channel_configuration_needs_a_key_before_its_body_is_read(platform: Platform) -> None:
    huge = b'{"provider": "typeform", "secret": "' + b"a" * 200_000 + b'"}'
    json_type = {"Content-Type": "application/json"}
    assert platform.client.post("/v1/channels", content=huge, headers=json_type).status_code == 401
    answer = platform.client.post(
        "/v1/channels", content=huge, headers={**platform.admin, **json_type}
    )
    assert answer.status_code == 413


def test_invalid_configuration_lists_every_path(platform: Platform) -> None:
    answer = platform.client.post("/v1/channels", headers=platform.admin, json={"settings": []})
    assert answer.status_code == 422
    paths = sorted(d["path"] for d in answer.json()["error"]["details"])
    assert paths == ["body.provider", "body.secret", "body.settings"]


def test_a_configuration_with_a_duplicate_key_is_refused(platform: Platform) -> None:
    body = b'{"provider": "typeform", "secret": "x", "secret": "y"}'
    answer = platform.client.post(
        "/v1/channels", content=body, headers={**platform.admin, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("with_query", [False, True])
def test_twilio_behind_a_proxy_verifies_against_the_channels_public_url(
    platform: Platform, with_query: bool
) -> None:
    # The setting holds the URL Twilio calls, with the callback's query (as copied from Twilio's
    # console) or without it: either way the query signed is the one the request came with
    # (with it, a first version checked `…?queue=billing&agent=ana?queue=billing&agent=ana`).
    added = platform.add("twilio-voice", "token", {})
    public = f"https://cem.example.com/hooks/{added['channel_id']}"
    query = "?queue=billing&agent=ana"
    setting = public + query if with_query else public
    platform.client.patch(f"/v1/channels/{added['channel_id']}", headers=platform.admin,
                          json={"settings": {"public_url": setting}})  # fmt: skip
    fixture = json.loads((FIXTURES / "twilio-voice" / "completed.json").read_text())
    body = fixture["body"].encode()
    signed_as_called = signing.twilio_headers("token", public + query, body)
    answer = platform.client.post(
        added["webhook_path"] + query, content=body, headers=signed_as_called
    )
    assert answer.status_code == 200
    signed_as_seen = signing.twilio_headers("token", added["webhook_url"] + query, body)
    refused = platform.client.post(
        added["webhook_path"] + query, content=body, headers=signed_as_seen
    )
    assert refused.status_code == 401
    # Said with the URL checked, and what to do behind a proxy: not the secret alone (a review).
    said = refused.json()["error"]["message"]
    assert f"the URL it reached ({public + query})" in said and "public_url" in said, said
    assert "token" not in said


def test_a_signature_check_that_raises_is_a_401_not_a_500(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever an unauthenticated sender puts in its headers, a provider's check that raises on
    # it answers as a bad signature (one was a 500 with a traceback, found by a review).
    from services.ingest.channels.providers.typeform import Typeform

    def raising(self: Typeform, request: Any, secret: str) -> bool:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(Typeform, "verify", raising)
    added = platform.add("typeform", SECRET, MAPPED)
    answer = post_typeform(platform, added["webhook_path"], typeform_body())
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
    assert platform.events() == [] and platform.channels.dead_letters() == []


@pytest.mark.parametrize("secret", ["not-a-key", "c2VjcmV0", "-----BEGIN PRIVATE KEY-----\nabc"])
def test_a_sendgrid_secret_that_is_no_verification_key_is_refused_when_configured(
    platform: Platform, secret: str
) -> None:
    # `not-a-key` was taken (201), then every signed delivery was 401 (found by a review).
    answer = platform.client.post(
        "/v1/channels", headers=platform.admin, json={"provider": "sendgrid", "secret": secret}
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_secret" and error["details"][0]["path"] == "body.secret"
    assert "verification key" in error["message"] and secret not in answer.text
    assert platform.client.get("/v1/channels", headers=platform.admin).json()["channels"] == []


@pytest.mark.parametrize(
    ("provider", "settings", "path"),
    [
        ("shopify", {"touchpont": "tienda"}, "body.settings.touchpont"),
        ("chatwoot", {"touchpoint": "Chat Web"}, "body.settings.touchpoint"),
        ("sendgrid", {"public_url": "not a url"}, "body.settings.public_url"),
    ],
)
def test_every_provider_but_twilio_checks_its_settings(
    platform: Platform, provider: str, settings: dict[str, Any], path: str
) -> None:
    """A mistyped setting of any provider whose events carry it (a touchpoint that is no name)
    was taken and then dead-lettered every delivery (a review); Twilio's are URL parameters."""
    answer = platform.client.post("/v1/channels", headers=platform.admin,
                                  json={"provider": provider, "secret": "x", "settings": settings})  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["path"] == path
    good = {"touchpoint": "tienda_online", "public_url": "https://cx.example.com/hooks/ch_1"}
    secret = signing.sendgrid_keypair()[1] if provider == "sendgrid" else "x"  # a key, checked
    assert platform.add(provider, secret, good)["settings"] == good
    twilio = platform.add("twilio-voice", "token", {"queue": "billing", "agent_desk": "4"})
    assert twilio["settings"] == {"queue": "billing", "agent_desk": "4"}


def test_the_dead_letter_routes_say_every_answer_they_can_give(platform: Platform) -> None:
    paths = platform.client.get("/openapi.json").json()["paths"]
    listed = set(paths["/v1/channels/dead-letters"]["get"]["responses"])
    assert {"200", "401", "403", "404", "422"} <= listed, listed
    replay = set(paths["/v1/channels/dead-letters/replay"]["post"]["responses"])
    assert {"200", "400", "401", "403", "404", "413", "422", "503"} <= replay, replay
