"""Re-running the consumers' dead letters: what decodes now goes back on the topic with its
original bytes; a producer's record without its kept tenant header, or bytes that still do not
decode, stay failing; the tenant filter holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cem.adapters.memory_log import MemoryLog
from cem.dead_letter_replay import replay_consumer_letters
from kernel.customer_key import customer_key
from kernel.filings import CUSTOMER_HEADER
from kernel.partitioning import touchpoint_key
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC
from kernel.processing import DeadLetter
from schemas.envelope import CustomerRef
from schemas.validate import accept, decode, encode
from tests.events import BUCKET_KEY, survey_answer

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)


def row(
    value: bytes, key: str = "acme/cust-1", headers: tuple[tuple[str, bytes], ...] | None = None
) -> dict[str, Any]:
    """A row of the table; `headers` None: a letter kept by an earlier release (no headers)."""
    if headers is not None:
        letter = DeadLetter("projections", TOUCHPOINTS_TOPIC, 0, 7, key.encode(), value,
                            "processing_failed", "boom", headers)  # fmt: skip
        return letter.to_row(NOW)
    return {"stage": "projections", "topic": TOUCHPOINTS_TOPIC, "partition": 0, "offset": 7,
            "key": key, "value_hex": value.hex(), "reason": "processing_failed", "error": "boom"}  # fmt: skip


def stored(tenant: str) -> bytes:
    event, _ = accept(survey_answer(), tenant, NOW)
    return encode(event)


def decode_raw(value: bytes) -> CustomerRef:
    """The customer of a producer's record (a raw event, not the stored form)."""
    event, _ = accept(json.loads(value), "acme", NOW)
    return event.customer


def read_all(log: MemoryLog) -> list[Any]:
    return log.poll(TOUCHPOINTS_TOPIC, "reader", 100, 0)


def test_a_stored_record_goes_back_on_the_topic_unchanged() -> None:
    log, value = MemoryLog(partitions=2), stored("acme")
    report = replay_consumer_letters([row(value)], log, bucket_key=BUCKET_KEY)
    assert (report.restored, report.duplicates, report.still_failing) == (1, 0, 0)
    [record] = read_all(log)
    assert record.value == value
    # Keyed as the ingest keys it now, not with the key it had (`acme/cust-1`).
    assert record.key == touchpoint_key(BUCKET_KEY, "acme", customer_key(decode(value).customer))
    assert dict(record.headers)["tenant_id"] == b"acme"


def test_what_still_cannot_be_decoded_stays_failing() -> None:
    log = MemoryLog(partitions=2)
    producer_record = json.dumps(survey_answer()).encode()  # its tenant header was not kept
    report = replay_consumer_letters(
        [row(b"\xff not json"), row(producer_record)], log, bucket_key=BUCKET_KEY
    )
    assert (report.restored, report.still_failing) == (0, 2)
    assert read_all(log) == []


def test_the_tenant_filter_leaves_other_tenants_letters() -> None:
    log = MemoryLog(partitions=2)
    report = replay_consumer_letters(
        [row(stored("acme")), row(stored("other"))], log, "acme", bucket_key=BUCKET_KEY
    )
    assert (report.restored, report.still_failing) == (1, 1)
    assert [dict(r.headers)["tenant_id"] for r in read_all(log)] == [b"acme"]


def test_a_producers_record_goes_back_with_the_headers_it_had() -> None:
    log = MemoryLog(partitions=2)
    value = json.dumps(survey_answer()).encode()
    headers = (("tenant_id", b"acme"), ("trace", b"t-1"))
    report = replay_consumer_letters([row(value, headers=headers)], log, bucket_key=BUCKET_KEY)
    assert (report.restored, report.still_failing) == (1, 0)
    [record] = read_all(log)
    assert (record.value, record.headers) == (value, headers)
    assert record.key == touchpoint_key(BUCKET_KEY, "acme", customer_key(decode_raw(value)))


def test_a_producers_record_of_another_tenant_is_left_by_the_tenant_filter() -> None:
    log = MemoryLog(partitions=2)
    value = json.dumps(survey_answer()).encode()
    report = replay_consumer_letters(
        [row(value, headers=(("tenant_id", b"other"),))], log, "acme", bucket_key=BUCKET_KEY
    )
    assert (report.restored, report.still_failing) == (0, 1)


def test_a_stored_record_keeps_every_header_it_had_including_the_seal() -> None:
    log, value = MemoryLog(partitions=2), stored("acme")
    headers = (("tenant_id", b"acme"), ("source_id", b"api"), ("cem-seal", b"\x01\x02"))
    replay_consumer_letters([row(value, headers=headers)], log, bucket_key=BUCKET_KEY)
    [record] = read_all(log)
    assert record.headers == headers


def test_a_stored_record_whose_kept_tenant_header_disagrees_stays_failing() -> None:
    log = MemoryLog(partitions=2)
    report = replay_consumer_letters(
        [row(stored("acme"), headers=(("tenant_id", b"evil"),))], log, bucket_key=BUCKET_KEY
    )
    assert (report.restored, report.still_failing) == (0, 1)


def test_a_filing_goes_back_to_the_filings_topic_with_its_customer() -> None:
    log, value = MemoryLog(partitions=2), stored("acme")
    headers = ((CUSTOMER_HEADER, b"cust-9"), ("cem-source-offset", b"3"))
    letter = row(value, headers=headers) | {"topic": FILINGS_TOPIC}
    report = replay_consumer_letters([letter, row(stored("acme"))], log, bucket_key=BUCKET_KEY)
    assert (report.restored, report.still_failing) == (2, 0)
    [filing] = log.poll(FILINGS_TOPIC, "reader", 100, 0)
    assert (filing.value, filing.headers, filing.key) == (value, headers, b"acme/cust-1")
    assert len(read_all(log)) == 1  # the letter without a customer goes to be filed
