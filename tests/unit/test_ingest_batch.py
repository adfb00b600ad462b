"""Pure ingest pieces: body parsing, per-item results and records, quota buckets, telemetry text."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.api_errors import ApiError
from kernel.customer_key import customer_key
from kernel.partitioning import touchpoint_key
from kernel.ports import Outgoing, PublishStatus
from kernel.telemetry import Telemetry
from schemas.json_safety import MAX_DEPTH, json_violations
from schemas.validate import decode
from services.ingest.batch import (
    ItemResult,
    ItemStatus,
    Unparseable,
    check_event,
    complete,
    prepare,
)
from services.ingest.body import (
    JSON,
    NDJSON,
    MalformedJson,
    media_type,
    parse_json,
    parse_submission,
)
from services.ingest.quota import QuotaLimiter
from tests.events import BUCKET_KEY

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
LIMIT = 64 * 1024


def raw_event(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "source_id": "genesys",
        "channel": "phone",
        "type": "call.ended",
        "customer": {"email": "Ada@Example.com"},
        "occurred_at": "2026-01-31T11:00:00Z",
        "payload": {"agent": "ada", "talk_s": 120},
    }
    raw.update(overrides)
    return raw


def custom(payload: Any) -> dict[str, Any]:
    return raw_event(type="custom.crm.note_added", payload=payload)


def check(raw: Any, max_event_bytes: int = LIMIT) -> ItemResult | Outgoing:
    """The item's rejection, or the record it would be published as."""
    checked = check_event(0, raw, "acme", NOW, max_event_bytes, BUCKET_KEY)
    return checked if isinstance(checked, ItemResult) else checked[1]


def rejected_paths(raw: Any) -> list[tuple[str, str]]:
    result = check(raw)
    assert isinstance(result, ItemResult), "expected a rejection"
    assert result.status is ItemStatus.rejected
    return [(v.code, v.path) for v in result.errors]


# --- records ------------------------------------------------------------------------------------
def test_valid_item_becomes_a_record_keyed_by_tenant_and_customer() -> None:
    raw = raw_event()
    out = check(raw)
    assert isinstance(out, Outgoing)
    event = decode(out.record.value)
    assert (out.tenant_id, out.event_id) == ("acme", raw["event_id"])
    assert event.tenant_id == "acme" and event.received_at == NOW
    assert out.record.key == touchpoint_key(BUCKET_KEY, "acme", customer_key(event.customer))
    assert out.record.key.startswith(b"acme/") and b"ada" not in out.record.key
    assert out.record.headers == (
        ("tenant_id", b"acme"),
        ("source_id", b"genesys"),
        ("schema_version", b"1"),
    )


def test_prepare_splits_items_and_complete_merges_statuses_in_order() -> None:
    valid, twin = raw_event(), raw_event()
    items = [valid, {"nope": 1}, unparseable_line(), twin, {**valid, "payload": {"agent": "bob"}}]
    prepared = prepare(items, "acme", NOW, LIMIT, bucket_key=BUCKET_KEY)
    assert prepared.indexes == [0, 3, 4]
    assert [r.index for r in prepared.rejected] == [1, 2]
    statuses = [PublishStatus.accepted, PublishStatus.duplicate, PublishStatus.conflict]
    outcome = complete(prepared, statuses)
    body = outcome.as_dict()
    assert [r["status"] for r in body["results"]] == [
        "accepted", "rejected", "rejected", "duplicate", "conflict",
    ]  # fmt: skip
    assert (body["submitted"], body["accepted"], body["duplicates"]) == (5, 1, 1)
    assert (body["conflicts"], body["rejected"]) == (1, 2)
    assert body["results"][4]["errors"][0]["code"] == "conflict"
    assert body["results"][2]["errors"][0]["code"] == "malformed_json"
    assert not outcome.all_rejected


def unparseable_line() -> Unparseable:
    return parse_submission(NDJSON, b"{oops", 10).items[0]  # type: ignore[no-any-return]


def test_complete_refuses_a_status_count_that_does_not_match() -> None:
    prepared = prepare([raw_event()], "acme", NOW, LIMIT, bucket_key=BUCKET_KEY)
    with pytest.raises(ValueError):
        complete(prepared, [])


def test_rejected_item_names_its_event_id_when_it_is_a_uuid() -> None:
    event_id = str(uuid.uuid4()).upper()
    result = check(raw_event(event_id=event_id, channel="fax"))
    assert isinstance(result, ItemResult)
    assert result.event_id == event_id.lower()
    assert check({"event_id": "x" * 1000}).event_id is None  # type: ignore[union-attr]


# --- size ---------------------------------------------------------------------------------------
def test_event_over_the_per_event_limit_is_rejected_with_the_limit() -> None:
    raw = custom({"blob": "x" * 2000})
    result = check(raw, max_event_bytes=1024)
    assert isinstance(result, ItemResult)
    assert [(v.code, v.path) for v in result.errors] == [("event_too_large", "$")]
    assert "1024" in result.errors[0].message
    assert result.rejection_code == "event_too_large"


def test_whitespace_does_not_count_towards_the_event_size() -> None:
    raw = custom({"blob": "x" * 600})
    compact = len(json.dumps(raw, separators=(",", ":")))
    pretty = json.loads(json.dumps(raw, indent=8))
    assert isinstance(check(pretty, max_event_bytes=compact), Outgoing)
    assert isinstance(check(raw, max_event_bytes=compact - 1), ItemResult)


# --- values no field may hold -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"note": "a\x00b"}, [("string_nul", "payload.note")]),
        ({"notes": ["ok", "\ud800"]}, [("string_surrogate", "payload.notes.1")]),
        ({"k\x00": 1}, [("string_nul", "payload.k\x00")]),
        ({"big": 2**64}, [("number_out_of_range", "payload.big")]),
        ({"small": -(2**63) - 1}, [("number_out_of_range", "payload.small")]),
        ({"huge": float("inf")}, [("number_out_of_range", "payload.huge")]),
    ],
)
def test_unstorable_values_in_free_form_payloads_are_rejected_at_their_path(
    payload: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert rejected_paths(custom(payload)) == expected


def test_unstorable_values_are_reported_with_the_other_violations() -> None:
    raw = custom({"note": "\ud800"}) | {"channel": "fax"}
    assert sorted(rejected_paths(raw)) == [
        ("enum", "channel"),
        ("string_surrogate", "payload.note"),
    ]


def test_64_bit_integers_are_kept() -> None:
    out = check(custom({"max": 2**64 - 1, "min": -(2**63)}))
    assert isinstance(out, Outgoing)
    assert decode(out.record.value).payload == {"max": 2**64 - 1, "min": -(2**63)}


def test_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = {"d": deep}
    assert rejected_paths(custom(deep)) == [("nested_too_deeply", "payload" + ".d" * MAX_DEPTH)]
    assert check(custom(deep)).rejection_code == "nested_too_deeply"  # type: ignore[union-attr]


def test_reported_problems_per_item_are_capped() -> None:
    assert len(json_violations({"notes": ["\x00"] * 500})) == 50


# --- hostile inputs that used to escape `accept` (see the report for the schemas fixes) ---------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"channel": ["phone"]}, [("enum", "channel")]),
        ({"channel": {"web": 1}}, [("enum", "channel")]),
        (
            {"occurred_at": "0001-01-01T00:00:00Z", "sent_at": "9999-12-31T00:00:00Z"},
            [("absurd_timestamp", "sent_at")],
        ),
        (
            {
                "type": "survey.answered",
                "channel": "survey",
                "payload": {"kind": ["nps"], "score": 1},
            },
            [("literal_error", "payload.kind")],
        ),
    ],
)
def test_inputs_that_make_validation_raise_are_rejected_not_crashed(
    overrides: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert rejected_paths(raw_event(**overrides)) == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "event_id",
    "channel",
    "type",
    "customer",
    "occurred_at",
    "sent_at",
    "payload",
    "touchpoint",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(
        json_values
        | st.builds(lambda f, v: raw_event(**{f: v}), st.sampled_from(FIELDS), json_values)
        | st.builds(lambda v: custom({"v": v}), json_values)
        | st.builds(
            lambda k, v: raw_event(
                type="survey.answered", channel="survey", payload={"kind": "nps", "score": 5, k: v}
            ),
            st.sampled_from(["kind", "score", "scale", "comment", "attributes"]),
            json_values,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_json_items_give_a_result_each_and_never_raise(items: list[Any]) -> None:
    prepared = prepare(items, "acme", NOW, LIMIT, bucket_key=BUCKET_KEY)
    outcome = complete(prepared, [PublishStatus.accepted] * len(prepared.outgoing))
    body = outcome.as_dict()
    assert [r["index"] for r in body["results"]] == list(range(len(items)))
    assert body["accepted"] + body["rejected"] == len(items)
    json.dumps(body).encode("utf-8")  # a response body is always valid UTF-8
    for out in prepared.outgoing:
        decode(out.record.value)


# --- body ---------------------------------------------------------------------------------------
def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(MalformedJson, match="line 2, column 7"):
        parse_json(b'{"a": 1,\n "b": }')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "line 1, column 1"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b"[Infinity]", "Infinity is not valid JSON"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b"1" * 41, "longer than 40 digits"),
        (b'"\xff"', "not valid UTF-8 at byte 1"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": 1} {"b": 2}', "Extra data"),
    ],
)
def test_strict_json(data: bytes, message: str) -> None:
    with pytest.raises(MalformedJson, match=message):
        parse_json(data)


def test_escaped_lone_surrogates_survive_parsing_for_validation_to_name() -> None:
    assert parse_json(b'{"t": "\\ud800"}') == {"t": "\ud800"}


@pytest.mark.parametrize(
    ("content_type", "encoding", "expected"),
    [
        ("application/json", None, JSON),
        ("Application/JSON; charset=UTF-8", None, JSON),
        ('application/x-ndjson; charset="utf-8"', "identity", NDJSON),
    ],
)
def test_supported_media_types(content_type: str, encoding: str | None, expected: str) -> None:
    assert media_type(content_type, encoding) == expected


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        (None, None),
        ("text/plain", None),
        ("application/x-www-form-urlencoded", None),
        ("application/json; charset=latin-1", None),
        ("application/json", "gzip"),
    ],
)
def test_unsupported_media_types_are_415(content_type: str | None, encoding: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        media_type(content_type, encoding)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")
    assert caught.value.headers["Accept-Post"] == "application/json, application/x-ndjson"


def test_json_body_is_one_event_or_a_batch() -> None:
    single = parse_submission(JSON, b'{"type": "x"}', 10)
    batch = parse_submission(JSON, b'{"events": [{"type": "x"}, 1]}', 10)
    array = parse_submission(JSON, b'[{"type": "x"}]', 10)
    assert (single.single, single.items) == (True, [{"type": "x"}])
    assert (batch.single, batch.items) == (False, [{"type": "x"}, 1])
    # An array is one (invalid) event: validation rejects it as not an object.
    assert (array.single, array.items) == (True, [[{"type": "x"}]])


def test_ndjson_skips_blank_lines_and_keeps_bad_lines_as_items() -> None:
    submission = parse_submission(NDJSON, b'{"a": 1}\r\n\n  \n{bad\n[1]\n', 10)
    assert submission.single is False
    assert submission.items[0] == {"a": 1} and submission.items[2] == [1]
    bad = submission.items[1]
    assert isinstance(bad, Unparseable)
    assert bad.violation.code == "malformed_json" and "line 4" in bad.violation.message


@pytest.mark.parametrize(
    ("media", "data", "status", "code"),
    [
        (JSON, b'{"events": [], "source": "x"}', 422, "invalid_batch"),
        (JSON, b'{"events": {"a": 1}}', 422, "invalid_batch"),
        (JSON, b'{"events": []}', 422, "empty_batch"),
        (NDJSON, b"\n \n", 422, "empty_batch"),
        (JSON, b'{"events": [1, 2, 3, 4]}', 413, "too_many_events"),
        (NDJSON, b"1\n2\n3\n4\n", 413, "too_many_events"),
        (JSON, b"{", 400, "malformed_json"),
    ],
)
def test_bodies_that_fail_as_a_whole(media: str, data: bytes, status: int, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_submission(media, data, 3)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_batch_wrapper_reports_every_problem() -> None:
    with pytest.raises(ApiError) as caught:
        parse_submission(JSON, b'{"events": 5, "tenant_id": "x"}', 3)
    assert [(d["code"], d["path"]) for d in caught.value.details] == [
        ("extra_forbidden", "tenant_id"),
        ("list_type", "events"),
    ]


# --- quota --------------------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_bucket_grants_the_burst_then_refills_at_the_rate() -> None:
    time = FakeTime()
    limiter = QuotaLimiter(rate_per_s=10, burst=50, now=time)
    assert limiter.take("k", 50) == 0
    assert limiter.take("k", 5) == pytest.approx(0.5)
    time.t += 0.5
    assert limiter.take("k", 5) == 0
    time.t += 1000
    assert limiter.take("k", 51) == pytest.approx(0.1)  # never more than the burst


def test_a_refused_request_draws_nothing_and_keys_are_independent() -> None:
    time = FakeTime()
    limiter = QuotaLimiter(rate_per_s=1, burst=10, now=time)
    limiter.take("k", 8)
    assert limiter.take("k", 5) == pytest.approx(3)
    assert limiter.take("k", 2) == 0
    assert limiter.take("other", 10) == 0


def test_charge_answers_429_with_retry_after_rounded_up() -> None:
    limiter = QuotaLimiter(rate_per_s=4, burst=10, now=FakeTime())
    limiter.charge("k", 10)
    with pytest.raises(ApiError) as caught:
        limiter.charge("k", 9)
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert caught.value.headers == {"Retry-After": "3"}


def test_charge_larger_than_the_burst_is_413_since_waiting_cannot_help() -> None:
    limiter = QuotaLimiter(rate_per_s=4, burst=10, now=FakeTime())
    with pytest.raises(ApiError) as caught:
        limiter.charge("k", 11)
    assert (caught.value.status, caught.value.code) == (413, "exceeds_quota_burst")


# --- telemetry ----------------------------------------------------------------------------------
def test_telemetry_renders_prometheus_text() -> None:
    telemetry = Telemetry()
    telemetry.inc("cem_ingest_accepted_total", 3)
    telemetry.inc("cem_ingest_rejected_total", code="malformed_json")
    telemetry.inc("cem_ingest_rejected_total", code='we"ird\\')
    telemetry.observe("cem_ingest_request_duration_seconds", 0.25, route="/v1/events", status="202")
    telemetry.observe("cem_ingest_request_duration_seconds", 0.5, route="/v1/events", status="202")
    lines = telemetry.render().splitlines()
    assert "# TYPE cem_ingest_accepted_total counter" in lines
    assert "cem_ingest_accepted_total 3" in lines
    assert "cem_ingest_duplicates_total 0" in lines
    assert 'cem_ingest_rejected_total{code="malformed_json"} 1' in lines
    assert 'cem_ingest_rejected_total{code="we\\"ird\\\\"} 1' in lines
    assert "# TYPE cem_ingest_request_duration_seconds summary" in lines
    summary = 'cem_ingest_request_duration_seconds_{}{{route="/v1/events",status="202"}}'
    assert f"{summary.format('sum')} 0.75" in lines
    assert f"{summary.format('count')} 2" in lines
