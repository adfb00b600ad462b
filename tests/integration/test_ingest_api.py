"""POST /v1/events end to end over HTTP, against the in-memory log, publisher and key store.

Each test names the RELIABILITY case it shows (B01–B07, B10–B14, F01, F12).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from kernel import api_errors
from kernel.clock import FixedClock
from kernel.partitioning import touchpoint_key
from kernel.ports import (
    TOUCHPOINTS_TOPIC,
    Consumed,
    LogUnavailable,
    Outgoing,
    PublishStatus,
    StorageFull,
)
from kernel.settings import IngestSettings
from kernel.telemetry import telemetry_of
from schemas.envelope import Event
from schemas.families import FAMILIES, PLATFORM_TYPES
from schemas.validate import decode
from services.ingest.app import create_app
from services.ingest.backlog import BacklogGate, Reading
from services.ingest.quota import IngestQuota, QuotaLimiter
from services.ingest.router import router
from tests.events import BUCKET_KEY
from tests.events import survey_answer as event

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
ONE_MIB = 1024 * 1024


@dataclass
class FlakyPublisher:
    """The in-memory publisher, with a switchable fault in front of it and a call log."""

    inner: MemoryPublisher
    fault: Exception | None = None
    gate: threading.Event | None = None  # when set, publishing waits until the gate opens
    calls: list[int] = field(default_factory=list)

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        self.calls.append(len(events))
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.fault is not None:
            raise self.fault
        return self.inner.publish(events)


@dataclass
class Ingest:
    app: FastAPI
    client: TestClient
    log: MemoryLog
    publisher: FlakyPublisher
    keys: MemoryKeyStore
    secret: str

    def post(self, body: Any, secret: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {secret or self.secret}", **kwargs.pop("headers", {})}
        if isinstance(body, bytes):
            return self.client.post("/v1/events", content=body, headers=headers, **kwargs)
        return self.client.post("/v1/events", json=body, headers=headers, **kwargs)

    def post_raw(self, body: bytes, content_type: str, **kwargs: Any) -> Any:
        return self.post(body, headers={"Content-Type": content_type}, **kwargs)

    def stored(self) -> list[Consumed]:
        """Every record on the topic (a fresh consumer group reads from the start)."""
        return self.log.poll(TOUCHPOINTS_TOPIC, uuid.uuid4().hex, 100_000, 0)

    def stored_events(self) -> list[Event]:
        return [decode(r.value) for r in self.stored()]

    def key(self, role: str, tenant: str = "acme") -> str:
        return self.keys.create(tenant, role)[1]


def make_ingest(
    settings: IngestSettings | None = None, quota: QuotaLimiter | None = None
) -> Ingest:
    log = MemoryLog(partitions=4)
    publisher = FlakyPublisher(MemoryPublisher(log))
    keys = MemoryKeyStore()
    _, secret = keys.create("acme", "ingest", "test")
    app = create_app(
        publisher,
        keys,
        settings or IngestSettings(),
        FixedClock(NOW),
        quota=quota,
        bucket_key=BUCKET_KEY,
    )
    return Ingest(app, TestClient(app), log, publisher, keys, secret)


@pytest.fixture
def ingest() -> Ingest:
    return make_ingest()


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


def paths(response: Any) -> set[str]:
    return {d["path"] for d in error_of(response)["details"]}


# --- happy path ---------------------------------------------------------------------------------
def test_single_event_is_acknowledged_after_the_log_stored_it(ingest: Ingest) -> None:
    raw = event()
    response = ingest.post(raw)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "event_id": raw["event_id"]}
    [record] = ingest.stored()
    stored = decode(record.value)
    assert (stored.tenant_id, str(stored.event_id), stored.received_at) == (
        "acme",
        raw["event_id"],
        NOW,
    )
    assert record.key == touchpoint_key(
        BUCKET_KEY, "acme", "cust-1"
    )  # a bucket of the key, not the key
    assert dict(record.headers) == {
        "tenant_id": b"acme",
        "source_id": b"genesys",
        "schema_version": b"1",
    }


def test_a_batch_is_published_in_one_call(ingest: Ingest) -> None:
    events = [event(customer={"customer_id": f"c{i}"}) for i in range(5)]
    response = ingest.post({"events": events})
    assert response.status_code == 200
    assert response.json()["accepted"] == 5
    assert ingest.publisher.calls == [5]
    assert len(ingest.stored()) == 5


# --- B01 ----------------------------------------------------------------------------------------
def test_b01_malformed_json_is_400_with_line_and_column(ingest: Ingest) -> None:
    response = ingest.post_raw(b'{"events": [\n  {"type": }\n]}', "application/json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "malformed_json"
    assert "line 2, column 12" in error["message"]
    assert ingest.stored() == [] and ingest.publisher.calls == []


def test_a_bulk_request_the_gate_refused_draws_nothing_from_the_quota() -> None:
    done = itertools.count()
    pipeline = {"waiting": 1_000}

    def moving() -> Reading:
        return filing(pipeline["waiting"], next(done))

    ingest = behind(make_ingest(quota=slow_quota(20)), moving, backlog_max_wait_s=0.05)
    batch = {"events": [event() for _ in range(20)]}
    for _ in range(2):
        assert error_of(ingest.post(batch))["code"] == "pipeline_behind"
    pipeline["waiting"] = 0
    response = ingest.post(batch)  # the burst of 20 is still whole
    assert response.status_code == 200, response.text
    again = ingest.post({"events": [event() for _ in range(20)]})
    assert error_of(again)["code"] == "rate_limited"  # now it is not


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/xml"},
        {"Content-Type": "application/json; charset=utf-16"},
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ],
)
def test_b01_unsupported_content_type_is_415(ingest: Ingest, headers: dict[str, str]) -> None:
    response = ingest.post(json.dumps(event()).encode(), headers=headers)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert "application/x-ndjson" in response.headers["Accept-Post"]
    assert ingest.stored() == []


def test_b01_missing_content_type_is_415(ingest: Ingest) -> None:
    response = ingest.client.post(
        "/v1/events", content=b"{}", headers={"Authorization": f"Bearer {ingest.secret}"}
    )
    assert response.status_code == 415


# --- B02 / B03 ----------------------------------------------------------------------------------
def test_b02_invalid_event_lists_every_violated_path(ingest: Ingest) -> None:
    raw = event(channel="fax", customer={}, payload={"kind": "csat", "score": 11})
    response = ingest.post(raw)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_event"
    assert paths(response) == {"channel", "customer", "payload.score"}
    assert all(set(d) == {"code", "message", "path"} for d in error["details"])
    # One line that says what to fix: the first violation, named, and how many more.
    first = error["details"][0]
    assert error["message"] == (
        f"the event has 3 violations: {first['path']}: {first['message']} (and 2 more)"
    )
    assert ingest.stored() == []


@pytest.mark.parametrize(
    ("overrides", "path", "code"),
    [
        ({"tenant_id": "globex"}, "tenant_id", "server_owned"),
        ({"received_at": "2026-01-31T11:00:00Z"}, "received_at", "server_owned"),
        ({"derived_at": "2026-01-31T11:00:00Z"}, "derived_at", "server_owned"),
        ({"priority": "high"}, "priority", "extra_forbidden"),
    ],
)
def test_b03_server_owned_or_unknown_fields_are_422(
    ingest: Ingest, overrides: dict[str, Any], path: str, code: str
) -> None:
    response = ingest.post(event(**overrides))
    assert response.status_code == 422
    assert [(d["code"], d["path"]) for d in error_of(response)["details"]] == [(code, path)]
    assert ingest.stored() == []


def test_b03_tenant_comes_only_from_the_credential(ingest: Ingest) -> None:
    globex = ingest.key("ingest", tenant="globex")
    raw = event()
    assert ingest.post(raw, secret=globex).status_code == 202
    assert ingest.post(raw).json()["status"] == "accepted"  # another tenant's id space
    assert sorted(e.tenant_id for e in ingest.stored_events()) == ["acme", "globex"]


# --- B04 ----------------------------------------------------------------------------------------
def test_b04_body_over_the_limit_is_413_naming_it(ingest: Ingest) -> None:
    events = [
        event(payload={"kind": "csat", "score": 4, "comment": "x" * 10_000}) for _ in range(110)
    ]
    response = ingest.post({"events": events})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert "1048576 bytes" in error["message"]
    assert ingest.stored() == [] and ingest.publisher.calls == []


def test_b04_declared_length_over_the_limit_is_refused_before_reading(ingest: Ingest) -> None:
    response = ingest.post(
        b"{}", headers={"Content-Type": "application/json", "Content-Length": str(ONE_MIB + 1)}
    )
    assert response.status_code == 413


def asgi_post(
    app: FastAPI, headers: dict[str, str], chunks: Iterator[bytes | None]
) -> tuple[int, int]:
    """POST straight through ASGI, as a server streams a body; returns (status, chunks read).

    The body comes from `chunks` (None: the client disconnects) only as fast as the app asks for
    it, so the count shows where the app stopped reading.
    """
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        chunk = next(chunks)
        if chunk is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/events", "raw_path": b"/v1/events", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], pulled


@pytest.mark.parametrize(
    "framing",
    [{"Transfer-Encoding": "chunked"}, {"Content-Length": "100"}],
    ids=["chunked", "lying-content-length"],
)
def test_b04_reading_stops_at_the_limit(ingest: Ingest, framing: dict[str, str]) -> None:
    endless = itertools.repeat(b" " * 65_536)  # would never end if the app kept reading
    headers = {"Authorization": f"Bearer {ingest.secret}", "Content-Type": "application/json"}
    status, pulled = asgi_post(ingest.app, {**headers, **framing}, endless)
    assert status == 413
    assert pulled <= ONE_MIB // 65_536 + 1
    assert ingest.stored() == []


def test_client_gone_mid_body_publishes_nothing_and_is_not_a_server_error(ingest: Ingest) -> None:
    headers = {"Authorization": f"Bearer {ingest.secret}", "Content-Type": "application/json"}
    status, _ = asgi_post(ingest.app, headers, iter([b'{"events": [', None]))
    assert status == 400
    assert ingest.stored() == [] and ingest.publisher.calls == []


def test_b04_single_event_over_the_event_limit_is_413(ingest: Ingest) -> None:
    raw = event(type="custom.crm.note", channel="other", payload={"note": "x" * 70_000})
    response = ingest.post(raw)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large" and "65536" in error["message"]
    assert ingest.stored() == []


def test_b04_oversized_event_in_a_batch_is_a_rejected_item(ingest: Ingest) -> None:
    big = event(type="custom.crm.note", channel="other", payload={"note": "x" * 70_000})
    response = ingest.post({"events": [event(), big]})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][1]["errors"][0]["code"] == "event_too_large"
    assert [str(e.event_id) for e in ingest.stored_events()] == [body["results"][0]["event_id"]]


ACTION_FIELDS: dict[str, dict[str, str]] = {
    "alert.assigned": {"assignee": "ana"},
    "alert.acknowledged": {},
    "alert.resolved": {"note": "refund sent"},
}
ERASURE_PAYLOAD = {"erasure_reason": "GDPR request", "actor": "x"}


@pytest.mark.parametrize("event_type", sorted(PLATFORM_TYPES))
def test_a_producer_cannot_send_the_platforms_own_alert_actions_or_erasures(
    ingest: Ingest, event_type: str
) -> None:
    # Such an event names where it is filed (`cem:customer:<id>`) and skips identity: only the
    # dashboard's alert actions and an admin's erasure may write it, never a channel system.
    payload = (
        ERASURE_PAYLOAD
        if event_type == "customer.erased"
        else {"alert_id": "a-1", "actor": "x"} | ACTION_FIELDS[event_type]
    )
    action = event(
        type=event_type,
        channel="other",
        touchpoint="alert_queue",
        customer={"customer_id": "cem:customer:c_someone"},
        payload=payload,
    )
    response = ingest.post({"events": [event(), action]})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    [error] = body["results"][1]["errors"]
    assert (error["code"], error["path"]) == ("reserved_type", "type")
    assert event_type in error["message"]
    assert [str(e.event_id) for e in ingest.stored_events()] == [body["results"][0]["event_id"]]


def test_b04_batch_over_the_event_count_is_413_naming_the_limit() -> None:
    ingest = make_ingest(IngestSettings(max_batch_events=3))
    response = ingest.post({"events": [event() for _ in range(4)]})
    assert response.status_code == 413
    assert "at most 3 events" in error_of(response)["message"]
    ndjson = b"\n".join(json.dumps(event()).encode() for _ in range(4))
    assert ingest.post_raw(ndjson, "application/x-ndjson").status_code == 413
    assert ingest.stored() == []


# --- B05 ----------------------------------------------------------------------------------------
def test_b05_mixed_batch_reports_each_item_and_stores_the_valid_once(ingest: Ingest) -> None:
    good, fax = [event(), event()], event(channel="fax")
    batch = {"events": [good[0], fax, good[1], "not an event"]}
    response = ingest.post(batch)
    assert response.status_code == 200
    body = response.json()
    assert (body["submitted"], body["accepted"], body["rejected"]) == (4, 2, 2)
    assert (body["duplicates"], body["conflicts"]) == (0, 0)
    assert [(r["index"], r["status"]) for r in body["results"]] == [
        (0, "accepted"), (1, "rejected"), (2, "accepted"), (3, "rejected"),
    ]  # fmt: skip
    assert [(e["code"], e["path"]) for e in body["results"][1]["errors"]] == [("enum", "channel")]
    assert body["results"][1]["event_id"] == fax["event_id"]
    again = ingest.post(batch).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 2, 2)
    assert sorted(str(e.event_id) for e in ingest.stored_events()) == sorted(
        g["event_id"] for g in good
    )


def test_b05_ndjson_bad_line_is_a_rejected_item(ingest: Ingest) -> None:
    lines = [json.dumps(event()), "{not json", json.dumps(event())]
    response = ingest.post_raw("\n".join(lines).encode() + b"\n", "application/x-ndjson")
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1]["errors"][0]["code"] == "malformed_json"
    assert "line 2" in body["results"][1]["errors"][0]["message"]
    assert len(ingest.stored()) == 2


def test_b05_all_rejected_is_422_with_results_and_the_error_shape(ingest: Ingest) -> None:
    response = ingest.post({"events": [event(channel="fax"), {"type": 1}]})
    assert response.status_code == 422
    body = response.json()
    assert (body["submitted"], body["rejected"], body["accepted"]) == (2, 2, 0)
    assert body["error"]["code"] == "all_rejected"
    assert {d["index"] for d in body["error"]["details"]} == {0, 1}
    assert ingest.publisher.calls == []


def test_b05_batch_envelope_must_be_exactly_events(ingest: Ingest) -> None:
    response = ingest.post({"events": [event()], "tenant_id": "globex"})
    assert response.status_code == 422
    assert paths(response) == {"tenant_id"}
    assert ingest.stored() == []


# --- B06 / B07 ----------------------------------------------------------------------------------
def test_b06_same_event_again_is_a_duplicate_stored_once(ingest: Ingest) -> None:
    raw = event()
    ingest.post(raw)
    response = ingest.post(raw)
    assert response.status_code == 202
    assert response.json() == {"status": "duplicate", "event_id": raw["event_id"]}
    assert len(ingest.stored()) == 1


def test_b07_same_id_different_payload_is_a_recorded_conflict(ingest: Ingest) -> None:
    raw = event()
    ingest.post(raw)
    response = ingest.post({**raw, "payload": {"kind": "csat", "score": 1}})
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["details"][0]["path"] == "event_id"
    [stored] = ingest.stored_events()
    assert stored.payload["score"] == 4  # original untouched
    [conflict] = ingest.publisher.inner.conflicts("acme")
    assert conflict["event_id"] == raw["event_id"]


def test_b07_conflict_inside_a_batch_is_reported_per_item(ingest: Ingest) -> None:
    raw = event()
    body = ingest.post({"events": [raw, {**raw, "payload": {"kind": "csat", "score": 2}}]}).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "conflict"]
    assert body["conflicts"] == 1


# --- B10 / B11 ----------------------------------------------------------------------------------
def test_b10_device_clock_skew_is_corrected_and_flagged(ingest: Ingest) -> None:
    ahead = NOW + timedelta(hours=5)
    raw = event(occurred_at=(ahead - timedelta(seconds=30)).isoformat(), sent_at=ahead.isoformat())
    assert ingest.post(raw).status_code == 202
    [stored] = ingest.stored_events()
    assert stored.derived_at == NOW - timedelta(seconds=30)
    assert stored.clock_corrected


def test_b11_naive_timestamp_is_422_at_its_path(ingest: Ingest) -> None:
    response = ingest.post(event(occurred_at="2026-01-31T11:00:00"))
    assert response.status_code == 422
    assert paths(response) == {"occurred_at"}


def test_b11_seconds_and_milliseconds_store_the_same_instant(ingest: Ingest) -> None:
    seconds = int((NOW - timedelta(hours=1)).timestamp())
    ingest.post(event(occurred_at=seconds))
    ingest.post(event(occurred_at=seconds * 1000))
    assert {e.derived_at for e in ingest.stored_events()} == {NOW - timedelta(hours=1)}


@pytest.mark.parametrize("value", [10**15, -(10**12), "0001-01-01T00:00:00Z", 1.5e300])
def test_b11_absurd_timestamps_are_422(ingest: Ingest, value: Any) -> None:
    response = ingest.post(event(occurred_at=value))
    assert response.status_code == 422
    assert paths(response) == {"occurred_at"}


@pytest.mark.parametrize("path", ["occurred_at", "sent_at"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59"])
def test_b11_an_offset_past_year_1_or_9999_is_a_per_item_422_and_the_rest_is_kept(
    ingest: Ingest, path: str, value: str
) -> None:
    good, bad = event(), event(**{path: value})
    body = ingest.post({"events": [good, bad]}).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert {e["path"] for e in body["results"][1]["errors"]} == {path}
    lines = [json.dumps(event()), json.dumps(event(**{path: value}))]
    ndjson = ingest.post_raw("\n".join(lines).encode(), "application/x-ndjson").json()
    assert (ndjson["accepted"], ndjson["rejected"]) == (1, 1)
    assert len(ingest.stored()) == 2


def test_b11_unreconcilable_sent_at_is_422_not_500(ingest: Ingest) -> None:
    raw = event(occurred_at="0001-01-01T00:00:00Z", sent_at="9999-12-31T00:00:00Z")
    response = ingest.post(raw)
    assert response.status_code == 422
    assert paths(response) == {"sent_at"}


# --- B12 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("customer", "path"),
    [
        ({"customer_id": "cust-1\n"}, "customer.customer_id"),
        ({"customer_id": "a\tb"}, "customer.customer_id"),
        ({"anonymous_id": "anon\r\nSet-Cookie: x"}, "customer.anonymous_id"),
        ({"external_ids": {"crm": "42\u0085"}}, "customer.external_ids.crm"),
    ],
)
def test_b12_an_id_with_control_characters_is_422_at_its_path(
    ingest: Ingest, customer: dict[str, Any], path: str
) -> None:
    response = ingest.post(event(customer=customer))
    assert response.status_code == 422
    assert path in paths(response)
    assert ingest.stored() == []


def test_b12_an_email_with_control_characters_is_ignored_with_a_note_not_stored(
    ingest: Ingest,
) -> None:
    # An email is an identifier, not an id: one identity cannot read is dropped from resolution
    # and the touchpoint kept (RELIABILITY D01), with a note naming it.
    response = ingest.post(event(customer={"customer_id": "c-1", "email": "ana\u0001@shop.es"}))
    assert response.status_code == 202, response.text
    [note] = response.json()["notes"]
    assert (note["code"], note["path"]) == ("identifier_ignored", "customer.email")


def test_b12_free_text_may_still_hold_line_breaks(ingest: Ingest) -> None:
    raw = event(channel="chat", type="message.received", payload={"text": "hola\nqué tal"})
    assert ingest.post(raw).status_code == 202


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'"customer": {"customer_id": "a\\u0000b"}', "customer.customer_id"),
        (b'"customer": {"customer_id": "a\\ud800b"}', "customer.customer_id"),
        (b'"customer": {"customer_id": "c"}, "correlation_id": "\\udfff"', "correlation_id"),
    ],
)
def test_b12_nul_and_lone_surrogates_are_422_naming_the_path(
    ingest: Ingest, body: bytes, path: str
) -> None:
    raw = event()
    del raw["customer"]
    text = json.dumps(raw).encode()[:-1] + b", " + body + b"}"
    response = ingest.post_raw(text, "application/json")
    assert response.status_code == 422
    assert paths(response) == {path}


def test_b12_lone_surrogate_in_a_custom_payload_key_is_422(ingest: Ingest) -> None:
    raw = json.dumps(event(type="custom.crm.note", channel="other", payload={"KEY": 1}))
    response = ingest.post_raw(raw.replace("KEY", "\\ud800").encode(), "application/json")
    assert response.status_code == 422
    assert "payload.\\ud800" in paths(response)  # pydantic also reports the whole `payload`
    response.content.decode("utf-8")  # the echoed path is valid UTF-8


def test_b12_rtl_emoji_and_huge_strings_round_trip_byte_identical(ingest: Ingest) -> None:
    comment = "\u200f\u05e9\u05dc\u05d5\u05dd \u202eRTL\u202c 🧑🏾‍🚀🇧🇷 Z\u0351\u0354" + "€" * 15_000
    raw = event(payload={"kind": "nps", "score": 10, "comment": comment})
    body = json.dumps(raw, ensure_ascii=False).encode("utf-8")
    assert ingest.post_raw(body, "application/json; charset=utf-8").status_code == 202
    [record] = ingest.stored()
    assert comment.encode("utf-8") in record.value
    assert decode(record.value).payload["comment"] == comment


# --- B13 ----------------------------------------------------------------------------------------
def test_b13_missing_key_is_401(ingest: Ingest) -> None:
    response = ingest.client.post("/v1/events", json=event())
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("secret", ["wrong", "cem_0123456789abcdef_" + "x" * 43, "ŝ" * 10])
def test_b13_wrong_key_is_401(ingest: Ingest, secret: str) -> None:
    response = ingest.client.post(
        "/v1/events", json=event(), headers={"Authorization": f"Bearer {secret}".encode()}
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_b13_revoked_key_is_401(ingest: Ingest) -> None:
    key_id, secret = ingest.keys.create("acme", "ingest")
    assert ingest.post(event(), secret=secret).status_code == 202
    ingest.keys.revoke(key_id)
    response = ingest.post(event(), secret=secret)
    assert response.status_code == 401
    assert len(ingest.stored()) == 1


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_b13_keys_without_the_ingest_role_are_403(ingest: Ingest, role: str) -> None:
    response = ingest.post(event(), secret=ingest.key(role))
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert ingest.stored() == []


def test_b13_auth_is_checked_before_the_body_is_read(ingest: Ingest) -> None:
    response = ingest.client.post(
        "/v1/events", content=b"{", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 401


# --- B14 ----------------------------------------------------------------------------------------
def slow_quota(burst: int) -> QuotaLimiter:
    return QuotaLimiter.from_settings(IngestQuota(quota_rate_per_s=0.01, quota_burst=burst))


def test_b14_over_quota_is_429_with_retry_after_and_nothing_published() -> None:
    ingest = make_ingest(quota=slow_quota(3))
    assert ingest.post({"events": [event(), event()]}).status_code == 200
    response = ingest.post({"events": [event(), event()]})  # events count, not requests
    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert ingest.post(event()).status_code == 202  # the refused request drew nothing
    assert ingest.post(event()).status_code == 429
    assert len(ingest.stored()) == 3


def test_b14_quota_is_per_key() -> None:
    ingest = make_ingest(quota=slow_quota(1))
    assert ingest.post(event()).status_code == 202
    assert ingest.post(event()).status_code == 429
    assert ingest.post(event(), secret=ingest.key("ingest")).status_code == 202


def test_b14_batch_larger_than_the_burst_is_413() -> None:
    ingest = make_ingest(quota=slow_quota(2))
    response = ingest.post({"events": [event(), event(), event()]})
    assert response.status_code == 413
    assert error_of(response)["code"] == "exceeds_quota_burst"


def test_b14_quota_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEM_INGEST_QUOTA_BURST", "1")
    monkeypatch.setenv("CEM_INGEST_QUOTA_RATE_PER_S", "0.001")
    ingest = make_ingest()
    assert ingest.post(event()).status_code == 202
    assert ingest.post(event()).status_code == 429


# --- bulk requests wait for the pipeline (services/ingest/backlog.py) ----------------------------
class Pipeline:
    """Backlog readings in turn (the last one again once they run out), counted."""

    def __init__(self, *readings: Reading) -> None:
        self.left, self.taken = list(readings), 0

    def __call__(self) -> Reading:
        self.taken += 1
        return self.left.pop(0) if len(self.left) > 1 else self.left[0]


def filing(waiting: int, done: int) -> Reading:
    """A reading of the filing group alone: `waiting` behind, `done` committed."""
    return Reading(waiting, {"filing": done}, frozenset({"filing"} if waiting else ()))


def behind(ingest: Ingest, pipeline: Any, **settings: Any) -> Ingest:
    chosen = IngestSettings(backlog_limit=100, backlog_bulk_events=20, **settings)
    ingest.app.state.backlog_gate = BacklogGate(pipeline, chosen, poll_s=0.001)
    return ingest


def test_a_bulk_request_waits_for_the_pipeline_then_is_stored() -> None:
    pipeline = Pipeline(filing(5_000, 1), filing(2_000, 2), filing(100, 3))
    ingest = behind(make_ingest(), pipeline)
    response = ingest.post({"events": [event() for _ in range(20)]})
    assert response.status_code == 200 and response.json()["accepted"] == 20
    assert pipeline.taken == 3
    assert len(ingest.stored()) == 20
    assert telemetry_of(ingest.app).observations("cem_ingest_backlog_wait_seconds") == 1
    metrics = ingest.client.get("/metrics").text
    assert "cem_ingest_backlog_wait_seconds_count 1" in metrics
    assert "# TYPE cem_ingest_backlog_events gauge\ncem_ingest_backlog_events 100\n" in metrics


def test_a_live_event_never_waits_for_the_pipeline() -> None:
    pipeline = Pipeline(filing(10**6, 1))
    ingest = behind(make_ingest(), pipeline)
    assert ingest.post(event()).status_code == 202
    assert ingest.post({"events": [event() for _ in range(19)]}).status_code == 200
    assert pipeline.taken == 0 and len(ingest.stored()) == 20


def test_a_bulk_request_the_pipeline_never_catches_up_with_is_429_and_nothing_is_stored() -> None:
    done = itertools.count()

    def moving() -> Reading:
        return filing(1_000, next(done))

    ingest = behind(make_ingest(), moving, backlog_max_wait_s=0.05)
    response = ingest.post({"events": [event() for _ in range(20)]})
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "pipeline_behind"
    assert "1000 accepted events are still being processed" in error["message"]
    assert response.headers["Retry-After"] == "10"
    assert ingest.stored() == [] and ingest.publisher.calls == []


# --- F01 / F12 ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault", [LogUnavailable("broker down"), StorageFull("disk full")], ids=["F01", "F12"]
)
def test_log_down_is_503_with_retry_after_and_the_retry_is_stored_once(
    ingest: Ingest, fault: Exception
) -> None:
    raw = event()
    ingest.publisher.fault = fault
    response = ingest.post({"events": [raw]})
    assert response.status_code == 503
    assert error_of(response)["code"] == "log_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert ingest.stored() == []
    ingest.publisher.fault = None
    assert ingest.post({"events": [raw]}).json()["accepted"] == 1
    assert ingest.post(raw).json()["status"] == "duplicate"
    assert len(ingest.stored()) == 1


def test_f01_a_log_that_does_not_answer_gives_503_without_waiting_for_it() -> None:
    ingest = make_ingest(IngestSettings(publish_timeout_s=0.2))
    gate = ingest.publisher.gate = threading.Event()
    raw = event()
    response = ingest.post(raw)
    assert response.status_code == 503
    assert "did not acknowledge" in error_of(response)["message"]
    assert "may still be stored: send the same request again" in error_of(response)["message"]
    assert ingest.stored() == []  # answered while the log was still silent
    # The log acknowledges the abandoned publish late; the client's retry is then a duplicate.
    ingest.publisher.gate = None
    gate.set()
    assert len(ingest.log.poll(TOUCHPOINTS_TOPIC, "late", 10, timeout_s=10)) == 1
    assert ingest.post(raw).json()["status"] == "duplicate"
    assert len(ingest.stored()) == 1


def test_router_runs_in_a_combined_app_with_only_the_required_state() -> None:
    ingest = make_ingest()
    app = FastAPI()
    api_errors.install(app)
    for name in ("publisher", "keys", "ingest_settings", "clock", "bucket_key"):
        setattr(app.state, name, getattr(ingest.app.state, name))
    app.include_router(router)
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {ingest.secret}"}
    assert client.post("/v1/events", json=event(), headers=headers).status_code == 202
    assert client.post("/v1/events", json={}, headers=headers).status_code == 422
    assert app.state.telemetry.value("cem_ingest_accepted_total") == 1
    assert app.state.ingest_quota.burst == IngestQuota().quota_burst


# --- telemetry ----------------------------------------------------------------------------------
def test_metrics_count_every_outcome_by_code(ingest: Ingest) -> None:
    raw = event()
    ingest.post(raw)
    ingest.post(raw)
    ingest.post({**raw, "payload": {"kind": "nps", "score": 0}})
    ingest.post({"events": [event(channel="fax"), event()]})
    ingest.post_raw(b"{", "application/json")
    ingest.client.post("/v1/events", json=raw)
    response = ingest.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    for expected in [
        "cem_ingest_accepted_total 2",
        "cem_ingest_duplicates_total 1",
        "cem_ingest_conflicts_total 1",
        'cem_ingest_rejected_total{code="invalid_event"} 1',
        'cem_ingest_rejected_total{code="malformed_json"} 1',
        'cem_ingest_rejected_total{code="unauthorized"} 1',
        'cem_ingest_violations_total{code="enum"} 1',
        'cem_ingest_request_duration_seconds_count{route="/v1/events",status="202"} 2',
        'cem_ingest_request_duration_seconds_count{route="/v1/events",status="401"} 1',
    ]:
        assert expected in lines


def test_metrics_count_quota_and_log_refusals(ingest: Ingest) -> None:
    ingest.publisher.fault = LogUnavailable("down")
    ingest.post(event())
    ingest.publisher.fault = StorageFull("full")
    ingest.post(event())
    text = ingest.client.get("/metrics").text
    assert 'cem_ingest_rejected_total{code="log_unavailable"} 1' in text
    assert 'cem_ingest_rejected_total{code="storage_full"} 1' in text


# --- schemas ------------------------------------------------------------------------------------
def test_schemas_are_listed_and_served_without_a_key(ingest: Ingest) -> None:
    listed = ingest.client.get("/v1/schemas").json()["schemas"]
    names = [s["name"] for s in listed]
    # The alert actions are the platform's own, not a channel system's to send.
    assert names == ["envelope", *sorted(FAMILIES.keys() - PLATFORM_TYPES)]
    one = ingest.client.get("/v1/schemas/survey.answered")
    assert one.status_code == 200
    assert one.json() == listed[names.index("survey.answered")]["schema"]
    missing = ingest.client.get("/v1/schemas/fax.sent")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"


def test_openapi_documents_both_content_types(ingest: Ingest) -> None:
    spec = ingest.client.get("/openapi.json").json()
    content = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-ndjson"}


# --- never a 500 --------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
FIELDS = [
    "event_id",
    "channel",
    "type",
    "customer",
    "occurred_at",
    "sent_at",
    "payload",
    "source_id",
]
near_valid = st.builds(lambda f, v: event(**{f: v}), st.sampled_from(FIELDS), json_values)


@functools.cache
def shared() -> Ingest:
    """One app for every generated example, like a long-lived server."""
    return make_ingest()


def assert_handled(response: Any) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if "results" in body:
        counts = body["accepted"] + body["duplicates"] + body["conflicts"] + body["rejected"]
        assert counts == body["submitted"] == len(body["results"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values | near_valid, wrap=st.booleans())
def test_any_json_value_never_gives_a_500(value: Any, wrap: bool) -> None:
    body = json.dumps({"events": [value, event()]} if wrap else value).encode()
    assert_handled(shared().post_raw(body, "application/json"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=300)
    | st.lists(near_valid, min_size=1, max_size=3).map(
        lambda items: b"\n".join(json.dumps(i).encode() for i in items)
    ),
    content_type=st.sampled_from(["application/json", "application/x-ndjson"]),
)
def test_any_bytes_never_give_a_500(data: bytes, content_type: str) -> None:
    assert_handled(shared().post_raw(data, content_type))
