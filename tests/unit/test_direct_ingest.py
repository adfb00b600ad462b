"""Records on the touchpoints topic in both forms: the ingest's stored events and direct producers'."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from cem.direct_ingest import DIRECT_SOURCE, RecordDecoder, TimedConsumed
from cem.record_seal import SEAL_HEADER, sealed
from kernel.filings import file_batch, project_filings
from kernel.ports import Consumed, PublishStatus, Record
from kernel.processing import Unadmitted, process_batch
from schemas.envelope import Event
from schemas.validate import InvalidEvent, accept, decode, encode
from services.ingest.batch import to_outgoing
from services.projections.projection import ProjectionsProjection
from tests.events import BUCKET_KEY

RECEIVED = datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
RECEIVED_MS = 1_769_860_800_123
SEAL_KEY = b"the platform's seal key"
decode_record = RecordDecoder(SEAL_KEY)


def decoded_event(rec: TimedConsumed) -> Event:
    """The event a record holds, whichever form it came in."""
    found = decode_record(rec)
    return found.event if isinstance(found, Unadmitted) else found


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


def stored(raw: dict[str, Any], tenant: str = "acme", key: bytes = SEAL_KEY) -> TimedConsumed:
    """A record exactly as the HTTP ingest publishes it, sealed with `key`."""
    event, fingerprint = accept(raw, tenant, RECEIVED)
    record = sealed(to_outgoing(event, fingerprint, BUCKET_KEY).record, key)
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
    assert decoded_event(stored(raw_event())).received_at == RECEIVED


def test_the_stored_form_without_the_platforms_seal_is_a_producers_event_that_sets_server_fields() -> (
    None
):
    # S08: the body names its own tenant and times; only the ingest may publish that form.
    unsealed = stored(raw_event(), key=b"somebody else's key")
    assert {"tenant_id", "received_at", "derived_at"} <= violated_paths(unsealed)
    headerless = TimedConsumed("touchpoints", 0, 7, unsealed.key, unsealed.value, (), RECEIVED_MS)
    assert {"headers.tenant_id"} <= violated_paths(headerless)


def test_a_second_seal_header_voids_the_seal() -> None:
    rec = stored(raw_event())
    doubled = TimedConsumed(
        rec.topic, rec.partition, rec.offset, rec.key, rec.value,
        (*rec.headers, (SEAL_HEADER, b"0" * 64)), 1,
    )  # fmt: skip
    assert "tenant_id" in violated_paths(doubled)


def test_a_sealed_record_that_is_not_a_valid_event_lists_the_violated_paths() -> None:
    event, _ = accept(raw_event(), "acme", RECEIVED)
    body = {**orjson.loads(encode(event)), "channel": "carrier-pigeon", "occurred_at": "soon"}
    record = sealed(Record(b"acme/cust-1", orjson.dumps(body)), SEAL_KEY)
    rec = TimedConsumed("touchpoints", 0, 7, record.key, record.value, record.headers, 1)
    assert {"channel", "occurred_at"} <= violated_paths(rec)


def test_a_stored_record_whose_tenant_header_disagrees_is_rejected() -> None:
    rec = stored(raw_event())
    seal = [h for h in rec.headers if h[0] == SEAL_HEADER]
    forged = TimedConsumed(
        rec.topic,
        rec.partition,
        rec.offset,
        rec.key,
        rec.value,
        (("tenant_id", b"other"), *seal),
        1,
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
    event = decoded_event(direct(raw, {"tenant_id": b"acme", "source_id": b"survey-tool"}))
    assert event.tenant_id == "acme"
    assert event.source_id == "survey-tool"
    assert str(event.event_id) == raw["event_id"]
    assert event.payload["score"] == 4


def test_a_direct_record_is_received_at_its_broker_timestamp_exactly() -> None:
    assert decoded_event(direct(raw_event())).received_at == RECEIVED


def test_decoding_a_direct_record_twice_gives_the_same_event_as_a_replay_must() -> None:
    rec = direct(raw_event(sent_at="2026-01-31T11:00:05Z"))
    assert decode_record(rec) == decode_record(rec)


def test_a_direct_record_without_a_source_is_marked_as_coming_from_kafka() -> None:
    assert decoded_event(direct(raw_event())).source_id == DIRECT_SOURCE


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


def test_a_body_sent_over_http_then_to_kafka_has_the_same_fingerprint_a_repeat_not_a_conflict() -> (
    None
):
    raw = raw_event()
    found = decode_record(direct(raw))
    assert isinstance(found, Unadmitted)
    assert found.fingerprint == accept(raw, "acme", RECEIVED)[1]
    assert found.event.source_id == DIRECT_SOURCE
    named = decode_record(direct(raw, {"tenant_id": b"acme", "source_id": b"pos"}))
    assert isinstance(named, Unadmitted)
    assert named.fingerprint == accept({**raw, "source_id": "pos"}, "acme", RECEIVED)[1]


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
    over_http = rows(decoded_event(stored(raw)))["customer_timeline"]
    direct_copy = rows(decoded_event(direct(raw)))["customer_timeline"]
    # Reads deduplicate by event_id within the tenant and customer: the event is shown once.
    key = ("tenant_id", "customer_id", "event_id")
    assert [tuple(r[k] for k in key) for r in over_http] == [
        tuple(r[k] for k in key) for r in direct_copy
    ]


def test_the_filing_stage_dead_letters_a_record_wrong_in_itself_and_files_the_rest() -> None:
    good = raw_event()
    records = [
        direct(b"\x00garbage"),
        direct(raw_event(payload={"kind": "csat", "score": 11})),
        direct(good),
    ]
    batch = file_batch(records, None, decode_record)
    assert [(d.stage, d.reason) for d in batch.dead_letters] == [("filing", "undecodable")] * 2
    assert batch.next_offsets == {3: 43}  # read past, all the same
    # The producer's event is filed in the ingest's stored form, under its customer key.
    [filing] = batch.filings
    assert decode(filing.value).event_id == uuid.UUID(good["event_id"])
    assert dict(filing.headers)["cem-customer-id"] == b"cust-1"
    rows = project_filings("satisfaction", [consumed(filing)], ProjectionsProjection().rows)
    assert rows.dead_letters == []
    assert [r["customer_id"] for r in rows.rows["customer_timeline"]] == ["cust-1"]


def consumed(filing: Record, offset: int = 0) -> Consumed:
    return Consumed("filings", 0, offset, filing.key, filing.value, filing.headers)


def test_a_dead_letter_keeps_the_record_headers_with_their_values() -> None:
    rec = direct(b"\x00garbage", {"tenant_id": b"acme", "trace": b"\xff\x01"})
    [letter] = process_batch(
        "projections", [rec], ProjectionsProjection().rows, decode_record
    ).dead_letters
    headers = orjson.loads(letter.to_json())["headers"]
    assert headers == [
        {"name": "tenant_id", "value_hex": b"acme".hex()},
        {"name": "trace", "value_hex": "ff01"},
    ]


# --- the idempotency rule on direct records ----------------------------------------------------
class FirstClaimWins:
    """An Admission twin with the PostgreSQL adapter's rule: the first record of an identity is
    the original wherever it is read; the same body again is a duplicate, another a conflict."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], tuple[str, tuple[str, int, int]]] = {}

    def admit(self, items: list[tuple[Consumed, Unadmitted]]) -> list[PublishStatus]:
        verdicts = []
        for rec, item in items:
            where = (rec.topic, rec.partition, rec.offset)
            identity = (item.event.tenant_id, str(item.event.event_id))
            fingerprint, origin = self.claims.setdefault(identity, (item.fingerprint, where))
            if origin == where:
                verdicts.append(PublishStatus.accepted)
            elif fingerprint != item.fingerprint:
                verdicts.append(PublishStatus.conflict)
            else:
                verdicts.append(PublishStatus.duplicate)
        return verdicts


def at(rec: TimedConsumed, offset: int) -> TimedConsumed:
    return TimedConsumed(
        rec.topic, rec.partition, offset, rec.key, rec.value, rec.headers, RECEIVED_MS
    )


def test_a_direct_repeat_is_kept_out_and_another_body_is_a_conflict_on_every_filing() -> None:
    raw = raw_event()
    original = at(direct(raw), 1)
    repeat, other = (
        at(direct(raw), 2),
        at(direct({**raw, "payload": {**raw["payload"], "score": 1}}), 3),
    )
    admission = FirstClaimWins()
    for _ in range(2):  # the second: a redelivery of the batch
        batch = file_batch([original, repeat, other], None, decode_record, admission)
        [filing] = batch.filings
        assert decode(filing.value).event_id == uuid.UUID(raw["event_id"])
        assert [(d.offset, d.reason) for d in batch.dead_letters] == [(3, "conflict")]


def test_the_ingests_sealed_records_are_not_judged_again() -> None:
    admission = FirstClaimWins()
    result = process_batch(
        "projections", [stored(raw_event())], ProjectionsProjection().rows, decode_record,
        admission=admission,
    )  # fmt: skip
    assert len(result.rows["customer_timeline"]) == 1
    assert admission.claims == {}


def test_a_direct_record_of_the_platforms_own_alert_action_is_rejected() -> None:
    raw = raw_event(
        type="alert.resolved",
        channel="other",
        touchpoint="alert_queue",
        customer={"customer_id": "cem:customer:c_someone"},
        payload={"alert_id": "a-1", "actor": "x", "note": "done"},
    )
    with pytest.raises(InvalidEvent) as info:
        decode_record(direct(raw))
    assert [(v.code, v.path) for v in info.value.violations] == [("reserved_type", "type")]
    # The platform's own sealed record of the same action is its stored form, and is read.
    assert decode_record(stored(raw)).type == "alert.resolved"
