"""The dead-letter table keeps each record's headers, and a table created by an earlier release
(without the column) is brought up to date, on chdb and on ClickHouse 18.16 (which has no
`ADD COLUMN IF NOT EXISTS`); the input errors an earlier release recorded are not recorded again
when the filing stage of an upgrade reads the old touchpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cem import dead_letters
from cem.adapters.memory_log import MemoryLog
from cem.dead_letter_replay import consumer_letters, kept_headers
from cem.faust_worker import Sink
from cem.runner import (
    DEAD_LETTER_SINK,
    file_once,
    sink_dead_letters,
    skip_to_end,
    write_dead_letters,
)
from kernel.filings import FILING_STAGE, file_batch
from kernel.ports import DEAD_LETTER_TOPIC, TOUCHPOINTS_TOPIC, Record, Warehouse
from kernel.processing import BatchResult, DeadLetter

EARLIER_DDL = """CREATE TABLE dead_letters (
    stage String, topic String, partition Int32, offset Int64,
    key String, value_hex String, reason String, error String, failed_at Int64
) ENGINE = ReplacingMergeTree() ORDER BY (stage, topic, partition, offset)"""
HEADERS = (("tenant_id", b"acme"), ("source_id", b"pos-7"), ("binary", b"\xff\x00"))


def letter(offset: int) -> DeadLetter:
    return DeadLetter(
        "projections", TOUCHPOINTS_TOPIC, 0, offset, b"acme/c", b"{}", "unfiled", "x", HEADERS
    )


def test_a_table_of_an_earlier_release_gains_the_headers_column_and_keeps_its_rows(
    any_warehouse: Warehouse,
) -> None:
    any_warehouse.command(EARLIER_DDL)
    old = {k: v for k, v in letter(1).to_row(datetime.now(UTC)).items() if k != "headers"}
    any_warehouse.insert(dead_letters.TABLE, [old])
    dead_letters.ensure(any_warehouse)
    dead_letters.ensure(any_warehouse)  # twice: nothing to add the second time
    any_warehouse.insert(dead_letters.TABLE, [letter(2).to_row(datetime.now(UTC))])
    rows = {r["offset"]: r for r in consumer_letters(any_warehouse, None)}
    assert kept_headers(rows[1]) == ()  # not kept by the earlier release
    assert kept_headers(rows[2]) == HEADERS  # names and binary values, as the record had them


def test_a_new_table_keeps_the_headers(any_warehouse: Warehouse) -> None:
    dead_letters.ensure(any_warehouse)
    any_warehouse.insert(dead_letters.TABLE, [letter(3).to_row(datetime.now(UTC))])
    [row] = dead_letters.recent(any_warehouse)
    assert kept_headers(row) == HEADERS


def embedded_filing(log: MemoryLog, warehouse: Warehouse) -> None:
    while file_once(log, warehouse, None, timeout_s=0):
        pass


def filing_in_its_own_process(log: MemoryLog, warehouse: Warehouse) -> None:
    """`cem up`'s filing process (no warehouse there: its letters go on the log), then the main
    process's copy of them into the table."""
    while file_once(log, None, None, timeout_s=0):
        pass
    while sink_dead_letters(log, warehouse, timeout_s=0):
        pass


def distributed_filing(log: MemoryLog, warehouse: Warehouse) -> None:
    """The faust filing app's writes (its `Sink`), without Kafka: the same batch, the same path."""
    sink = Sink(warehouse, log, claims=None, decode=None)  # type: ignore[arg-type]
    records = log.poll(TOUCHPOINTS_TOPIC, FILING_STAGE, 100, 0)
    sink.write(BatchResult(dead_letters=file_batch(records, None).dead_letters))


@pytest.mark.parametrize(
    "filing",
    [embedded_filing, filing_in_its_own_process, distributed_filing],
    ids=["embedded", "filing-process", "faust"],
)
def test_an_upgrade_does_not_record_the_old_input_errors_again(
    any_warehouse: Warehouse, filing: Any
) -> None:
    """A release before the filing stage recorded its input errors under the projections group;
    the filing stage of the new one reads the touchpoints from the start and meets them again."""
    dead_letters.ensure(any_warehouse)
    log = MemoryLog(partitions=1)
    log.append(TOUCHPOINTS_TOPIC, [Record(b"k", b"not an event")] * 2)
    earlier = DeadLetter(
        "projections", TOUCHPOINTS_TOPIC, 0, 0, b"k", b"not an event", "undecodable", "x"
    )
    write_dead_letters(MemoryLog(), any_warehouse, [earlier])  # by the earlier release
    filing(log, any_warehouse)
    listed = [(r["stage"], r["offset"]) for r in dead_letters.recent(any_warehouse)]
    assert sorted(listed) == [(FILING_STAGE, 1), ("projections", 0)]  # each record once
    on_topic = [r.offset for r in log.poll(DEAD_LETTER_TOPIC, "audit", 100, 0)]
    # The new one only: the old one is on the topic already. The filing process cannot read the
    # table, so it puts both there; the copy into the table leaves the old one out.
    assert len(on_topic) == (2 if filing is filing_in_its_own_process else 1)


def test_the_filing_process_letters_reach_the_table_as_they_failed_and_no_other_twice(
    warehouse: Warehouse,
) -> None:
    """The main process copies the filing stage's letters (whole: headers, bytes, the time they
    failed) and leaves out the other stages' letters, which it wrote to the table itself."""
    dead_letters.ensure(warehouse)
    log = MemoryLog(partitions=2)
    write_dead_letters(log, warehouse, [letter(5)])  # a projection's, in the main process
    skip_to_end(log, DEAD_LETTER_TOPIC, DEAD_LETTER_SINK)  # what came before is in the table
    filed = DeadLetter(
        FILING_STAGE, TOUCHPOINTS_TOPIC, 1, 9, b"acme/c", b"\x00\xff", "bad", "e", HEADERS
    )
    write_dead_letters(log, None, [filed])  # the filing process's: on the log only
    assert [r["offset"] for r in dead_letters.recent(warehouse)] == [5]
    log.append(DEAD_LETTER_TOPIC, [Record(b"acme/c", b"not a dead letter")])  # skipped
    write_dead_letters(log, warehouse, [letter(6)])  # on the topic too, and in the table
    while sink_dead_letters(log, warehouse, timeout_s=0):
        pass
    rows = {(r["stage"], r["offset"]): r for r in dead_letters.recent(warehouse)}
    assert set(rows) == {("projections", 5), ("projections", 6), (FILING_STAGE, 9)}
    copied = rows[(FILING_STAGE, 9)]
    on_topic = [dead_letters.from_topic(r.value) for r in log.poll(DEAD_LETTER_TOPIC, "a", 9, 0)]
    [(_, as_sent)] = [f for f in on_topic if f is not None and f[0].stage == FILING_STAGE]
    assert copied["failed_at"] == as_sent["failed_at"]
    assert kept_headers(copied) == HEADERS
    assert bytes.fromhex(copied["value_hex"]) == b"\x00\xff"
    assert log.committed(DEAD_LETTER_TOPIC, DEAD_LETTER_SINK) == log.end_offsets(DEAD_LETTER_TOPIC)
