"""Segment messages → our envelope (services/ingest/segment_mapping.py), validated as the ingest
validates them (schemas.validate.accept)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import Event
from schemas.validate import Violation, accept
from services.identity.person_names import name_in
from services.ingest.segment_config import (
    InvalidMappings,
    SegmentMappings,
    TrackMapping,
    load_mappings,
)
from services.ingest.segment_mapping import (
    BatchDefaults,
    Mapped,
    event_id,
    fingerprint,
    map_message,
    slug,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
ORDER = TrackMapping(
    type="order.placed",
    touchpoint="checkout",
    payload={
        "order_id": "properties.order_id",
        "amount": "properties.revenue",
        "currency": "properties.currency",
    },
)


def mapped(message: dict[str, Any], kind: str | None = None, **tracks: TrackMapping) -> Mapped:
    found = map_message(message, kind, "acme", NOW, tracks)
    assert isinstance(found, Mapped), found
    return found


def stored(message: dict[str, Any], kind: str | None = None, **tracks: TrackMapping) -> Event:
    event, _ = accept(mapped(message, kind, **tracks).event, "acme", NOW)
    return event


def problems(message: Any, kind: str | None = None) -> list[Violation]:
    found = map_message(message, kind, "acme", NOW, {})
    assert isinstance(found, list), found
    return found


def test_a_page_view_of_an_anonymous_visitor_keeps_its_page_and_context() -> None:
    context = {
        "page": {"url": "https://shop.es/p/1", "referrer": "https://google.com"},
        "campaign": {"source": "newsletter", "medium": "email"},
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
        "library": {"name": "analytics.js", "version": "5.2.0"},
    }
    message = {"type": "page", "anonymousId": "anon-1", "name": "Product", "context": context,
               "properties": {"title": "Zapatos", "sku": "z-1"}, "messageId": "m-1",
               "timestamp": "2026-11-30T11:00:00Z"}  # fmt: skip
    event = stored(message)
    assert (event.type, event.channel.value, event.source_id) == ("page.viewed", "web", "segment")
    assert event.customer.anonymous_id == "anon-1" and event.customer.customer_id is None
    assert event.payload["url"] == "https://shop.es/p/1"
    assert event.payload["title"] == "Zapatos"
    attributes = event.payload["attributes"]
    assert attributes["context.campaign.source"] == "newsletter"
    assert attributes["context.ip"] == "203.0.113.9"
    assert attributes["context.userAgent"] == "Mozilla/5.0"
    assert attributes["context.library.name"] == "analytics.js"
    assert attributes["properties.sku"] == "z-1"
    assert event.occurred_at == datetime(2026, 11, 30, 11, tzinfo=UTC)


def test_identify_names_the_customer_with_user_id_anonymous_id_and_traits() -> None:
    message = {"userId": "u-42", "anonymousId": "anon-1", "messageId": "m-2",
               "traits": {"email": "Ana@Shop.es", "phone": "+34 600 000 001", "name": "Ana"}}  # fmt: skip
    event = stored(message, "identify")
    assert event.type == "custom.segment.identify"
    assert event.customer.model_dump(exclude_defaults=True) == {
        "customer_id": "u-42",
        "anonymous_id": "anon-1",
        "email": "Ana@Shop.es",
        "phone": "+34 600 000 001",
    }
    assert event.payload["traits"]["name"] == "Ana"


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ({"type": "identify", "userId": "u-42",
          "traits": {"firstName": "Mª José", "lastName": "García López"}}, "maria jose garcia lopez"),
        ({"type": "identify", "userId": "u-42", "traits": {"name": "Ana Ruiz Gil"}}, "ana ruiz gil"),
        ({"type": "track", "event": "Order Completed", "userId": "u-42",
          "properties": {"order_id": "o-1", "revenue": 10, "currency": "EUR"},
          "context": {"traits": {"first_name": "Íñigo", "last_name": "Núñez Sanz"}}},
         "inigo nunez sanz"),
        ({"type": "page", "anonymousId": "a-1", "properties": {"url": "https://shop.es/"},
          "context": {"traits": {"name": "ANA RUIZ GIL"}}},
         "ana ruiz gil"),
        # An identify's own traits say who the person is now, over the context's.
        ({"type": "identify", "userId": "u-42", "traits": {"name": "Ana Ruiz Gil"},
          "context": {"traits": {"name": "Eva Sanz"}}}, "ana ruiz gil"),
        # A group's traits name the company; a given name alone is no name identity reads here.
        ({"type": "group", "userId": "u-42", "groupId": "g", "traits": {"name": "Acme SL"}}, ""),
        ({"type": "identify", "userId": "u-42", "traits": {"firstName": "Ana"}}, ""),
        ({"type": "identify", "userId": "u-42", "traits": {"email": "ana@shop.es"}}, ""),
    ],
)  # fmt: skip
def test_the_persons_name_in_traits_is_where_identity_reads_it(
    message: dict[str, Any], name: str
) -> None:
    # Identity reads a touchpoint's person's name from `payload.attributes` (as the v1 API
    # carries it); before, a Segment source's names stayed in traits, where it never looked.
    event = stored(message, **{"Order Completed": ORDER})
    assert name_in(event.payload) == name


def test_alias_puts_the_previous_id_beside_the_user_id_on_one_touchpoint() -> None:
    event = stored({"type": "alias", "userId": "u-42", "previousId": "anon-1"})
    assert (event.customer.customer_id, event.customer.anonymous_id) == ("u-42", "anon-1")
    assert event.type == "custom.segment.alias"


def test_a_group_call_keeps_the_company_out_of_the_persons_identifiers() -> None:
    message = {"type": "group", "userId": "u-42", "groupId": "acme-inc",
               "traits": {"email": "billing@acme-inc.com"}}  # fmt: skip
    event = stored(message)
    assert event.customer.model_dump(exclude_defaults=True) == {"customer_id": "u-42"}
    assert event.payload["groupId"] == "acme-inc"
    assert event.payload["traits"] == {"email": "billing@acme-inc.com"}


def test_a_mapped_track_becomes_the_typed_event_with_its_payload() -> None:
    properties = {"order_id": "o-1", "revenue": 59.9, "currency": "EUR", "coupon": "XMAS",
                  "products": [{"sku": "z-1"}]}  # fmt: skip
    message = {"type": "track", "event": "Order Completed", "userId": "u-42",
               "properties": properties}  # fmt: skip
    event = stored(message, **{"Order Completed": ORDER})
    assert (event.type, event.touchpoint) == ("order.placed", "checkout")
    assert (event.payload["order_id"], event.payload["currency"]) == ("o-1", "EUR")
    assert str(event.payload["amount"]) == "59.9"
    assert event.payload["attributes"]["properties.coupon"] == "XMAS"
    assert json.loads(event.payload["attributes"]["properties.products"]) == [{"sku": "z-1"}]
    assert "properties.order_id" not in event.payload["attributes"]


def test_an_unmapped_track_is_a_custom_event_keeping_everything() -> None:
    message = {"type": "track", "event": "Video Played!", "anonymousId": "a",
               "properties": {"video": {"id": 7}}, "context": {"locale": "es-ES"}}  # fmt: skip
    event = stored(message)
    assert event.type == "custom.video_played"
    assert event.payload == {"event": "Video Played!", "properties": {"video": {"id": 7}},
                             "context": {"locale": "es-ES"}}  # fmt: skip


def test_a_screen_is_a_page_view_in_the_mobile_app() -> None:
    event = stored({"type": "screen", "userId": "u", "name": "Checkout"})
    assert (event.type, event.channel.value) == ("page.viewed", "mobile_app")
    assert (event.payload["url"], event.payload["title"]) == ("screen:Checkout", "Checkout")


def test_calls_from_a_phone_are_on_the_mobile_app_channel() -> None:
    message = {"type": "track", "event": "Added", "userId": "u", "context": {"os": {"name": "iOS"}}}
    assert stored(message).channel.value == "mobile_app"


def test_the_client_clock_is_corrected_with_sent_at_as_segment_does() -> None:
    # The device's clock is 3 hours ahead: it stamped the event 10 s before it sent it.
    device = NOW + timedelta(hours=3)
    message = {"type": "track", "event": "Clicked", "userId": "u",
               "originalTimestamp": (device - timedelta(seconds=10)).isoformat(),
               "sentAt": device.isoformat()}  # fmt: skip
    event = stored(message)
    assert event.derived_at == NOW - timedelta(seconds=10)
    assert event.clock_corrected


def test_a_batch_sent_at_applies_to_its_messages_and_no_time_at_all_means_received() -> None:
    message = {"type": "track", "event": "Clicked", "userId": "u", "timestamp": NOW.isoformat()}
    later = BatchDefaults(sent_at=(NOW + timedelta(hours=1)).isoformat())
    found = map_message(message, None, "acme", NOW, {}, later)
    assert isinstance(found, Mapped)
    event, _ = accept(found.event, "acme", NOW)
    assert event.derived_at == NOW - timedelta(hours=1)
    untimed = stored({"type": "track", "event": "Clicked", "userId": "u"})
    assert untimed.occurred_at == NOW and not untimed.clock_corrected


def test_batch_context_is_merged_under_the_messages_own() -> None:
    defaults = BatchDefaults(context={"ip": "1.1.1.1", "locale": "es"})
    message = {"type": "track", "event": "x", "userId": "u", "context": {"locale": "en"}}
    found = map_message(message, None, "acme", NOW, {}, defaults)
    assert isinstance(found, Mapped)
    assert found.event["payload"]["context"] == {"ip": "1.1.1.1", "locale": "en"}


def test_message_ids_become_event_ids_that_retries_repeat() -> None:
    given_uuid = str(uuid.uuid4())
    assert event_id("acme", {"messageId": given_uuid}, "track") == given_uuid
    derived = event_id("acme", {"messageId": "ajs-123"}, "track")
    assert derived == event_id("acme", {"messageId": "ajs-123"}, "track")
    assert derived != event_id("other", {"messageId": "ajs-123"}, "track")
    uuid.UUID(derived)


def test_a_retry_with_a_new_sent_at_has_the_same_id_and_fingerprint() -> None:
    message = {"type": "track", "event": "x", "userId": "u", "timestamp": NOW.isoformat()}
    first = mapped({**message, "sentAt": NOW.isoformat()})
    retry = mapped({**message, "sentAt": (NOW + timedelta(seconds=30)).isoformat()})
    assert first.event["event_id"] == retry.event["event_id"]  # derived from the content
    assert first.fingerprint == retry.fingerprint
    changed = mapped({**message, "event": "y"})
    assert changed.fingerprint != first.fingerprint


def test_a_page_without_a_url_is_stored_by_its_name() -> None:
    # Segment's own HTTP API example: a server-side page call names the page and gives no URL
    # (the URL is optional there); it was refused (422), and the SDK drops what is refused.
    page = {"type": "page", "userId": "019mr8mf4r", "name": "Tracking HTTP API",
            "timestamp": "2012-12-02T00:31:29.738Z"}  # fmt: skip
    event = stored(page)
    assert event.type == "page.viewed"
    assert event.payload["url"] == "page:Tracking HTTP API"
    assert stored({"type": "page", "userId": "u"}).payload["url"] == "page:unnamed"


def test_a_message_without_an_id_or_a_time_is_a_new_event_each_time() -> None:
    # Segment gives each message it receives a messageId of its own: two clicks sent alike by a
    # hand-written integration (no messageId, no timestamp) are two clicks, not a retry.
    click = {"type": "track", "event": "Button Clicked", "userId": "u-1",
             "properties": {"button": "buy"}}  # fmt: skip
    first, second = mapped(click), mapped(click)
    assert first.event["event_id"] != second.event["event_id"]
    # With the time it happened, the same content is the same event (a retry).
    timed = {**click, "timestamp": NOW.isoformat()}
    assert mapped(timed).event["event_id"] == mapped(timed).event["event_id"]


@pytest.mark.parametrize(
    ("message", "kind", "path"),
    [
        ({"type": "track", "event": "x"}, None, "userId"),
        ({"type": "track", "userId": "u"}, None, "event"),
        ({"type": "alias", "userId": "u"}, None, "previousId"),
        ({"type": "teleport", "userId": "u"}, None, "type"),
        ({"userId": "u"}, None, "type"),
        ({"event": "x", "userId": "  "}, "track", "userId"),
    ],
)
def test_unusable_messages_name_the_segment_field(
    message: dict[str, Any], kind: str | None, path: str
) -> None:
    assert path in {v.path for v in problems(message, kind)}


def test_a_message_that_is_not_an_object_is_refused() -> None:
    assert [v.code for v in problems(["track"])] == ["type_error"]


def test_numeric_user_ids_are_read_as_text() -> None:
    assert stored({"type": "identify", "userId": 42}).customer.customer_id == "42"


@given(st.text(max_size=120))
def test_every_track_name_gives_a_valid_custom_type(name: str) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", slug(name))
    assert len(f"custom.{slug(name)}") <= 100


@given(
    st.dictionaries(st.sampled_from(["event", "userId", "properties", "sentAt"]), st.text()),
    st.text(),
)
def test_the_fingerprint_never_depends_on_sent_at(message: dict[str, Any], sent: str) -> None:
    assert fingerprint({**message, "sentAt": sent}, "track") == fingerprint(
        {k: v for k, v in message.items() if k != "sentAt"}, "track"
    )


def test_mappings_load_per_tenant_with_a_default_for_all(tmp_path: Path) -> None:
    path = tmp_path / "segment.json"
    order = {"type": "order.placed", "payload": {"order_id": "properties.id"}}
    path.write_text(json.dumps({"*": {"Order Completed": order},
                                "acme": {"Signed Up": {"type": "custom.signup"}}}))  # fmt: skip
    mappings = load_mappings(path)
    assert set(mappings.for_tenant("acme")) == {"Order Completed", "Signed Up"}
    assert set(mappings.for_tenant("other")) == {"Order Completed"}
    assert load_mappings(None) == SegmentMappings()


def test_a_mapping_to_an_unknown_type_is_refused_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "segment.json"
    path.write_text(json.dumps({"acme": {"Order Completed": {"type": "order.completed"}}}))
    with pytest.raises(InvalidMappings, match="Order Completed.type: "):
        load_mappings(path)
    with pytest.raises(InvalidMappings, match="No such file"):
        load_mappings(tmp_path / "missing.json")


def test_a_blank_messageid_is_none_and_a_numeric_one_is_an_id() -> None:
    # A blank id gave two different messages one event id (the second a conflict); a number was
    # taken for no id, so its retries without a time were new events (found by a review).
    first = mapped({"type": "track", "event": "a", "userId": "u", "messageId": ""})
    second = mapped({"type": "track", "event": "b", "userId": "u", "messageId": ""})
    assert first.event["event_id"] != second.event["event_id"]
    numbered = {"type": "track", "event": "a", "userId": "u", "messageId": 12345}
    assert mapped(numbered).event["event_id"] == mapped(numbered).event["event_id"]
