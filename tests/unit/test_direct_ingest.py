"""Records on the touchpoints topic in both forms: the ingest's stored events and direct producers'."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from cem.direct_ingest import DIRECT_SOURCE, TimedConsumed, decode_record
from cem.processing import process_batch
from schemas.validate import InvalidEvent, accept, encode
from services.ingest.batch import to_outgoing
from services.projections.projection import ProjectionsProjection

RECEIVED = datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
RECEIVED_MS = 1_769_860_800_123


def raw_event(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "channel": "survey",
        "type": "survey.answered",
        "touchpoint": "post_call_survey",
        "customer": {"customer_id": "cust-1"},
        "occurred_at": "2026-01-31T11:00:00Z",
        "payload": {"survey_id": "s-1", "kind": "csat", "score": 4},
    }
    raw.update(overrides)
    return raw


def direct(
    raw: Any, headers: dict[str, bytes] | None = None, timestamp_ms: int | None = RECEIVED_MS
) -> TimedConsumed:
    value = raw if isinstance(raw, bytes) else orjson.dumps(raw)
    given = {"tenant_id": b"acme"} if headers is None else headers
    return TimedConsumed(
        "touchpoints", 3, 42, b"acme/cust-1", value, tuple(given.items()), timestamp_ms
    )


def stored(raw: dict[str, Any], tenant: str = "acme") -> TimedConsumed:
    """A record exactly as the HTTP ingest publishes it."""
    event, fingerprint = accept(raw, tenant, RECEIVED)
    record = to_outgoing(event, fingerprint).record
    return TimedConsumed("touchpoints", 0, 7, record.key, record.value, record.headers, 1)


def violated_paths(rec: TimedConsumed) -> set[str]:
    with pytest.raises(InvalidEvent) as info:
        decode_record(rec)
    return {v.path for v in info.value.violations}


# --- stored form -----------------------------------------------------------------------------
def test_a_record_the_ingest_wrote_decodes_to_the_event_it_stored() -> None:
    raw = raw_event()
    rec = stored(raw)
    assert decode_record(rec) == accept(raw, "acme", RECEIVED)[0]


def test_a_stored_record_keeps_its_own_received_at_not_the_record_timestamp() -> None:
    assert decode_record(stored(raw_event())).received_at == RECEIVED


def test_a_stored_record_whose_tenant_header_disagrees_is_rejected() -> None:
    rec = stored(raw_event())
    forged = TimedConsumed(
        rec.topic, rec.partition, rec.offset, rec.key, rec.value, (("tenant_id", b"other"),), 1
    )
    assert violated_paths(forged) == {"tenant_id"}


def test_a_stored_record_of_an_unknown_schema_version_is_rejected() -> None:
    event, _ = accept(raw_event(), "acme", RECEIVED)
    body = {**orjson.loads(encode(event)), "schema_version": 2}
    with pytest.raises(ValueError):
        decode_record(direct(body))


# --- direct form -----------------------------------------------------------------------------
def test_a_direct_record_is_validated_like_a_post_with_the_tenant_from_the_header() -> None:
    raw = raw_event()
    event = decode_record(direct(raw, {"tenant_id": b"acme", "source_id": b"survey-tool"}))
    assert event.tenant_id == "acme"
    assert event.source_id == "survey-tool"
    assert str(event.event_id) == raw["event_id"]
    assert event.payload["score"] == 4


def test_a_direct_record_is_received_at_its_broker_timestamp_exactly() -> None:
    assert decode_record(direct(raw_event())).received_at == RECEIVED


def test_decoding_a_direct_record_twice_gives_the_same_event_as_a_replay_must() -> None:
    rec = direct(raw_event(sent_at="2026-01-31T11:00:05Z"))
    assert decode_record(rec) == decode_record(rec)


def test_a_direct_record_without_a_source_is_marked_as_coming_from_kafka() -> None:
    assert decode_record(direct(raw_event())).source_id == DIRECT_SOURCE


def test_a_direct_record_without_a_tenant_header_is_rejected() -> None:
    assert violated_paths(direct(raw_event(), headers={})) == {"headers.tenant_id"}


def test_a_direct_record_cannot_choose_its_tenant_in_the_body() -> None:
    paths = violated_paths(direct(raw_event(tenant_id="other")))
    assert "tenant_id" in paths


def test_a_direct_record_whose_source_disagrees_with_its_header_is_rejected() -> None:
    rec = direct(raw_event(source_id="pos"), {"tenant_id": b"acme", "source_id": b"web"})
    assert violated_paths(rec) == {"source_id"}


def test_every_violation_of_a_direct_record_is_reported_with_its_path() -> None:
    raw = raw_event(channel="carrier-pigeon", payload={"kind": "csat", "score": 11})
    assert {"channel", "payload.score"} <= violated_paths(direct(raw))


def test_a_direct_record_of_an_unknown_schema_version_is_rejected() -> None:
    assert "schema_version" in violated_paths(direct(raw_event(schema_version=2)))


def test_a_direct_record_without_a_broker_timestamp_is_rejected() -> None:
    assert violated_paths(direct(raw_event(), timestamp_ms=None)) == {"timestamp"}


@pytest.mark.parametrize("value", [b"\xff\xfe not json", b"", b"[1, 2]", b'"just a string"', b"{}"])
def test_bytes_that_hold_no_event_raise_a_value_error(value: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record(direct(value))


def test_a_header_that_is_not_utf8_is_rejected() -> None:
    assert violated_paths(direct(raw_event(), {"tenant_id": b"\xff"})) == {"tenant_id"}


# --- in the batch core -----------------------------------------------------------------------
def test_a_batch_of_both_forms_projects_the_valid_and_dead_letters_the_rest() -> None:
    good_stored, good_direct = raw_event(), raw_event()
    invalid = raw_event(payload={"kind": "csat", "score": 11})
    records = [stored(good_stored), direct(good_direct), direct(invalid), direct(b"\x00garbage")]
    result = process_batch("projections", records, ProjectionsProjection().rows, decode_record)
    timeline = {row["event_id"] for row in result.rows["customer_timeline"]}
    assert timeline == {good_stored["event_id"], good_direct["event_id"]}
    assert [d.value for d in result.dead_letters] == [records[2].value, records[3].value]
    assert "payload.score" in result.dead_letters[0].error
    assert {d.reason for d in result.dead_letters} == {"undecodable"}


def test_the_same_event_over_http_and_straight_to_kafka_has_one_identity() -> None:
    raw = raw_event()
    rows = ProjectionsProjection().rows
    over_http = rows(decode_record(stored(raw)))["customer_timeline"]
    direct_copy = rows(decode_record(direct(raw)))["customer_timeline"]
    # Reads deduplicate by event_id within the tenant and customer: the event is shown once.
    key = ("tenant_id", "customer_id", "event_id")
    assert [tuple(r[k] for k in key) for r in over_http] == [
        tuple(r[k] for k in key) for r in direct_copy
    ]
